"""Writes are what they report: a vdir calendar through several `apply` rounds.

A block that returns to a slot it held before is written again; a user's copy of a
block never makes steadyhand delete the original; any user change to a block (time,
title, description, attendees, status, location, show-as) makes it theirs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import write

NOW = "2026-11-02T08:00:00+01:00"  # Monday morning, Berlin

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {mon: "09:00-11:00"}
    calendar: {vdir: cal/ana}
protect:
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

NINE = ("20261102T080000Z", "20261102T090000Z")  # 09:00-10:00 Berlin
TEN = ("20261102T090000Z", "20261102T100000Z")  # 10:00-11:00 Berlin


@pytest.fixture
def ana(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ana, two working hours on Monday, one focus hour a day, an empty vdir calendar."""
    (project / "cal" / "ana").mkdir(parents=True)
    write(project / "steadyhand.yaml", CONFIG)
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    return project / "cal" / "ana"


def meeting_at(folder: Path, slot: tuple[str, str]) -> None:
    for old in folder.glob("meeting-*.ics"):
        old.unlink()
    write(
        folder / f"meeting-{slot[0]}.ics",
        MEETING.format(uid=f"m-{slot[0]}", start=slot[0], end=slot[1]),
    )


def block_files(folder: Path) -> dict[str, str]:
    """file name -> DTSTART of every file carrying steadyhand's tag."""
    found = {}
    for path in sorted(folder.glob("*.ics")):
        text = path.read_text()
        if re.search(r"^X-STEADYHAND-BLOCK:", text, re.M):
            found[path.name] = re.search(r"^DTSTART[^:]*:(\S+)", text, re.M)[1]  # type: ignore[index]
    return found


def summary(out: str) -> str:
    return next(li for li in out.splitlines() if li.startswith("Applied"))


def test_a_block_toggled_back_to_a_slot_it_held_before_is_written_every_time(
    run_cli, ana: Path
) -> None:
    first = run_cli("apply", "--horizon", "1d")
    assert summary(first.out) == "Applied: 1 created, 0 moved, 0 deleted.", first.out + first.err
    (name,) = block_files(ana)
    assert block_files(ana) == {name: NINE[0]}
    for meeting, block in ((NINE, TEN), (TEN, NINE), (NINE, TEN), (TEN, NINE)):
        meeting_at(ana, meeting)
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert summary(result.out) == "Applied: 0 created, 1 moved, 0 deleted."
        assert block_files(ana) == {name: block[0]}, (
            f"round with the meeting at {meeting[0]}: {result.out}"
        )
    again = run_cli("apply", "--horizon", "1d")
    assert summary(again.out) == "Applied: no changes. The calendars match the plan."
    assert block_files(ana) == {name: NINE[0]}


def test_a_users_copy_of_a_block_never_gets_the_original_deleted(run_cli, ana: Path) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    text = (ana / name).read_text()
    uid = re.search(r"^UID:(\S+)", text, re.M)[1]  # type: ignore[index]
    block_id = re.search(r"^X-STEADYHAND-BLOCK:(\S+)", text, re.M)[1]  # type: ignore[index]
    write(ana / "copy.ics", text.replace(f"UID:{uid}", "UID:my-own-copy-123"))
    for _ in range(3):
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert "deleted" not in summary(result.out) or "0 deleted" in summary(result.out)
        assert f"= {block_id}: taken over by you" in result.out
        assert block_files(ana) == {"copy.ics": NINE[0], name: NINE[0]}
    meeting_at(ana, NINE)  # even a meeting on top moves neither: both are Ana's now
    result = run_cli("apply", "--horizon", "1d")
    assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert block_files(ana) == {"copy.ics": NINE[0], name: NINE[0]}
    audit = run_cli("audit", "--block", block_id)
    assert "taken_over" in audit.out and "copied" in audit.out


EDITS = {
    "description": ("SUMMARY:", "DESCRIPTION:my notes for the focus hour\nSUMMARY:"),
    "attendee": ("SUMMARY:", "ATTENDEE;CN=Kim:mailto:kim@example.com\nSUMMARY:"),
    "location": ("SUMMARY:", "LOCATION:Library\nSUMMARY:"),
    "status": ("SUMMARY:", "STATUS:TENTATIVE\nSUMMARY:"),
    "show-as": ("TRANSP:OPAQUE", "TRANSP:TRANSPARENT"),
    "title": ("SUMMARY:Focus time", "SUMMARY:Deep work"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_any_user_edit_to_a_block_makes_it_theirs_and_it_is_kept(
    run_cli, ana: Path, edit: str
) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    path = ana / name
    text = path.read_text()
    old, new = EDITS[edit]
    assert old in text, text
    edited = text.replace(old, new, 1)
    path.write_text(edited)
    block_id = re.search(r"^X-STEADYHAND-BLOCK:(\S+)", text, re.M)[1]  # type: ignore[index]
    plan = run_cli("plan", "--horizon", "1d")
    assert f"= {block_id}: taken over by you; steadyhand leaves it alone" in plan.out
    meeting_at(ana, NINE)  # a meeting lands on it: a managed block would move
    for _ in range(2):
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert path.read_text() == edited  # the user's edit is still there, untouched
    audit = run_cli("audit", "--block", block_id)
    assert "taken_over" in audit.out and "user" in audit.out


def test_a_block_cancelled_by_the_user_is_not_booked_again(run_cli, ana: Path) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    path = ana / name
    edited = path.read_text().replace("SUMMARY:", "STATUS:CANCELLED\nSUMMARY:", 1)
    path.write_text(edited)
    for _ in range(2):
        result = run_cli("apply", "--horizon", "1d")
        assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert path.read_text() == edited
