"""One bad file does not fail a whole vdir: it is skipped and named, the others are read."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.vdir import VdirCalendar
from tests.conftest import write
from worker.core.errors import CalendarUnreadable
from worker.core.model import UTC, CalendarRef, SyncLimits, TimeRange

NOW = "2026-11-02T08:00:00+01:00"
WINDOW = TimeRange(datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
SECRET = "ZZ-PRIVATE-NOTE-do-not-echo"

GOOD = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:meeting-{n}
DTSTAMP:20261101T000000Z
DTSTART:{start}
DTEND:{end}
SUMMARY:Meeting {n}
ORGANIZER:mailto:kim@example.com
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ana@example.com
END:VEVENT
END:VCALENDAR
"""

#: Unreadable in different ways; each carries text that must never be echoed. (A file
#: that parses but holds a broken event is read around by ``_ical``, not skipped.)
HOSTILE = {
    "garbage": f"{SECRET} this is not a calendar at all\n",
    "unclosed": f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:{SECRET}\n",
    "binary": "\ufffd\x01\x02" + SECRET * 50,
    "empty": "",
    "end-first": f"END:VCALENDAR\nBEGIN:VCALENDAR\nX-{SECRET}:1\n",
}


def good_files(folder: Path, count: int) -> None:
    start = datetime(2026, 11, 2, 13, tzinfo=UTC)
    for n in range(count):
        s = start + timedelta(days=n % 60, minutes=(n // 60) * 10)
        e = s + timedelta(minutes=5)
        write(
            folder / f"m{n:04d}.ics",
            GOOD.format(n=n, start=f"{s:%Y%m%dT%H%M%SZ}", end=f"{e:%Y%m%dT%H%M%SZ}"),
        )


def ref(folder: Path) -> CalendarRef:
    return CalendarRef(
        f"ana@example.com:vdir:{folder}", "ana@example.com", "vdir", str(folder), "Europe/Berlin"
    )


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_one_unreadable_file_among_513_is_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    folder = tmp_path / "cal"
    good_files(folder, 512)
    write(folder / "x.ics", HOSTILE[kind])
    with caplog.at_level(logging.INFO, logger="connectors"):
        result = VdirCalendar().sync(ref(folder), WINDOW, None)
    assert len(result.events) == 512
    assert result.truncated == "skipped 1 unreadable file: x.ics"
    (line,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert ref(folder).key in line and "x.ics" in line and "\n" not in line
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in (result.truncated or "")


def test_a_folder_with_only_unreadable_files_fails_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    for name, text in HOSTILE.items():
        write(folder / f"{name}.ics", text)
    with pytest.raises(CalendarUnreadable) as raised:
        VdirCalendar().sync(ref(folder), WINDOW, None)
    message = str(raised.value)
    assert message.startswith(f"{folder}: none of its 5 .ics files can be read")
    assert "\n" not in message and SECRET not in message


def test_many_unreadable_files_are_counted_and_the_first_few_named(tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    good_files(folder, 3)
    for name, text in HOSTILE.items():
        write(folder / f"{name}.ics", text)
    result = VdirCalendar().sync(ref(folder), WINDOW, None)
    assert len(result.events) == 3
    assert result.truncated == (
        "skipped 5 unreadable files: binary.ics, empty.ics, end-first.ics and 2 more"
    )


CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {mon-fri: "09:00-17:00"}
    calendar: {vdir: cal}
protect:
  - rule: focus
    for: everyone
    per_day: 1h
"""


def test_plan_and_apply_work_on_the_rest_of_a_vdir_with_a_bad_file(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_files(project / "cal", 512)
    write(project / "cal" / "x.ics", HOSTILE["unclosed"])
    write(project / "steadyhand.yaml", CONFIG)
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    plan = run_cli("plan", "--horizon", "1w")
    assert plan.code == 0, plan.err
    assert "Plan: 6 to create, 0 to move, 0 to delete." in plan.out
    assert SECRET not in plan.out + plan.err
    applied = run_cli("apply", "--horizon", "1w")
    assert applied.code == 0, applied.err
    assert "Applied: 6 created, 0 moved, 0 deleted." in applied.out
    assert (project / "cal" / "x.ics").read_text() == HOSTILE["unclosed"]  # never touched


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_any_bytes_in_one_file_never_stop_the_others_being_read(
    tmp_path: Path, data: bytes
) -> None:
    folder = tmp_path / "fuzz"
    if not folder.exists():
        good_files(folder, 2)
    (folder / "fuzz.ics").write_bytes(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + data)
    result = VdirCalendar().sync(ref(folder), WINDOW, None)
    assert {e.id for e in result.events} >= {"meeting-0", "meeting-1"}


def test_a_file_over_max_bytes_is_skipped_unread_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cal"
    good_files(folder, 3)
    (folder / "huge.ics").write_bytes(b"BEGIN:VCALENDAR\n" + b"X" * (2 * 1024**2))
    limits = SyncLimits(max_bytes=1024**2)
    with caplog.at_level(logging.INFO, logger="connectors"):
        result = VdirCalendar(limits=limits).sync(ref(folder), WINDOW, None)
    assert len(result.events) == 3
    assert result.truncated == "skipped 1 unreadable file: huge.ics"
    (line,) = [r.getMessage() for r in caplog.records if "huge.ics" in r.getMessage()]
    assert "larger than 1 MB (sync.max_bytes)" in line
