"""One bad row, one bad person: the others' emails still go out (issue 10, items 2 and 5).

A poison outbox row (an exception that is not ours while rendering or building its email)
is marked ``failed`` with its reason, never left ``claimed``, and ``run --once`` goes on
with the other rows; one person whose decision breaks does not stop anyone else's.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from tests.conftest import write
from tests.tz import BERLIN
from worker import config, mail
from worker.cycle import decide as emails
from worker.cycle.decide import decide as decide_emails
from worker.cycle.deliver import MAX_ATTEMPTS, RETRY_CAP, deliver
from worker.cycle.run import run_cycle
from worker.cycle.runtime import Runtime, build_transport
from worker.queue.tasks import register
from worker.store import Store

NOW = "2026-11-05T16:45:00+01:00"  # a Thursday, after everyone's 16:30 reflection
CONFIG = """
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
queue: sqlite:///var/queue.db
people:
  - {email: ana@example.com, name: Ana Lima}
  - {email: bo@example.com, name: Bo Berg}
  - {email: cy@example.com, name: Cy Chen}
teams:
  - {name: Platform, leader: ana@example.com, members: [bo@example.com, cy@example.com]}
mail:
  from: "Steadyhand <steadyhand@example.com>"
  transport: outbox
  outbox: var/outbox
  max_per_day: 2
emails:
  reflection: {to: everyone, at: "16:30", days: mon-fri}
"""


@pytest.fixture
def folder(project: Path) -> Path:
    write(project / "steadyhand.yaml", CONFIG)
    return project


def inbox(folder: Path) -> dict[str, EmailMessage]:
    """The outbox's emails by recipient address."""
    out = {}
    for path in sorted((folder / "var" / "outbox" / "new").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[str(msg["To"]).split("<")[-1].rstrip(">")] = msg
    return out  # type: ignore[return-value]


def rows(folder: Path) -> dict[str, Any]:
    store = Store(config.load(folder / "steadyhand.yaml").store_url)
    try:
        return {r.recipient: r for r in store.outbox_rows()}
    finally:
        store.close()


def poison_for(recipient: str, exc: BaseException) -> Callable[..., Any]:
    """``mail.build`` that raises ``exc`` for ``recipient`` only."""
    original = mail.build

    def build(**kwargs: Any) -> EmailMessage:
        if any(a.addr_spec == recipient for a in kwargs["to"]):
            raise exc
        return original(**kwargs)

    return build


def test_a_template_that_blows_up_for_one_person_fails_only_their_row(run_cli, folder: Path):
    write(
        folder / "tpl" / "reflection.txt.j2",
        "Subject: Your day\n{% if email == 'bo@example.com' %}{{ range(10**12)|list }}"
        "{% endif %}Hi {{ first_name }}\n",
    )
    write(folder / "tpl" / "reflection.html.j2", "<p>Hi {{ first_name }}</p>")
    text = CONFIG.replace("  max_per_day: 2\n", "  max_per_day: 2\n  templates: tpl\n")
    write(folder / "steadyhand.yaml", text)
    result = run_cli("run", "--once", "--now", NOW)
    assert result.code == 0, result.err
    assert sorted(inbox(folder)) == ["ana@example.com", "cy@example.com"]
    bo = rows(folder)["bo@example.com"]
    assert bo.status == "failed" and "reflection.txt.j2" in (bo.last_error or "")
    assert "range" in (bo.last_error or "")
    again = run_cli("run", "--once", "--now", "2026-11-05T16:50:00+01:00")
    assert again.code == 0, again.err
    assert rows(folder)["bo@example.com"].attempts == 1  # failed for good: not retried


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        OverflowError("Python int too large to convert to C int"),
        ValueError("Header values may not contain linefeed or carriage return characters"),
        KeyError("first_name"),
    ],
    ids=["MemoryError", "OverflowError", "ValueError", "KeyError"],
)
def test_an_exception_that_is_not_ours_fails_the_row_and_the_others_go_out(
    run_cli, folder: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    monkeypatch.setattr(mail, "build", poison_for("bo@example.com", exc))
    result = run_cli("run", "--once", "--now", NOW)
    assert result.code == 0, result.err
    assert sorted(inbox(folder)) == ["ana@example.com", "cy@example.com"]
    bo = rows(folder)["bo@example.com"]
    assert bo.status == "failed"
    assert (bo.last_error or "").startswith(type(exc).__name__)
    assert run_cli("run", "--once", "--now", "2026-11-05T17:45:00+01:00").code == 0
    assert rows(folder)["bo@example.com"].attempts == 1


def test_an_unknown_error_is_retried_and_failed_after_max_attempts(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail, "build", poison_for("bo@example.com", RuntimeError("flaky")))
    settings = config.load(folder / "steadyhand.yaml")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    try:
        decide_emails(rt, now)
        (bo,) = [r for r in rt.store.outbox_rows() if r.recipient == "bo@example.com"]
        outcomes = []
        for _ in range(MAX_ATTEMPTS + 3):
            outcomes.append(deliver(rt, bo.id, now).outcome)
            now += RETRY_CAP + timedelta(minutes=1)
        assert outcomes[: MAX_ATTEMPTS - 1] == ["retry"] * (MAX_ATTEMPTS - 1)
        assert outcomes[MAX_ATTEMPTS - 1] == "failed"
        assert set(outcomes[MAX_ATTEMPTS:]) == {"skipped"}  # never claimed again
        (row,) = [r for r in rt.store.outbox_rows() if r.id == bo.id]
        assert row.status == "failed" and row.last_error == "RuntimeError: flaky"
        assert row.attempts == MAX_ATTEMPTS
    finally:
        rt.close()


def test_the_send_task_never_leaves_a_row_claimed_and_the_tick_survives_decide(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = config.load(folder / "steadyhand.yaml")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    tasks = register(MemoryHuey(immediate=True), rt)
    try:
        monkeypatch.setattr(mail, "build", poison_for("bo@example.com", MemoryError()))
        tasks.tick()  # decides the three reflections and sends them through the task
        by = {r.recipient: r.status for r in rt.store.outbox_rows()}
        assert by == {
            "ana@example.com": "done",
            "bo@example.com": "failed",
            "cy@example.com": "done",
        }

        def broken(rt: Runtime, now: datetime) -> list[int]:
            raise RuntimeError("the decide of this minute broke")

        monkeypatch.setattr(emails, "decide", broken)
        rt.clock = lambda: now + timedelta(minutes=1)
        tasks.tick()  # logged, not raised: the consumer keeps its thread
    finally:
        rt.close()


def blank_name(settings: config.Settings, email_address: str) -> config.Settings:
    """The settings with one person named " " (config check refuses that; a store or an
    older config can still carry it)."""
    person = next(p for p in settings.people if p.email == email_address)
    object.__setattr__(person, "name", " ")
    return settings


def test_a_blank_name_with_the_daily_quota_reached_does_not_stop_the_others(folder: Path):
    settings = blank_name(config.load(folder / "steadyhand.yaml"), "bo@example.com")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    try:
        for i in range(settings.mail.max_per_day):  # bo already had his emails today
            rt.store.enqueue(
                f"earlier:{i}",
                "email",
                "recognize",
                "bo@example.com",
                "x",
                now,
                {},
                now,
                status="done",
            )
        report = run_cycle(rt, now)
        assert len(report.decided) == 3
        by_key = {r.key: r for r in rt.store.outbox_rows()}
        assert by_key["reflection:ana@example.com:2026-11-05"].result != "bundled"
        assert by_key["reflection:cy@example.com:2026-11-05"].status == "done"
        (bundle,) = [r for r in by_key.values() if r.program == "bundle"]
        assert bundle.recipient == "bo@example.com" and bundle.status == "pending"  # tomorrow
        assert bundle.payload["first_name"] == "bo@example.com"  # not an IndexError
    finally:
        rt.close()
    assert sorted(inbox(folder)) == ["ana@example.com", "cy@example.com"]


def test_one_persons_broken_program_is_logged_and_audited_and_the_others_get_theirs(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = emails.reflection_context

    def breaks_for_bo(rt: Runtime, person: Any, day: Any) -> dict[str, Any]:
        if person.email == "bo@example.com":
            raise IndexError("list index out of range")
        return original(rt, person, day)

    monkeypatch.setattr(emails, "reflection_context", breaks_for_bo)
    settings = config.load(folder / "steadyhand.yaml")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    try:
        run_cycle(rt, now)
        assert sorted(r.recipient for r in rt.store.outbox_rows()) == [
            "ana@example.com",
            "cy@example.com",
        ]
        (audit,) = [a for a in rt.store.audit_entries() if a["action"] == "decide_failed"]
        assert audit["person"] == "bo@example.com" and audit["subject"] == "reflection"
        assert audit["detail"] == {"error": "IndexError: list index out of range"}
    finally:
        rt.close()
    assert sorted(inbox(folder)) == ["ana@example.com", "cy@example.com"]
    (line,) = [r for r in caplog.records if "decide reflection for bo@example.com" in r.message]
    assert line.exc_info is None  # one line: the traceback is at DEBUG only


def test_doctor_lists_the_decisions_that_failed(run_cli, folder: Path, monkeypatch: Any) -> None:
    settings = config.load(folder / "steadyhand.yaml")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    store = Store(settings.store_url)
    for _ in range(3):  # three ticks in a row
        store.audit(
            "decide_failed",
            now,
            person="bo@example.com",
            subject="reflection",
            detail={"error": "IndexError: list index out of range"},
        )
    store.close()
    monkeypatch.chdir(folder)
    result = run_cli("doctor")
    assert "decisions that failed (latest first): 1" in result.out
    assert (
        "  reflection for bo@example.com: IndexError: list index out of range (3 times)"
        in result.out
    )


def test_recognize_sends_only_the_note_it_queued(run_cli, folder: Path) -> None:
    settings = config.load(folder / "steadyhand.yaml")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    store = Store(settings.store_url)
    for who in ("ana@example.com", "cy@example.com"):  # due rows the worker has not sent yet
        store.enqueue(
            f"reflection:{who}:2026-11-05", "email", "reflection", who, "2026-11-05", now, {}, now
        )
    store.close()
    result = run_cli(
        "recognize",
        "bo@example.com",
        "--for",
        "Calm incident review",
        "--now",
        "2026-11-05T16:50:00+01:00",
    )
    assert result.code == 0, result.err
    assert "Sent to Bo Berg <bo@example.com>." in result.out
    assert list(inbox(folder)) == ["bo@example.com"]
    assert str(inbox(folder)["bo@example.com"]["X-Steadyhand-Key"]).startswith("recognize:")
    left = rows(folder)
    assert left["ana@example.com"].status == left["cy@example.com"].status == "pending"


def test_a_line_break_in_the_unsubscribe_url_fails_the_rows_and_leaves_none_claimed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", "k1")
    settings = config.load(folder / "steadyhand.yaml")
    # config check refuses such a URL; a config from before that check can still carry it
    object.__setattr__(settings.mail, "unsubscribe_url", "https://x.example/u\r\nBcc: e@x.example")
    now = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    try:
        report = run_cycle(rt, now)
        assert {d.outcome for d in report.deliveries} == {"failed"}
        assert {r.status for r in rt.store.outbox_rows()} == {"failed"}
        assert all("unsubscribe" in (r.last_error or "") for r in rt.store.outbox_rows())
    finally:
        rt.close()
    assert inbox(folder) == {}
