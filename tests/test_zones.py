"""Time zones of an iCalendar file, as a person sees them after `steadyhand sync`.

A TZID is resolved in this order (docs/calendars.md): IANA name, the file's own
VTIMEZONE, Windows zone id, Windows display name (CLDR), and last the person's zone,
which the sync table and `doctor` then name: ``read, 2 events in an unknown zone (…):
read as Europe/Berlin``.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors import _zones
from connectors._windows_names import DISPLAY_NAMES
from connectors.ics import IcsCalendar
from tests.conftest import FIXTURES, write
from worker.core.model import UTC, CalendarRef, TimeRange
from worker.store import Store

OWA = FIXTURES / "node-ical" / "Office-2012-owa.ics"
needs_owa = pytest.mark.skipif(
    not OWA.is_file(), reason="../shared/fixtures/ics not present (it sits beside the checkout)"
)
BERLIN = ZoneInfo("Europe/Berlin")


def configure(folder: Path, calendar: Path | str) -> None:
    write(
        folder / "steadyhand.yaml",
        textwrap.dedent(f"""\
            timezone: Europe/Berlin
            people:
              - email: bo@example.com
                calendar: {{ics: "{calendar}"}}
            """),
    )


def line_of(text: str, needle: str) -> str:
    return next(li for li in text.splitlines() if needle in li)


def stored(folder: Path) -> list[tuple[datetime, datetime]]:
    store = Store(f"sqlite:///{folder / 'var' / 'steadyhand.db'}")
    try:
        span = TimeRange(datetime(2000, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
        return sorted((e.start, e.end) for e in store.events_for("bo@example.com", span))
    finally:
        store.close()


def ics(body: str) -> str:
    text = textwrap.dedent(body).strip()
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{text}\nEND:VCALENDAR\n"


@needs_owa
def test_an_owa_export_in_windows_display_names_is_stored_at_the_right_utc_times(
    run_cli, project: Path
) -> None:
    """Office 2012 OWA: TZID="(UTC-05:00) Eastern Time (US & Canada)", no VTIMEZONE."""
    configure(project, OWA)
    result = run_cli("sync", "--now", "2020-11-05T12:00:00+01:00")
    assert result.code == 0, result.out + result.err
    row = line_of(result.out, "bo@example.com")
    assert "read" in row and "unknown zone" not in row, row
    times = stored(project)
    # 13:30-15:00 in Sydney (AEDT, +11): 02:30 UTC, not 12:30 read as Berlin
    assert times[0] == (
        datetime(2020, 10, 28, 2, 30, tzinfo=UTC),
        datetime(2020, 10, 28, 4, tzinfo=UTC),
    )
    # 13:30 Eastern on 28 October, still daylight time (-4): 17:30 UTC
    assert times[1] == (
        datetime(2020, 10, 28, 17, 30, tzinfo=UTC),
        datetime(2020, 10, 28, 19, tzinfo=UTC),
    )
    # 13:30 Eastern in winter (-5): 18:30 UTC, the single event and the series alike
    winter = (datetime(2020, 11, 2, 18, 30, tzinfo=UTC), datetime(2020, 11, 2, 20, tzinfo=UTC))
    assert times[2:4] == [winter, winter]
    assert all(start.astimezone(ZoneInfo("America/New_York")).hour == 13 for start, _ in times[1:])
    doctor = run_cli("doctor")
    assert "unknown zone" not in doctor.out


def test_events_in_an_unknown_zone_are_read_in_the_persons_zone_and_said(
    run_cli, project: Path
) -> None:
    events = "".join(
        f"BEGIN:VEVENT\nUID:custom-{n}\nDTSTART;TZID=Customized Time Zone:2026111{n}T100000\n"
        f"DTEND;TZID=Customized Time Zone:2026111{n}T110000\nEND:VEVENT\n"
        for n in range(2)
    )
    lone = (
        "BEGIN:VEVENT\nUID:mars\nDTSTART;TZID=Mars/Olympus_Mons:20261112T090000\n"
        "DURATION:PT1H\nEND:VEVENT\n"
    )
    write(project / "bo.ics", ics(events))
    write(project / "cy.ics", ics(lone))
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\npeople:\n"
        "  - {email: bo@example.com, calendar: {ics: bo.ics}}\n"
        "  - {email: cy@example.com, calendar: {ics: cy.ics}}\n",
    )
    result = run_cli("sync", "--now", "2026-11-05T16:45:00+01:00")
    assert result.code == 0, result.err
    said = "read, 2 events in an unknown zone ('Customized Time Zone'): read as Europe/Berlin"
    assert said in line_of(result.out, "bo@example.com")
    one = "read, 1 event in an unknown zone ('Mars/Olympus_Mons'): read as Europe/Berlin"
    assert one in line_of(result.out, "cy@example.com")
    # 10:00 read in Berlin (CET, +1)
    assert stored(project)[0][0] == datetime(2026, 11, 10, 9, tzinfo=UTC)
    doctor = run_cli("doctor")
    assert said in line_of(doctor.out, "bo@example.com:ics:bo.ics ")
    named = [li.strip() for li in doctor.out.splitlines() if li.startswith("    ")]
    assert [f"{project / 'bo.ics'}: custom-0", f"{project / 'bo.ics'}: custom-1"] == named[:2]
    assert doctor.code == 0, doctor.out  # a note, not a failure


def test_a_vtimezone_from_another_file_does_not_name_a_zone_in_this_one(tmp_path: Path) -> None:
    """icalendar remembers every VTIMEZONE it parsed, process-wide; a file's TZIDs are
    resolved with its own definitions only."""
    defined = write(
        tmp_path / "a.ics",
        ics("""
            BEGIN:VTIMEZONE
            TZID:Steadyhand Shared Zone
            BEGIN:STANDARD
            DTSTART:16010101T000000
            TZOFFSETFROM:+0530
            TZOFFSETTO:+0530
            END:STANDARD
            END:VTIMEZONE
            BEGIN:VEVENT
            UID:a
            DTSTART;TZID=Steadyhand Shared Zone:20261110T100000
            DURATION:PT1H
            END:VEVENT
        """),
    )
    undefined = write(
        tmp_path / "b.ics",
        ics("""
            BEGIN:VEVENT
            UID:b
            DTSTART;TZID=Steadyhand Shared Zone:20261110T100000
            DURATION:PT1H
            END:VEVENT
        """),
    )
    window = TimeRange(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    connector = IcsCalendar()

    def read(path: Path) -> tuple[datetime, tuple[str, ...]]:
        ref = CalendarRef(f"bo:{path}", "bo@example.com", "ics", str(path), "Europe/Berlin")
        result = connector.sync(ref, window, None)
        return result.events[0].start, tuple(n.text for n in result.notes)

    assert read(defined) == (datetime(2026, 11, 10, 4, 30, tzinfo=UTC), ())
    start, notes = read(undefined)
    assert start == datetime(2026, 11, 10, 9, tzinfo=UTC)  # in Berlin, and said
    assert notes == (
        "1 event in an unknown zone ('Steadyhand Shared Zone'): read as Europe/Berlin",
    )


def vtimezone(tzid: str, offset: str) -> dict[str, timezone]:
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return {tzid: timezone(sign * delta)}


def test_an_iana_name_wins_over_the_files_vtimezone_of_that_name() -> None:
    assert _zones.find("Europe/Berlin", vtimezone("Europe/Berlin", "+0530")) == BERLIN


def test_the_files_vtimezone_wins_over_a_windows_id() -> None:
    zones = vtimezone("Eastern Standard Time", "+0530")
    assert _zones.find('"Eastern Standard Time"', zones) is zones["Eastern Standard Time"]
    assert _zones.find("Eastern Standard Time", {}) == ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("tzid", "zone"),
    [
        ("(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
        ("(GMT+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney"),  # before Windows 7
        ("(GMT+01.00) Amsterdam / Berlin", None),  # no such display name, no such place
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rom, Stockholm, Wien", "Europe/Berlin"),
        ("Pacific Time (US & Canada)\\, Tijuana", "America/Los_Angeles"),  # Exchange 2003
        ("(UTC-07:00) La Paz", "America/Mazatlan"),  # two zones list La Paz: the offset picks
        ("(UTC-04:00) La Paz", "America/La_Paz"),
        ("(UTC-03:00) Brasília", "America/Sao_Paulo"),  # accents aside
        ("/mozilla.org/20070129_1/Europe/Berlin", "Europe/Berlin"),
        ("/softwarestudio.org/Olson_20011030_5/America/New_York", "America/New_York"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Customized Time Zone", None),
        ("../../../../etc/passwd", None),
    ],
)
def test_a_tzid_names_the_zone_a_person_would_read_in_it(tzid: str, zone: str | None) -> None:
    found = _zones.find(tzid, {})
    assert (found.key if isinstance(found, ZoneInfo) else found) == zone


def test_every_display_name_in_the_table_names_a_zone_icalendar_knows() -> None:
    assert len(DISPLAY_NAMES) > 130
    for display, windows_id in DISPLAY_NAMES.items():
        assert windows_id in WINDOWS_TO_OLSON, display
        assert _zones.find(display, {}) == ZoneInfo(WINDOWS_TO_OLSON[windows_id]), display
