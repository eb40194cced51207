"""What a user sees at the command line: the demo, sync, run --once and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, write

DEMO = ROOT / "config" / "demo"

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    calendar: {{ics: cal/ana.ics}}
  - email: bo@example.com
    calendar: {{ics: cal/bo.ics}}
  - email: cy@example.com
    calendar: {{ics: cal/cy.ics}}
teams:
  - name: Platform
    leader: ana@example.com
    members: [bo@example.com, {member}]
emails:
  reflection: {{to: leaders, at: "16:30"}}
"""


@pytest.fixture
def three_calendars(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three of the demo calendars in ./cal and a config for them; the clock in demo week."""
    (project / "cal").mkdir()
    for name in ("ana", "bo", "cy"):
        shutil.copyfile(DEMO / f"{name}.ics", project / "cal" / f"{name}.ics")
    write(project / "steadyhand.yaml", CONFIG.format(member="cy@example.com"))
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    return project


def outbox_files(folder: Path) -> list[Path]:
    return sorted((folder / "var" / "outbox" / "new").glob("*.eml"))


def test_demo_shows_meeting_hours_and_writes_reflections_once(run_cli, project: Path) -> None:
    first = run_cli("demo")
    assert first.code == 0, first.err
    assert "the Platform team, 5 people in 2 time zones" in first.out
    ana_row = next(line for line in first.out.splitlines() if "Ana Lima" in line)
    assert "6.8" in ana_row  # Thursday 5 November: the overloaded day
    assert "away" in next(line for line in first.out.splitlines() if "Eli Moss" in line)
    assert "Emails written (4)" in first.out
    files = outbox_files(project)
    assert len(files) == 4
    for f in files:
        assert str(f) in first.out
    assert "next: reflection to dee@example.com at Thu 16:30 America/New_York" in first.out
    assert "Applied: 28 created, 0 moved, 0 deleted." in first.out
    assert "+ create coaching  Tue 10 Nov 13:30–14:15" in first.out
    calendars = project / "var" / "calendars"
    assert sorted(p.name for p in calendars.iterdir()) == ["ana", "bo", "cy", "dee", "eli"]
    assert sum("X-STEADYHAND-BLOCK" in f.read_text() for f in calendars.rglob("*.ics")) == 28
    ana = next(f for f in files if b"To: Ana Lima <ana@example.com>" in f.read_bytes())
    assert b"Subject: Your day, Thursday 5 November: 6.8 h in meetings" in ana.read_bytes()

    second = run_cli("demo")
    assert second.code == 0, second.err
    assert "No new email" in second.out
    assert "Applied: no changes. The calendars match the plan." in second.out
    assert outbox_files(project) == files


def test_sync_prints_each_calendar_what_it_read_and_how_long(
    run_cli, three_calendars: Path
) -> None:
    result = run_cli("sync")
    assert result.code == 0, result.err
    for email, count in (("ana@example.com", 39), ("bo@example.com", 35), ("cy@example.com", 25)):
        line = next(li for li in result.out.splitlines() if email in li)
        assert "read" in line and f" {count} " in line and " ms" in line
    again = run_cli("sync")
    assert again.out.count("unchanged") == 6  # a line per calendar as it ends, then the table


def test_a_broken_calendar_is_one_line_and_the_others_still_sync(
    run_cli, three_calendars: Path
) -> None:
    assert run_cli("sync").code == 0
    (three_calendars / "cal" / "bo.ics").write_text("BEGIN:VCALENDAR\nthis is not ical\n")
    result = run_cli("sync")
    assert result.code == 2
    errors = result.err.strip().splitlines()
    assert len(errors) == 1 and "bo.ics" in errors[0] and "Traceback" not in result.err
    assert "unchanged" in next(li for li in result.out.splitlines() if "ana@example.com" in li)
    # what was read before is kept: the store is not half-written
    doctor = run_cli("doctor")
    bo = next(li for li in doctor.out.splitlines() if "bo@example.com" in li)
    assert " 35 " in bo and "bo.ics" in bo


def test_a_missing_calendar_file_names_it(run_cli, three_calendars: Path) -> None:
    (three_calendars / "cal" / "cy.ics").unlink()
    result = run_cli("sync", "--person", "cy@example.com")
    assert result.code == 2
    assert "cy.ics" in result.err and len(result.err.strip().splitlines()) == 1


def test_unknown_person_in_a_team_is_one_line_exit_2(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", CONFIG.format(member="zed@example.com"))
    result = run_cli("sync")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {project / 'steadyhand.yaml'}:13: teams[0].members[1]: zed@example.com is not "
        "listed under people: — add them under people: or fix the address"
    ]


def test_unknown_person_on_the_command_line_suggests_the_closest(
    run_cli, three_calendars: Path
) -> None:
    result = run_cli("sync", "--person", "ana@exmaple.com")
    assert result.code == 2
    assert (
        "ana@exmaple.com is not a person in the config — did you mean ana@example.com?"
        in result.err
    )


def test_verbose_shows_the_traceback(run_cli, project: Path) -> None:
    assert "Traceback" not in run_cli("sync").err
    assert "Traceback" in run_cli("-v", "sync").err


def test_run_once_does_a_full_cycle_at_the_given_time(
    run_cli, three_calendars: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_NOW")
    result = run_cli("run", "--once", "--now", "2026-11-05T16:40:00+01:00")
    assert result.code == 0, result.err
    assert "Decided 1 new email; sent 1." in result.out
    (message,) = outbox_files(three_calendars)
    assert b"To: Ana Lima <ana@example.com>" in message.read_bytes()
    again = run_cli("run", "--once", "--now", "2026-11-05T16:50:00+01:00")
    assert "Decided 0 new emails; sent 0." in again.out


def test_bad_now_is_one_line(run_cli, three_calendars: Path) -> None:
    result = run_cli("run", "--once", "--now", "tomorrow-ish")
    assert result.code == 2
    assert "--now 'tomorrow-ish' is not a date-time" in result.err


def test_init_writes_the_documented_example(run_cli, project: Path) -> None:
    assert run_cli("init").code == 0
    assert (project / "steadyhand.yaml").read_text() == (
        ROOT / "config" / "example.yaml"
    ).read_text()
    assert run_cli("init").code == 2
