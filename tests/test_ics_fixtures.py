"""Real-world iCalendar files through :class:`connectors.ics.IcsCalendar`, and targeted cases.

The fixtures sit beside the project checkout in ``../shared/fixtures/ics`` (see its
SOURCES.md): the main folders hold files a lenient reader must read; ``broken/`` holds
bad input, which must either load or fail as one :class:`CalendarUnreadable` line naming
the file, never with another exception.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.ics import IcsCalendar
from worker.core.errors import CalendarUnreadable
from worker.core.model import (
    UTC,
    CalendarRef,
    Event,
    EventType,
    Response,
    Status,
    SyncResult,
    TimeRange,
    Transparency,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "ics"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason="../shared/fixtures/ics not present (it sits beside the project checkout)",
)
BERLIN = ZoneInfo("Europe/Berlin")
WIDE = TimeRange(datetime(1990, 1, 1, tzinfo=BERLIN), datetime(2035, 1, 1, tzinfo=BERLIN))


def _files(broken: bool) -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(
        p
        for p in FIXTURES.rglob("*.ics")
        if (p.relative_to(FIXTURES).parts[0] == "broken") is broken
    )


GOOD = _files(broken=False)
BROKEN = _files(broken=True)

#: How each broken file fares with icalendar 7.3 in lenient mode (the test ids say it).
BROKEN_OUTCOMES = {
    "Radicale/broken-vevent.ics": "unreadable",  # END:VEVENT missing: no calendar at all
    "calendar-js/missing-value-date.ics": "loads",  # the bad event is skipped
    "calendar-js/unicode-non-character-ffff-before.ics": "loads",
    "ical/office_365_invalid_timezone.ics": "loads",  # unknown TZID read in the owner's zone
    "ical.js/blank_line_mid.ics": "loads",
    "ical4j/tmeher.ics": "loads",
    "icalendar/broken_ical.ics": "loads",  # its one event has no readable DTSTART: skipped
    "icalendar/issue_104_broken_calendar.ics": "unreadable",
    "ics-parser/ICal.ics": "loads",  # read part by part: the impossible date's event skipped
    "khal/invalid_tzoffset.ics": "loads",  # its bad VTIMEZONE left out; the TZID is IANA's
    "khal/non_dst_error.ics": "loads",  # its events read without their unreadable alarms
    "libical/malloc.ics": "unreadable",
    "node-ical/badRRULE.ics": "loads",
    "python-recurring-ical-events/bad_rrule_missing_until_event.ics": "loads",  # series skipped
    "python-recurring-ical-events/issue_201_test_matrix.ics": "loads",
}


def calendar(location: Path | str, timezone: str = "Europe/Berlin") -> CalendarRef:
    return CalendarRef(
        key=f"bo@example.com:ics:{location}",
        owner="bo@example.com",
        kind="ics",
        location=str(location),
        timezone=timezone,
    )


def sync(location: Path, window: TimeRange = WIDE, timezone: str = "Europe/Berlin") -> SyncResult:
    return IcsCalendar().sync(calendar(location, timezone), window, None)


# -- real-world files ------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_results() -> dict[Path, tuple[Event, ...]]:
    """Every main fixture read once (the wide window makes some files large)."""
    return {path: sync(path).events for path in GOOD}


@needs_fixtures
@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_world_file_loads_with_aware_events(
    path: Path, good_results: dict[Path, tuple[Event, ...]]
) -> None:
    events = good_results[path]
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids))
    for e in events:
        assert e.start.utcoffset() is not None and e.end.utcoffset() is not None
        assert e.start <= e.end
        assert WIDE.start <= e.end and e.start < WIDE.end
        assert e.calendar_id == str(path)


@needs_fixtures
def test_real_world_files_yield_many_events(good_results: dict[Path, tuple[Event, ...]]) -> None:
    assert len(GOOD) >= 50
    assert sum(len(events) for events in good_results.values()) > 30_000
    assert sum(1 for events in good_results.values() if events) >= len(GOOD) - 3


def _broken_id(path: Path) -> str:
    name = str(path.relative_to(FIXTURES / "broken"))
    return f"{name}-{BROKEN_OUTCOMES.get(name, 'unrecorded')}"


@needs_fixtures
@pytest.mark.parametrize("path", BROKEN, ids=_broken_id)
def test_broken_file_loads_or_fails_in_one_line_naming_it(path: Path) -> None:
    try:
        events = sync(path).events
    except CalendarUnreadable as exc:
        outcome = "unreadable"
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(f"{path}: ")
        assert " — " in message  # says how to fix it
    else:
        outcome = "loads"
        assert all(e.start.utcoffset() is not None for e in events)
    name = str(path.relative_to(FIXTURES / "broken"))
    assert outcome == BROKEN_OUTCOMES.get(name), (
        f"{name} now {outcome}: update BROKEN_OUTCOMES if the parser changed"
    )


@needs_fixtures
def test_one_broken_calendar_does_not_stop_the_others(tmp_path: Path) -> None:
    paths = [
        FIXTURES / "python-recurring-ical-events" / "Germany.ics",
        FIXTURES / "broken" / "icalendar" / "issue_104_broken_calendar.ics",
        FIXTURES / "ical4j" / "google_aus_holidays.ics",
    ]
    connector = IcsCalendar()
    loaded: dict[str, int] = {}
    failed: dict[str, str] = {}
    for path in paths:  # as the caller does: one calendar at a time, errors per calendar
        try:
            loaded[path.name] = len(connector.sync(calendar(path), WIDE, None).events)
        except CalendarUnreadable as exc:
            failed[path.name] = str(exc)
    assert loaded == {"Germany.ics": 159, "google_aus_holidays.ics": 267}
    assert list(failed) == ["issue_104_broken_calendar.ics"]
    assert "line 13: not a content line" in failed["issue_104_broken_calendar.ics"]


@needs_fixtures
def test_windows_zone_without_vtimezone_in_an_office_365_export() -> None:
    [e] = sync(FIXTURES / "ical" / "office_365_extended_timezone.ics").events
    assert e.start == datetime(2024, 4, 26, 12, 0, tzinfo=UTC)  # 14:00 W. Europe (CEST)


@needs_fixtures
def test_vtimezone_whose_tzid_has_a_stray_space_still_applies() -> None:
    [e] = sync(FIXTURES / "Radicale" / "event_issue2172.ics", timezone="Asia/Tokyo").events
    assert e.start == datetime(2026, 7, 1, 15, 0, tzinfo=UTC)  # 17:00 "Mitteleuropäische Zeit"


@needs_fixtures
def test_cancelled_occurrence_of_a_series_is_kept_as_cancelled() -> None:
    events = sync(FIXTURES / "python-recurring-ical-events" / "issue_18_cancel_status.ics").events
    assert sorted(e.status for e in events) == [
        Status.CANCELLED,
        Status.CONFIRMED,
        Status.CONFIRMED,
    ]
    assert len({e.series_id for e in events}) == 1


@needs_fixtures
def test_this_and_future_overrides_keep_one_id_per_occurrence() -> None:
    events = sync(FIXTURES / "python-recurring-ical-events" / "issue_75_range_parameter.ics").events
    assert len(events) == 193
    moved = [e for e in events if e.start.date() == datetime(2024, 9, 22).date()]
    assert [(e.id, e.start) for e in moved] == [
        ("210@20240921T120000Z", datetime(2024, 9, 22, 14, 22, tzinfo=UTC))
    ]


# -- targeted cases --------------------------------------------------------------------
def write_ics(folder: Path, body: str, name: str = "cal.ics") -> Path:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"
    text += textwrap.dedent(body).strip() + "\nEND:VCALENDAR\n"
    path = folder / name
    path.write_bytes(text.replace("\n", "\r\n").encode())
    return path


NOVEMBER = TimeRange(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def by_id(events: Sequence[Event]) -> dict[str, Event]:
    return {e.id: e for e in events}


def test_x_wr_timezone_places_floating_and_utc_times(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        X-WR-TIMEZONE:America/New_York
        BEGIN:VEVENT
        UID:floating
        DTSTART:20261110T090000
        DTEND:20261110T100000
        END:VEVENT
        BEGIN:VEVENT
        UID:utc
        DTSTART:20261110T150000Z
        DTEND:20261110T160000Z
        END:VEVENT
        """,
    )
    events = by_id(sync(path, NOVEMBER).events)  # owner in Berlin: X-WR-TIMEZONE wins
    assert events["floating"].start == datetime(2026, 11, 10, 14, tzinfo=UTC)
    assert events["utc"].start == datetime(2026, 11, 10, 15, tzinfo=UTC)


def test_windows_tzid_maps_to_the_right_instant(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:summer
        DTSTART;TZID=W. Europe Standard Time:20260715T100000
        DTEND;TZID=W. Europe Standard Time:20260715T110000
        END:VEVENT
        BEGIN:VEVENT
        UID:winter
        DTSTART;TZID="W. Europe Standard Time":20261110T100000
        DURATION:PT30M
        END:VEVENT
        """,
    )
    events = by_id(sync(path, WIDE, timezone="America/Chicago").events)
    assert events["summer"].start == datetime(2026, 7, 15, 8, tzinfo=UTC)
    assert events["winter"].start == datetime(2026, 11, 10, 9, tzinfo=UTC)
    assert events["winter"].end == datetime(2026, 11, 10, 9, 30, tzinfo=UTC)


def test_custom_vtimezone_definition_is_used(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VTIMEZONE
        TZID:Steadyhand Test Zone (UTC+05:30)
        BEGIN:STANDARD
        DTSTART:16010101T000000
        TZOFFSETFROM:+0530
        TZOFFSETTO:+0530
        END:STANDARD
        END:VTIMEZONE
        BEGIN:VEVENT
        UID:custom
        DTSTART;TZID="Steadyhand Test Zone (UTC+05:30)":20261110T100000
        DTEND;TZID="Steadyhand Test Zone (UTC+05:30)":20261110T110000
        END:VEVENT
        """,
    )
    [e] = sync(path, NOVEMBER).events
    assert e.start == datetime(2026, 11, 10, 4, 30, tzinfo=UTC)


def test_floating_event_is_read_in_the_owners_time_zone(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:floating
        DTSTART:20261110T090000
        DTEND:20261110T093000
        END:VEVENT
        """,
    )
    [in_la] = sync(path, NOVEMBER, timezone="America/Los_Angeles").events
    [in_berlin] = sync(path, NOVEMBER, timezone="Europe/Berlin").events
    assert in_la.start == datetime(2026, 11, 10, 17, tzinfo=UTC)
    assert in_berlin.start == datetime(2026, 11, 10, 8, tzinfo=UTC)
    assert in_berlin.end - in_berlin.start == timedelta(minutes=30)


def test_all_day_events_are_aware_midnights_in_the_owners_zone(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:one-day
        DTSTART;VALUE=DATE:20261110
        END:VEVENT
        BEGIN:VEVENT
        UID:three-days
        DTSTART;VALUE=DATE:20261111
        DTEND;VALUE=DATE:20261114
        TRANSP:TRANSPARENT
        END:VEVENT
        """,
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    events = by_id(sync(path, NOVEMBER, timezone="Asia/Tokyo").events)
    one, three = events["one-day"], events["three-days"]
    assert one.all_day and three.all_day
    assert (one.start, one.end) == (
        datetime(2026, 11, 10, tzinfo=tokyo),
        datetime(2026, 11, 11, tzinfo=tokyo),
    )
    assert three.end == datetime(2026, 11, 14, tzinfo=tokyo)
    assert one.start.tzinfo == tokyo
    assert three.transparency is Transparency.FREE


def test_event_without_end_or_with_duration(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:moment
        DTSTART:20261110T090000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:duration
        DTSTART:20261110T090000Z
        DURATION:PT1H15M
        END:VEVENT
        """,
    )
    events = by_id(sync(path, NOVEMBER).events)
    assert events["moment"].start == events["moment"].end
    assert events["duration"].end - events["duration"].start == timedelta(hours=1, minutes=15)


def test_recurring_series_with_exdate_and_a_moved_instance(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:daily
        DTSTART;TZID=Europe/Berlin:20261109T090000
        DTEND;TZID=Europe/Berlin:20261109T093000
        RRULE:FREQ=DAILY;COUNT=5
        EXDATE;TZID=Europe/Berlin:20261111T090000
        SUMMARY:Daily
        END:VEVENT
        BEGIN:VEVENT
        UID:daily
        RECURRENCE-ID;TZID=Europe/Berlin:20261112T090000
        DTSTART;TZID=Europe/Berlin:20261112T150000
        DTEND;TZID=Europe/Berlin:20261112T153000
        SUMMARY:Daily (moved)
        END:VEVENT
        """,
    )
    events = by_id(sync(path, NOVEMBER).events)
    assert sorted(events) == [
        "daily@20261109T080000Z",
        "daily@20261110T080000Z",
        "daily@20261112T080000Z",
        "daily@20261113T080000Z",
    ]
    moved = events["daily@20261112T080000Z"]
    assert (moved.start, moved.title) == (datetime(2026, 11, 12, 14, tzinfo=UTC), "Daily (moved)")
    assert {e.series_id for e in events.values()} == {"daily"}


def test_owner_response_from_their_attendee_entry(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:declined
        DTSTART:20261110T090000Z
        DTEND:20261110T100000Z
        ORGANIZER;CN=Ana:mailto:Ana@Example.com
        ATTENDEE;CN=Bo;PARTSTAT=DECLINED:MAILTO:BO@example.com
        ATTENDEE;PARTSTAT=ACCEPTED:mailto:cy@example.com
        END:VEVENT
        BEGIN:VEVENT
        UID:unanswered
        DTSTART:20261111T090000Z
        DTEND:20261111T100000Z
        ORGANIZER:mailto:ana@example.com
        ATTENDEE;RSVP=TRUE:mailto:bo@example.com
        END:VEVENT
        BEGIN:VEVENT
        UID:own
        DTSTART:20261112T090000Z
        DTEND:20261112T100000Z
        ORGANIZER:mailto:bo@example.com
        ATTENDEE;PARTSTAT=ACCEPTED:mailto:bo@example.com
        ATTENDEE;PARTSTAT=TENTATIVE:mailto:cy@example.com
        END:VEVENT
        BEGIN:VEVENT
        UID:not-invited
        DTSTART:20261113T090000Z
        DTEND:20261113T100000Z
        ORGANIZER:mailto:ana@example.com
        ATTENDEE;PARTSTAT=ACCEPTED:mailto:cy@example.com
        END:VEVENT
        """,
    )
    events = by_id(sync(path, NOVEMBER).events)  # the owner is bo@example.com
    declined = events["declined"]
    assert declined.response is Response.DECLINED
    assert declined.attendees == ("bo@example.com", "cy@example.com")
    assert declined.organizer == "ana@example.com"
    assert events["unanswered"].response is Response.NEEDS_ACTION
    assert events["own"].response is Response.ORGANIZER
    assert events["not-invited"].response is Response.ORGANIZER


def test_event_types_statuses_and_block_tag(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:oof
        DTSTART:20261110T090000Z
        DTEND:20261110T100000Z
        X-MICROSOFT-CDO-BUSYSTATUS:OOF
        END:VEVENT
        BEGIN:VEVENT
        UID:category
        DTSTART:20261111T090000Z
        DTEND:20261111T100000Z
        CATEGORIES:Travel,Out of office
        STATUS:TENTATIVE
        END:VEVENT
        BEGIN:VEVENT
        UID:focus
        DTSTART:20261112T090000Z
        DTEND:20261112T100000Z
        X-STEADYHAND-TYPE:focus
        STATUS:CANCELLED
        END:VEVENT
        BEGIN:VEVENT
        UID:where
        DTSTART;VALUE=DATE:20261113
        X-STEADYHAND-TYPE:working_location
        END:VEVENT
        BEGIN:VEVENT
        UID:steadyhand-b1
        DTSTART:20261114T090000Z
        DTEND:20261114T100000Z
        X-STEADYHAND-BLOCK:b1
        SUMMARY:Coaching
        END:VEVENT
        """,
    )
    events = by_id(sync(path, NOVEMBER).events)
    assert events["oof"].event_type is EventType.OUT_OF_OFFICE
    assert events["category"].event_type is EventType.OUT_OF_OFFICE
    assert events["category"].status is Status.TENTATIVE
    assert events["focus"].event_type is EventType.FOCUS
    assert events["focus"].status is Status.CANCELLED
    assert events["where"].event_type is EventType.WORKING_LOCATION
    assert events["steadyhand-b1"].owned_block_id == "b1"
    assert events["steadyhand-b1"].title == "Coaching"
    assert events["oof"].owned_block_id is None and events["oof"].status is Status.CONFIRMED


def test_duplicate_ids_keep_the_last_one(tmp_path: Path) -> None:
    path = write_ics(
        tmp_path,
        """
        BEGIN:VEVENT
        UID:twice
        DTSTART:20261110T090000Z
        DTEND:20261110T100000Z
        END:VEVENT
        END:VCALENDAR
        BEGIN:VCALENDAR
        VERSION:2.0
        BEGIN:VEVENT
        UID:twice
        DTSTART:20261110T110000Z
        DTEND:20261110T120000Z
        END:VEVENT
        """,
    )
    [e] = sync(path, NOVEMBER).events
    assert e.start == datetime(2026, 11, 10, 11, tzinfo=UTC)
