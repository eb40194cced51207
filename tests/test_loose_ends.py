"""What a user sees where issue 11's changes left gaps: a send done with nothing sent says
so (in `run --once`, in the task log and in `doctor`), `meetings: busy` counts in every
email and in the protected blocks, and `plan` output fits 80 columns.

Calendars are .ics files the CLI reads; a send decided earlier than it is delivered is
decided through :mod:`worker.cycle.decide`, as a worker that was down would have left it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from huey import MemoryHuey

from connectors.memory import RecordingTransport
from tests.conftest import write
from tests.tz import NEW_YORK, at
from worker import config
from worker.cycle import protect as protection
from worker.cycle import sync as syncing
from worker.cycle.decide import decide as decide_emails
from worker.cycle.deliver import deliver
from worker.cycle.run import run_cycle
from worker.cycle.runtime import Runtime
from worker.queue.tasks import register
from worker.store import Store

WEDNESDAY = at(NEW_YORK, "2026-11-04 16:35")  # Dee's reflection about Wednesday is decided
FRIDAY = at(NEW_YORK, "2026-11-06 09:30")  # and delivered: more than a working day late
DROPPED = "reflection:dee@example.com:2026-11-04"


def vevent(uid: str, start: str, end: str, title: str, attendees: bool) -> str:
    """A busy event on Dee's New York clock (``start``/``end`` like 20261105T100000)."""
    people = (
        "ORGANIZER:mailto:kim@example.com\r\nATTENDEE:mailto:dee@example.com\r\n"
        "ATTENDEE:mailto:kim@example.com\r\n"
        if attendees
        else ""
    )
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}@test\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;TZID=America/New_York:{start}\r\nDTEND;TZID=America/New_York:{end}\r\n"
        f"SUMMARY:{title}\r\n{people}END:VEVENT\r\n"
    )


def calendar(attendees: bool) -> str:
    """Wednesday light; Thursday 10:00-16:00 one busy run (6 h of 8 working hours)."""
    events = [
        vevent("w1", "20261104T100000", "20261104T110000", "Planning", attendees),
        vevent("t1", "20261105T100000", "20261105T130000", "Launch review", attendees),
        vevent("t2", "20261105T130000", "20261105T150000", "Vendor call", attendees),
        vevent("t3", "20261105T150000", "20261105T160000", "Retro", attendees),
    ]
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


def project(
    folder: Path, *, attendees: bool = True, meetings: str | None = None, extra: str = ""
) -> Path:
    write(folder / "cal" / "dee.ics", calendar(attendees))
    option = f", meetings: {meetings}" if meetings else ""
    return write(
        folder / "steadyhand.yaml",
        f"""\
timezone: America/New_York
store: sqlite:///{folder / "steadyhand.db"}
queue: sqlite:///{folder / "queue.db"}
working_hours: {{mon-fri: "09:00-17:00"}}
people:
  - email: dee@example.com
    name: Dee Park
    calendar: {{ics: cal/dee.ics{option}}}
mail: {{from: "Steadyhand <steadyhand@example.com>", transport: memory}}
emails:
  reflection: {{to: everyone, at: "16:30"}}
{extra}""",
    )


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEADYHAND_NOW", raising=False)
    return tmp_path


def runtime(cfg: Path, now: datetime) -> tuple[Runtime, RecordingTransport]:
    settings = config.load(cfg)
    transport = RecordingTransport()
    return Runtime(settings, Store(settings.store_url), transport, lambda: now), transport


@pytest.fixture
def decided_on_wednesday(folder: Path) -> Iterator[tuple[Path, int]]:
    """Dee's Wednesday reflection decided on Wednesday and left pending (worker down)."""
    cfg = project(folder)
    rt, _ = runtime(cfg, WEDNESDAY)
    try:
        syncing.sync(rt, WEDNESDAY)
        (row_id,) = decide_emails(rt, WEDNESDAY)
    finally:
        rt.close()
    yield cfg, row_id


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return body.get_content()


# -- a send done with nothing sent says what happened --------------------------------------


def test_a_reflection_too_late_is_delivered_as_dropped_not_sent(decided_on_wednesday) -> None:
    cfg, row_id = decided_on_wednesday
    rt, transport = runtime(cfg, FRIDAY)
    try:
        done = deliver(rt, row_id, FRIDAY)
        (stored,) = [r for r in rt.store.outbox_rows() if r.id == row_id]
    finally:
        rt.close()
    assert transport.sent == []
    assert done.outcome == "dropped"
    assert done.detail.startswith("more than one working day late: about Wednesday 4 November")
    assert stored.status == "done" and stored.result == f"dropped: {done.detail}"


def test_run_once_counts_a_reflection_too_late_as_dropped_and_says_why(
    decided_on_wednesday, run_cli
) -> None:
    cfg, _ = decided_on_wednesday
    result = run_cli("run", "--once", "-c", str(cfg), "--now", FRIDAY.isoformat())
    assert result.code == 0, result.err
    assert "Decided 0 new emails; sent 0, 1 dropped (too late)." in result.out
    assert (
        f"  dropped {DROPPED}: more than one working day late: about Wednesday 4 November"
        in result.out
    )


def test_the_send_task_logs_a_reflection_too_late_as_dropped(
    decided_on_wednesday, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, row_id = decided_on_wednesday
    rt, transport = runtime(cfg, FRIDAY)
    tasks = register(MemoryHuey(immediate=True), rt)
    try:
        with caplog.at_level(logging.INFO, logger="worker.queue.tasks"):
            tasks.send(row_id)
    finally:
        rt.close()
    assert transport.sent == []
    (line,) = [r.getMessage() for r in caplog.records if "task send" in r.getMessage()]
    assert line.startswith(
        f"task send row={row_id} {DROPPED}: dropped: more than one working day late: "
        "about Wednesday 4 November"
    )
    assert "sent via" not in line


def test_a_note_to_someone_who_opted_out_says_it_was_not_sent(folder: Path, run_cli) -> None:
    cfg = project(
        folder, extra="teams:\n  - {name: T, leader: kim@example.com, members: [dee@example.com]}\n"
    )
    cfg.write_text(
        cfg.read_text().replace(
            "people:\n", "people:\n  - {email: kim@example.com, name: Kim Ray}\n"
        )
    )
    now = at(NEW_YORK, "2026-11-05 11:00").isoformat()
    assert run_cli("unsubscribe", "dee@example.com", "-c", str(cfg)).code == 0
    result = run_cli(
        "recognize", "dee@example.com", "--for", "the calm release", "-c", str(cfg), "--now", now
    )
    assert result.code == 2, result.out
    assert "Sent to" not in result.out
    assert "the note to dee@example.com was not sent: they opted out of these emails" in result.err


# -- doctor lists what was dropped, as information -----------------------------------------


def test_doctor_lists_a_reflection_dropped_this_week_and_still_says_all_well(
    decided_on_wednesday, run_cli
) -> None:
    cfg, row_id = decided_on_wednesday
    rt, _ = runtime(cfg, FRIDAY)
    try:
        deliver(rt, row_id, FRIDAY)
    finally:
        rt.close()
    assert run_cli("sync", "-c", str(cfg), "--now", FRIDAY.isoformat()).code == 0
    doctor = run_cli("--now", (FRIDAY + timedelta(days=2)).isoformat(), "doctor", "-c", str(cfg))
    assert doctor.code == 0, doctor.out
    assert (
        "Dropped in the last 7 days: reflection to dee@example.com for Wednesday 4 November "
        "(more than one working day late)" in doctor.out
    )
    assert "All well." in doctor.out and "0 failed" in doctor.out
    later = run_cli("--now", (FRIDAY + timedelta(days=8)).isoformat(), "doctor", "-c", str(cfg))
    assert later.code == 0 and "Dropped" not in later.out


# -- meetings: busy counts everywhere meetings are counted -----------------------------------


def test_with_meetings_busy_the_reflection_shows_the_next_days_meetings(folder: Path) -> None:
    cfg = project(folder, attendees=False, meetings="busy")
    rt, transport = runtime(cfg, WEDNESDAY)
    try:
        run_cycle(rt, WEDNESDAY)
    finally:
        rt.close()
    (message,) = transport.sent
    text = text_of(message)
    assert "Tomorrow, Thursday 5 November: 6.0 h of meetings, the first at 10:00." in text


def test_without_meetings_busy_a_calendar_without_attendees_shows_no_meetings(
    folder: Path,
) -> None:
    cfg = project(folder, attendees=False)
    rt, transport = runtime(cfg, WEDNESDAY)
    try:
        run_cycle(rt, WEDNESDAY)
    finally:
        rt.close()
    (message,) = transport.sent
    assert "Tomorrow, Thursday 5 November: no meetings." in text_of(message)


def test_with_meetings_busy_the_overload_email_fires_and_names_the_heaviest_meetings(
    folder: Path,
) -> None:
    extra = "  overload: {to: person, lookahead: 1d}\n"
    cfg = project(folder, attendees=False, meetings="busy", extra=extra)
    thursday = at(NEW_YORK, "2026-11-05 09:05")
    rt, transport = runtime(cfg, thursday)
    try:
        run_cycle(rt, thursday)
    finally:
        rt.close()
    (message,) = [m for m in transport.sent if "heads-up" in m["Subject"]]
    text = text_of(message)
    assert "Thursday 5 November: 6.0 h of meetings (75 % of your working time)" in text
    # titles are not stored by default, and these events name nobody: "a meeting"
    assert "  - Shorten a meeting (Thu 5 Nov 10:00–13:00) from 180 to 170 min" in text
    assert "No single meeting stands out" not in text and "0 people" not in text


def test_with_meetings_busy_a_recovery_block_follows_a_run_of_busy_events(folder: Path) -> None:
    extra = "protect:\n  - {rule: recovery, for: everyone, after_chain: 3h}\n"
    cfg = project(folder, attendees=False, meetings="busy", extra=extra)
    morning = at(NEW_YORK, "2026-11-05 08:00")
    rt, _ = runtime(cfg, morning)
    try:
        plan = protection.plan_person(
            rt, rt.settings.person("dee@example.com"), morning, timedelta(days=1)
        )
    finally:
        rt.close()
    assert plan is not None
    (change,) = plan.changes
    start = change.block.start.astimezone(NEW_YORK)
    assert (change.block.rule, f"{start:%a %H:%M}") == ("recovery", "Thu 16:00")


# -- plan output fits the terminal ------------------------------------------------------------


def plan_lines(out: str) -> list[str]:
    """The demo's protected-block plan: from its heading to the "Applied:" line."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Protected blocks"))
    last = next(i for i, line in enumerate(lines) if line.startswith("Applied:"))
    return lines[first + 1 : last + 1]


def test_the_demos_protected_blocks_fit_80_columns_with_every_reason_whole(
    folder: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("demo")
    assert result.code == 0, result.err
    lines = plan_lines(result.out)
    assert [line for line in lines if len(line) > 80] == []
    at_ = lines.index("  + create coaching  Tue 10 Nov 13:30–14:15")
    assert lines[at_ + 1] == "      new: 2 × 45 min coaching a week (tue–thu 13:00–17:00)"
    focus = [i for i, line in enumerate(lines) if line.startswith("  + create focus")]
    assert len(focus) == 26
    assert {lines[i + 1] for i in focus} == {"      new: focus goal 1h a day (working hours)"}


def test_at_200_columns_each_block_is_one_line_with_its_reason(folder: Path, run_cli) -> None:
    result = run_cli("demo")  # run_cli: COLUMNS=200
    assert result.code == 0, result.err
    lines = plan_lines(result.out)
    assert (
        "  + create coaching  Tue 10 Nov 13:30–14:15  "
        "new: 2 × 45 min coaching a week (tue–thu 13:00–17:00)" in lines
    )
    assert not [line for line in lines if line.startswith("      new:")]


def test_a_reason_longer_than_the_terminal_wraps_under_its_change_word_for_word(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.cli.protect import print_plans
    from worker.core.planning import Unprotectable

    extra = "protect:\n  - {rule: recovery, for: everyone, after_chain: 3h}\n"
    cfg = project(folder, attendees=False, meetings="busy", extra=extra)
    morning = at(NEW_YORK, "2026-11-05 08:00")
    rt, _ = runtime(cfg, morning)
    try:
        plan = protection.plan_person(
            rt, rt.settings.person("dee@example.com"), morning, timedelta(days=1)
        )
    finally:
        rt.close()
    assert plan is not None
    long = " ".join(f"word{n}" for n in range(40))  # 279 characters
    (change,) = plan.changes
    plan = replace(
        plan,
        changes=(replace(change, reason=long),),
        unprotectable=(Unprotectable("dee@example.com", "focus", "2026-W45", long),),
    )
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    print_plans([plan])
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    start = lines.index("  + create recovery  Thu 05 Nov 16:00–16:15")
    wrapped = [line for line in lines[start + 1 :] if line.startswith("      ")]
    assert " ".join(line.strip() for line in wrapped) == f"{long} {long}"
    assert "  ! cannot protect focus 2026-W45:" in lines


# -- a dropped send is not an email that reached anyone --------------------------------------


def test_a_dropped_reflection_does_not_use_up_the_days_quota(folder: Path, run_cli) -> None:
    cfg = project(folder)
    cfg.write_text(
        cfg.read_text().replace("transport: memory}", "transport: memory, max_per_day: 1}")
    )
    rt, _ = runtime(cfg, WEDNESDAY)
    try:
        syncing.sync(rt, WEDNESDAY)
        (row_id,) = decide_emails(rt, WEDNESDAY)
        assert deliver(rt, row_id, FRIDAY).outcome == "dropped"
    finally:
        rt.close()
    evening = at(NEW_YORK, "2026-11-06 16:35")
    result = run_cli("run", "--once", "-c", str(cfg), "--now", evening.isoformat())
    assert result.code == 0, result.err
    assert "Decided 1 new email; sent 1." in result.out  # Friday's, alone, not held to Monday
