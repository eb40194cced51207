"""Malformed events: each skipped or repaired by its rule in docs/calendars.md, counted in
the sync table (``read, 1 event skipped (ends before it starts)``) and named, file and
UID, in the log and in `doctor`."""

from __future__ import annotations

import logging
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from connectors.ics import IcsCalendar
from connectors.vdir import VdirCalendar
from tests.conftest import FIXTURES, write
from worker.core.model import UTC, CalendarRef, SyncResult, TimeRange
from worker.store import Store

NOW = "2027-03-25T12:00:00+01:00"  # the Sunday after is the spring-forward day in Berlin
BAD = """
    BEGIN:VEVENT
    UID:ends-first
    SUMMARY:Ends before it starts
    DTSTART:20270324T100000Z
    DTEND:20270324T090000Z
    END:VEVENT
    BEGIN:VEVENT
    UID:no-start
    SUMMARY:No DTSTART
    DTEND:20270324T090000Z
    END:VEVENT
    BEGIN:VEVENT
    UID:in-the-gap
    SUMMARY:02:00-03:00 on the morning 02:00-03:00 does not exist
    DTSTART;TZID=Europe/Berlin:20270328T020000
    DTEND;TZID=Europe/Berlin:20270328T030000
    END:VEVENT
    BEGIN:VEVENT
    UID:negative
    DTSTART:20270324T100000Z
    DURATION:-PT1H
    END:VEVENT
    BEGIN:VEVENT
    UID:moment
    SUMMARY:A reminder: zero length, kept
    DTSTART:20270324T120000Z
    DTEND:20270324T120000Z
    END:VEVENT
    BEGIN:VEVENT
    UID:good
    DTSTART:20270324T130000Z
    DTEND:20270324T140000Z
    END:VEVENT
"""
WINDOW = TimeRange(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))


def ics(body: str) -> str:
    text = textwrap.dedent(body).strip()
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{text}\nEND:VCALENDAR\n"


def line_of(text: str, needle: str) -> str:
    return next(li for li in text.splitlines() if needle in li)


def test_malformed_events_are_counted_in_the_table_named_in_the_log_and_in_doctor(
    run_cli, project: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the whole cell on one line, to compare it whole
    path = write(project / "bo.ics", ics(BAD))
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\npeople:\n  - {email: bo@example.com, calendar: {ics: bo.ics}}\n",
    )
    caplog.set_level(logging.INFO)
    result = run_cli("sync", "--now", NOW)
    assert result.code == 0, result.err
    row = line_of(result.out, "bo@example.com")
    said = (
        "read, 2 events skipped (ends before it starts); 1 event skipped (no start time); "
        "1 event repaired (zero length across a DST gap: kept its written length)"
    )
    assert said in row, row
    assert " 3 " in row  # the gap event, the moment and the good one are stored
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"sync bo@example.com:ics:bo.ics: {said}"]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    for uid, why in [
        ("ends-first", "skipped: ends before it starts"),
        ("negative", "skipped: ends before it starts"),
        ("no-start", "skipped: no start time"),
        ("in-the-gap", "repaired: zero length across a DST gap"),
    ]:
        assert any(m.startswith(f"{path}: event {uid} {why}") for m in infos), (uid, infos)

    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        events = {e.id: e for e in store.events_for("bo@example.com", WINDOW)}
    finally:
        store.close()
    assert sorted(events) == ["good", "in-the-gap", "moment"]
    gap = events["in-the-gap"]  # 02:00 reads as 03:00 CEST (RFC 5545), one hour kept
    assert (gap.start, gap.end) == (
        datetime(2027, 3, 28, 1, tzinfo=UTC),
        datetime(2027, 3, 28, 2, tzinfo=UTC),
    )
    assert events["moment"].start == events["moment"].end

    doctor = run_cli("doctor")
    assert doctor.code == 0, doctor.out
    assert said in line_of(doctor.out, "bo@example.com:ics:bo.ics ")
    assert "  bo@example.com:ics:bo.ics: 2 events skipped (ends before it starts):" in doctor.out
    assert f"    {path}: ends-first\n    {path}: negative\n" in doctor.out
    assert f"    {path}: no-start\n" in doctor.out and f"    {path}: in-the-gap\n" in doctor.out


def test_an_unchanged_file_keeps_what_its_last_read_said(run_cli, project: Path) -> None:
    write(project / "bo.ics", ics(BAD))
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\npeople:\n  - {email: bo@example.com, calendar: {ics: bo.ics}}\n",
    )
    assert run_cli("sync", "--now", NOW).code == 0
    again = run_cli("sync", "--now", NOW)
    assert "unchanged" in line_of(again.out, "bo@example.com")
    doctor = run_cli("doctor")
    assert "1 event skipped (no start time)" in line_of(doctor.out, "bo@example.com")


def sync_vdir(folder: Path) -> SyncResult:
    ref = CalendarRef("bo:vdir", "bo@example.com", "vdir", str(folder), "Europe/Berlin")
    return VdirCalendar().sync(ref, WINDOW, None)


def test_a_vdir_counts_malformed_events_of_all_its_files_together(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write(
            tmp_path / f"{name}.ics",
            ics(f"""
                BEGIN:VEVENT
                UID:{name}
                DTSTART:20270324T100000Z
                DTEND:20270323T100000Z
                END:VEVENT
            """),
        )
    result = sync_vdir(tmp_path)
    assert result.events == ()
    [note] = result.notes
    assert (note.text, note.count) == ("2 events skipped (ends before it starts)", 2)
    assert sorted(note.events) == [f"{tmp_path / 'a.ics'}: a", f"{tmp_path / 'b.ics'}: b"]


def test_an_all_day_event_that_ends_before_it_starts_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cal.ics",
        ics("""
            BEGIN:VEVENT
            UID:backwards
            DTSTART;VALUE=DATE:20270324
            DTEND;VALUE=DATE:20270322
            END:VEVENT
            BEGIN:VEVENT
            UID:same-day
            DTSTART;VALUE=DATE:20270325
            DTEND;VALUE=DATE:20270325
            END:VEVENT
        """),
    )
    ref = CalendarRef("bo:ics", "bo@example.com", "ics", str(path), "Europe/Berlin")
    result = IcsCalendar().sync(ref, WINDOW, None)
    assert [e.id for e in result.events] == ["same-day"]  # read as one day
    assert [n.text for n in result.notes] == ["1 event skipped (ends before it starts)"]


def fixture_notes(name: str) -> list[str]:
    path = FIXTURES / "broken" / name
    if not path.is_file():
        pytest.skip("../shared/fixtures/ics not present (it sits beside the project checkout)")
    ref = CalendarRef("bo:ics", "bo@example.com", "ics", str(path), "Europe/Berlin")
    wide = TimeRange(datetime(1990, 1, 1, tzinfo=UTC), datetime(2035, 1, 1, tzinfo=UTC))
    return [n.text for n in IcsCalendar().sync(ref, wide, None).notes]


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("calendar-js/missing-value-date.ics", ["1 event skipped (its start cannot be read)"]),
        ("icalendar/broken_ical.ics", ["1 event skipped (its start cannot be read)"]),
        (
            "python-recurring-ical-events/issue_201_test_matrix.ics",
            ["4 events repaired (a date and a date-time: read by its start)"],
        ),
        (
            "python-recurring-ical-events/bad_rrule_missing_until_event.ics",
            [
                "1 series skipped (cannot be expanded: UNTIL parameter is missing: "
                "FREQ=WEEKLY;BYDAY=TH;WKST=SU;UNTL=20191023)"
            ],
        ),
        ("ics-parser/ICal.ics", ["1 event skipped (its start cannot be read)"]),  # 20171032
        ("khal/non_dst_error.ics", ["2 events repaired (an alarm that cannot be read: left out)"]),
        ("khal/invalid_tzoffset.ics", []),  # its VTIMEZONE is left out; Europe/Berlin is IANA's
        (
            "ical/office_365_invalid_timezone.ics",
            ["1 event in an unknown zone ('Customized Time Zone'): read as Europe/Berlin"],
        ),
    ],
)
def test_a_broken_fixture_says_what_it_read_around(name: str, said: list[str]) -> None:
    assert fixture_notes(name) == said


def test_an_event_that_does_not_parse_is_skipped_and_the_rest_of_the_file_read(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "cal.ics",
        ics("""
            BEGIN:VEVENT
            UID:unparsable
            DTSTART:20270324T100000Z
            DTEND:20270324T110000Z
            FREEBUSY:20270325T100000Z/20270324T100000Z
            END:VEVENT
            BEGIN:VEVENT
            UID:fine
            DTSTART:20270324T130000Z
            DTEND:20270324T140000Z
            END:VEVENT
        """),
    )
    ref = CalendarRef("bo:ics", "bo@example.com", "ics", str(path), "Europe/Berlin")
    result = IcsCalendar().sync(ref, WINDOW, None)
    assert [e.id for e in result.events] == ["fine"]
    [note] = result.notes
    assert note.text == "1 event skipped (cannot be read: Start time is greater than end time)"
    assert note.events == (f"{path}: unparsable",)
