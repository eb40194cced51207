"""Protected blocks end to end: plan, apply, defend, take-over, crash-safe apply (vdir and ICS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors.vdir import import_ics
from tests.conftest import ROOT, write

NOW = "2026-11-02T08:00:00+01:00"  # Monday morning, Berlin

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {{mon-fri: "09:00-12:30, 13:30-17:30"}}
    calendar: {{{ana}}}
  - email: bo@example.com
    name: Bo Berg
    calendar: {{vdir: cal/bo}}
teams:
  - {{name: Platform, leader: ana@example.com, members: [bo@example.com]}}
protect:
  - rule: coaching
    for: leaders
    duration: 45m
    per_week: 2
    window: {{days: [tue, wed, thu], time: "13:00-17:00"}}
    title: Coaching
  - rule: recovery
    for: everyone
    after_chain: 2h
    duration: 15m
  - rule: focus
    for: everyone
    per_day: 1h
    min_block: 60m
"""

MEETING = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
DTSTART:{start}
DTEND:{end}
SUMMARY:Budget review
ORGANIZER:mailto:kim@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ana@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:kim@example.com
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def team(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ana and Bo with writable (vdir) copies of their demo calendars; Monday 08:00."""
    for name in ("ana", "bo"):
        import_ics(ROOT / "config" / "demo" / f"{name}.ics", project / "cal" / name)
    write(project / "steadyhand.yaml", CONFIG.format(ana="vdir: cal/ana"))
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    return project


def blocks_on_disk(folder: Path) -> dict[str, str]:
    """block id -> DTSTART of every file carrying steadyhand's tag."""
    found = {}
    for path in folder.glob("*.ics"):
        text = path.read_text()
        tag = re.search(r"^X-STEADYHAND-BLOCK:(\S+)", text, re.M)
        if tag:
            found[tag[1]] = re.search(r"^DTSTART[^:]*:(\S+)", text, re.M)[1]  # type: ignore[index]
    return found


def plan_lines(out: str, sign: str) -> list[str]:
    return [line for line in out.splitlines() if line.lstrip().startswith(sign + " ")]


def test_plan_shows_the_diff_and_writes_nothing(run_cli, team: Path) -> None:
    result = run_cli("plan", "--horizon", "1w")
    assert result.code == 0, result.err
    assert "Ana Lima <ana@example.com> — vdir:" in result.out
    creates = plan_lines(result.out, "+")
    assert any("coaching  Tue 03 Nov 15:00–15:45" in li for li in creates)
    assert any(
        "recovery  Thu 05 Nov 13:30–13:45" in li and "after the 4h meeting chain 09:00–13:00" in li
        for li in creates
    )
    assert "! cannot protect focus 2026-11-05: only 0 min of 1h focus time fits" in result.out
    assert "Plan: 14 to create, 0 to move, 0 to delete." in result.out
    assert blocks_on_disk(team / "cal" / "ana") == {}


def test_apply_writes_tagged_blocks_and_a_second_plan_shows_no_change(run_cli, team: Path) -> None:
    applied = run_cli("apply", "--horizon", "1w")
    assert applied.code == 0, applied.err
    assert "Applied: 14 created, 0 moved, 0 deleted." in applied.out
    ana = blocks_on_disk(team / "cal" / "ana")
    assert len(ana) == 8 and "20261103T140000Z" in ana.values()  # coaching 15:00 Berlin
    assert len(blocks_on_disk(team / "cal" / "bo")) == 6
    again = run_cli("plan", "--horizon", "1w")
    assert "Plan: no changes. The calendars match the plan." in again.out
    assert (
        run_cli("apply", "--horizon", "1w")
        .out.strip()
        .endswith("Applied: no changes. The calendars match the plan.")
    )
    assert blocks_on_disk(team / "cal" / "ana") == ana


def test_a_meeting_in_a_blocks_slot_moves_it_inside_its_window(run_cli, team: Path) -> None:
    run_cli("apply", "--horizon", "1w")
    write(
        team / "cal" / "ana" / "budget.ics",
        MEETING.format(uid="budget-1", start="20261103T140000Z", end="20261103T150000Z"),
    )
    result = run_cli("plan", "--horizon", "1w", "--person", "ana@example.com")
    (move,) = plan_lines(result.out, "~")
    assert "coaching  Tue 03 Nov 15:00–15:45 → Wed 04 Nov 14:15–15:00" in move
    assert "another event now takes 15:00–16:00" in move
    assert run_cli("apply", "--horizon", "1w", "--person", "ana@example.com").code == 0
    assert "20261104T131500Z" in blocks_on_disk(team / "cal" / "ana").values()
    audit = run_cli("audit", "--person", "ana@example.com")
    assert any(
        "move" in li and "coaching" in li and "Wed 04 Nov 14:15–15:00" in li
        for li in audit.out.splitlines()
    )


def test_a_block_the_user_moved_is_theirs_and_left_alone(run_cli, team: Path) -> None:
    run_cli("apply", "--horizon", "1w")
    folder = team / "cal" / "ana"
    block_id, path = next(
        (m[1], p)
        for p in folder.glob("*.ics")
        if (m := re.search(r"X-STEADYHAND-BLOCK:(\S+)", p.read_text()))
        and "Coaching" in p.read_text()
    )
    text = path.read_text()
    start = re.search(r"^DTSTART[^:]*:(\S+)", text, re.M)[1]  # type: ignore[index]
    end = re.search(r"^DTEND[^:]*:(\S+)", text, re.M)[1]  # type: ignore[index]
    path.write_text(
        text.replace(start, start.replace("T1", "T0")).replace(end, end.replace("T1", "T0"))
    )
    result = run_cli("plan", "--horizon", "1w", "--person", "ana@example.com")
    assert f"= {block_id}: taken over by you; steadyhand leaves it alone" in result.out
    assert not any(
        block_id in li for li in plan_lines(result.out, "~") + plan_lines(result.out, "-")
    )
    audit = run_cli("audit", "--block", block_id)
    assert "taken_over" in audit.out and "moved or edited on the calendar" in audit.out
    assert "user" in audit.out


def test_apply_on_an_ics_calendar_refuses_in_one_line(run_cli, team: Path) -> None:
    write(team / "steadyhand.yaml", CONFIG.format(ana="ics: ana.ics"))
    (team / "ana.ics").write_bytes((ROOT / "config" / "demo" / "ana.ics").read_bytes())
    result = run_cli("apply", "--horizon", "1w", "--person", "ana@example.com")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: ana@example.com's calendar (ics: {team / 'ana.ics'}) is read-only — steadyhand "
        "cannot write blocks to an iCalendar feed; use a vdir, Google or Outlook calendar for protected blocks"
    ]
    assert run_cli("plan", "--horizon", "1w", "--person", "ana@example.com").code == 0


def test_apply_on_read_only_calendars_says_what_it_could_not_write(run_cli, team: Path) -> None:
    """Not "the calendars match the plan" right after a plan of blocks it cannot write."""
    write(team / "steadyhand.yaml", CONFIG.format(ana="ics: ana.ics"))
    (team / "ana.ics").write_bytes((ROOT / "config" / "demo" / "ana.ics").read_bytes())
    result = run_cli("apply", "--horizon", "1w", "--person", "ana@example.com")
    assert result.code == 2
    assert "match the plan" not in result.out
    assert "Applied: nothing written of 8 planned changes." in result.out
    assert "Not written: 8 planned changes on 1 read-only calendar (below)." in result.out


def test_plan_json_lists_changes_with_reasons(run_cli, team: Path) -> None:
    import json

    result = run_cli("plan", "--horizon", "1w", "--format", "json", "--person", "bo@example.com")
    data = json.loads(result.out)
    assert data["summary"] == {"create": 6, "move": 0, "delete": 0}
    (bo,) = data["people"]
    assert {c["rule"] for c in bo["changes"]} == {"focus"}
    assert all(c["action"] == "create" and c["reason"] for c in bo["changes"])


CRASHING_APPLY = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    from pathlib import Path
    from connectors.vdir import VdirCalendar
    from worker import config
    from worker.cycle import protect as protection
    from worker.cycle.runtime import Runtime, build_transport
    from worker.store import Store

    class Crashing(VdirCalendar):
        writes = 0
        def apply(self, cal, changes):
            Crashing.writes += 1
            if Crashing.writes == 4:
                os._exit(9)  # killed mid-apply, after three writes
            return super().apply(cal, changes)

    settings = config.load("steadyhand.yaml")
    now = datetime.fromisoformat(os.environ["STEADYHAND_NOW"])
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings),
                          lambda: now, calendars={("vdir", None): Crashing()})
    plan = protection.plan_person(rt, settings.person("ana@example.com"), now,
                                  __import__("datetime").timedelta(weeks=1))
    protection.apply_person(rt, plan, now)
    """
)


def test_a_crash_mid_apply_is_finished_by_the_next_apply(run_cli, team: Path) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_APPLY],
        cwd=team,
        env={**os.environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 9, crashed.stderr
    assert len(blocks_on_disk(team / "cal" / "ana")) == 3
    result = run_cli("apply", "--horizon", "1w", "--person", "ana@example.com")
    assert result.code == 0, result.err
    assert "Finished 5 writes an earlier apply left pending." in result.out
    assert "Applied: no changes." in result.out
    assert len(blocks_on_disk(team / "cal" / "ana")) == 8
    assert (
        "Plan: no changes" in run_cli("plan", "--horizon", "1w", "--person", "ana@example.com").out
    )


def test_the_worker_cycle_books_blocks_and_moves_them_as_the_week_fills(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("run", "--once").code == 0
    ana = blocks_on_disk(team / "cal" / "ana")
    assert "20261103T140000Z" in ana.values()  # coaching booked by the cycle itself
    write(
        team / "cal" / "ana" / "budget.ics",
        MEETING.format(uid="budget-1", start="20261103T140000Z", end="20261103T150000Z"),
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-02T08:20:00+01:00")  # after sync.every (15m)
    assert run_cli("run", "--once").code == 0
    moved = blocks_on_disk(team / "cal" / "ana")
    assert "20261103T140000Z" not in moved.values() and "20261104T131500Z" in moved.values()
    assert len(moved) == len(ana) + 1  # plus a recovery block after the longer chain
