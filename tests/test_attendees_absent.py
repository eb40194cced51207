"""Calendars without attendee data: marked ``attendees: absent``, and ``meetings: busy``.

Many exports and feeds carry no ATTENDEE or ORGANIZER line at all; without a word the
report would show 0 h of meetings as if that were a fact (docs/metrics.md, "Calendars
without attendee data").
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given

from tests.conftest import write
from tests.test_analysis import PROPERTY, calendars
from tests.test_ics_fixtures import FIXTURES, needs_fixtures
from worker import config
from worker.core.analysis import (
    MEETINGS_FROM,
    MeetingSource,
    analyze_days,
    is_busy,
    is_meeting,
    meeting_source,
)
from worker.core.model import Event, EventType, Person, Status, Transparency, WorkingHours

BERLIN = ZoneInfo("Europe/Berlin")
ANA = Person(
    "ana@example.com",
    "Ana Lima",
    "Europe/Berlin",
    WorkingHours.of({d: [(time(9), time(17))] for d in range(5)}),
)
MONDAY = date(2026, 11, 2)


def _event(day: date, start: int, end: int, *, uid: str = "", **fields: object) -> Event:
    return Event(
        id=uid or f"{day}-{start}",
        calendar_id="cal",
        start=datetime.combine(day, time(start), BERLIN),
        end=datetime.combine(day, time(end), BERLIN),
        **fields,  # type: ignore[arg-type]
    )


# -- the pure core -------------------------------------------------------------------------


def test_events_without_attendee_or_organizer_are_marked_absent() -> None:
    events = [_event(MONDAY, 10, 11), _event(MONDAY + timedelta(days=1), 14, 16)]
    source = meeting_source(events, ANA, MONDAY, MONDAY + timedelta(days=6))
    assert source == MeetingSource("absent", "attendees")
    assert source.uncounted
    assert source.as_dict() == {"attendees": "absent", "meetings_from": "attendees"}


@pytest.mark.parametrize(
    "fields",
    [
        {"attendees": ("bo@example.com",)},
        {"organizer": "ana@example.com"},  # the person alone still is attendee data
        {"attendees": ("ANA@example.com",)},
    ],
    ids=["another-attendee", "organizer-is-the-person", "attendee-is-the-person"],
)
def test_one_event_naming_anyone_makes_attendees_present(fields: dict[str, object]) -> None:
    events = [_event(MONDAY, 10, 11), _event(MONDAY, 14, 15, **fields)]
    assert meeting_source(events, ANA, MONDAY, MONDAY).attendees == "present"


def test_an_all_day_event_with_an_organizer_counts_as_attendee_data() -> None:
    holiday = Event(
        "h",
        "cal",
        datetime(2026, 11, 3, tzinfo=UTC),
        datetime(2026, 11, 4, tzinfo=UTC),
        all_day=True,
        transparency=Transparency.FREE,
        organizer="holidays@example.com",
    )
    events = [_event(MONDAY, 10, 11), holiday]
    assert meeting_source(events, ANA, MONDAY, MONDAY + timedelta(days=6)).attendees == "present"


def test_attendee_data_outside_the_period_does_not_count() -> None:
    earlier = _event(MONDAY - timedelta(days=7), 10, 11, attendees=("bo@example.com",))
    events = [earlier, _event(MONDAY, 10, 11)]
    assert meeting_source(events, ANA, MONDAY, MONDAY).attendees == "absent"


@pytest.mark.parametrize(
    "events",
    [
        [],
        [_event(MONDAY, 10, 11, transparency=Transparency.FREE)],
        [_event(MONDAY, 10, 11, status=Status.CANCELLED)],
        [_event(MONDAY, 10, 11, event_type=EventType.FOCUS)],
    ],
    ids=["no-event", "free", "cancelled", "focus"],
)
def test_a_period_without_busy_events_is_present(events: list[Event]) -> None:
    assert meeting_source(events, ANA, MONDAY, MONDAY).attendees == "present"


def test_meetings_from_busy_counts_every_busy_event_as_a_meeting() -> None:
    events = [
        _event(MONDAY, 10, 11),
        _event(MONDAY, 14, 16),
        _event(MONDAY, 16, 17, transparency=Transparency.FREE),
    ]
    (by_attendees,) = analyze_days(ANA, events, MONDAY, MONDAY)
    (by_busy,) = analyze_days(ANA, events, MONDAY, MONDAY, meetings_from="busy")
    assert (by_attendees.meeting_minutes, by_attendees.busy_minutes) == (0, 180)
    assert (by_busy.meeting_minutes, by_busy.busy_minutes) == (180, 180)
    assert by_busy.meeting_load == pytest.approx(180 / 480)
    assert by_busy.focus_minutes == by_attendees.focus_minutes  # focus never depends on it


@pytest.mark.parametrize("meetings_from", MEETINGS_FROM)
def test_is_meeting_agrees_with_the_analysis_in_both_modes(meetings_from: str) -> None:
    events = [
        _event(MONDAY, 9, 10),
        _event(MONDAY, 10, 11, attendees=("bo@example.com",)),
        _event(MONDAY, 11, 12, transparency=Transparency.FREE),
        _event(MONDAY, 12, 13, organizer="ana@example.com"),
    ]
    expected = sum(60 for e in events if is_meeting(e, ANA, meetings_from))  # type: ignore[arg-type]
    (day,) = analyze_days(ANA, events, MONDAY, MONDAY, meetings_from=meetings_from)  # type: ignore[arg-type]
    assert day.meeting_minutes == expected
    assert [is_meeting(e, ANA, "busy") for e in events] == [is_busy(e, ANA) for e in events]


@PROPERTY
@given(calendars())
def test_with_meetings_busy_the_meetings_are_the_busy_time_and_nothing_else_moves(
    cal: tuple[Person, list[Event], date, date],
) -> None:
    who, events, first, last = cal
    by_attendees = analyze_days(who, events, first, last)
    by_busy = analyze_days(who, events, first, last, meetings_from="busy")
    for a, b in zip(by_attendees, by_busy, strict=True):
        assert b.meeting_minutes == pytest.approx(b.busy_minutes, abs=1e-6)
        assert b.meeting_minutes >= a.meeting_minutes - 1e-6
        same = ("busy_minutes", "working_minutes", "focus_minutes", "fragmented_minutes", "away")
        assert [getattr(a, f) for f in same] == [getattr(b, f) for f in same]


# -- the setting ---------------------------------------------------------------------------


def test_meetings_comes_from_the_calendar_then_its_account(tmp_path: Path) -> None:
    path = write(
        tmp_path / "steadyhand.yaml",
        """\
accounts:
  - {name: feeds, kind: google, auth: access_token, token_env: T, meetings: busy}
people:
  - {email: a@example.com, calendar: {account: feeds, id: primary}}
  - {email: b@example.com, calendar: {account: feeds, id: primary, meetings: attendees}}
  - {email: c@example.com, calendar: {ics: c.ics, meetings: busy}}
  - {email: d@example.com, calendar: {ics: d.ics}}
  - {email: e@example.com}
""",
    )
    settings = config.load(path)
    assert [settings.meetings_from(f"{x}@example.com") for x in "abcde"] == [
        "busy",
        "attendees",
        "busy",
        "attendees",
        "attendees",
    ]


def test_an_unknown_meetings_value_names_the_choices(tmp_path: Path) -> None:
    path = write(
        tmp_path / "steadyhand.yaml",
        "people:\n  - {email: a@example.com, calendar: {ics: a.ics, meetings: bsy}}\n",
    )
    (problem,) = [p for p in config.check(path) if "meetings" in str(p)]
    assert "people[0].calendar.meetings" in str(problem)
    assert "'attendees'" in str(problem) and "'busy'" in str(problem)


# -- what a user sees ----------------------------------------------------------------------

SOLO_ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//attendees absent//EN
BEGIN:VEVENT
UID:one@test
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261102T100000
DTEND;TZID=Europe/Berlin:20261102T110000
SUMMARY:Planning
END:VEVENT
BEGIN:VEVENT
UID:two@test
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261103T140000
DTEND;TZID=Europe/Berlin:20261103T163000
SUMMARY:Review
END:VEVENT
END:VCALENDAR
"""


def _project(project: Path, monkeypatch: pytest.MonkeyPatch, calendar: str) -> Path:
    write(project / "cal" / "ana.ics", SOLO_ICS)
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    calendar: {calendar}
""",
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    return project


@pytest.fixture
def feed_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ana's calendar is a file without any ATTENDEE or ORGANIZER line."""
    return _project(project, monkeypatch, "{ics: cal/ana.ics}")


@pytest.fixture
def feed_counted(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same file, with ``meetings: busy`` on the calendar."""
    return _project(project, monkeypatch, "{ics: cal/ana.ics, meetings: busy}")


def test_json_marks_attendees_absent_and_counts_no_meeting(run_cli, feed_only: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "json")
    assert result.code == 0, result.err
    (ana,) = json.loads(result.out)["people"]
    assert (ana["attendees"], ana["meetings_from"]) == ("absent", "attendees")
    assert sum(d["busy_minutes"] for d in ana["days"]) == 210
    assert ana["week"]["meeting_minutes"] == 0


def test_json_with_meetings_busy_counts_the_busy_events(run_cli, feed_counted: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "json")
    assert result.code == 0, result.err
    (ana,) = json.loads(result.out)["people"]
    assert (ana["attendees"], ana["meetings_from"]) == ("absent", "busy")
    assert ana["week"]["meeting_minutes"] == 210
    tuesday = next(d for d in ana["days"] if d["date"] == "2026-11-03")
    assert tuesday["meeting_minutes"] == 150 and tuesday["meeting_load"] == 150 / 480


def test_table_is_followed_by_a_note_with_the_fix(run_cli, feed_only: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45")
    assert result.code == 0, result.err
    last = result.out.rstrip().splitlines()[-1]
    assert last == (
        "Note: Ana Lima's calendar has no attendee data (attendees: absent): no event in "
        "this period names an attendee or organizer, so its 3.5 h of busy events are not "
        "counted as meetings. To count them, set `meetings: busy` on this person's "
        "`calendar:` (or on its account); see docs/metrics.md."
    )


def test_table_with_meetings_busy_shows_the_hours_and_says_why(run_cli, feed_counted: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45")
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "Ana Lima" in line)  # the table's
    assert "2.5" in row and "3.5" in row  # Tuesday and the total, where 0 was
    assert result.out.rstrip().splitlines()[-1] == (
        "Note: Ana Lima's calendar has no attendee data (attendees: absent); its 3.5 h of "
        "busy events are counted as meetings (meetings: busy)."
    )


def test_table_to_a_file_keeps_the_note(run_cli, feed_only: Path) -> None:
    target = feed_only / "load.txt"
    result = run_cli("analyze", "--week", "2026-W45", "-o", str(target))
    assert result.code == 0, result.err
    assert (
        target.read_text()
        .rstrip()
        .splitlines()[-1]
        .startswith("Note: Ana Lima's calendar has no attendee data")
    )


def test_html_does_not_claim_no_overloaded_day_when_meetings_were_not_counted(
    run_cli, feed_only: Path
) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "html")
    assert result.code == 0, result.err
    page = result.out
    assert "No overloaded day in this period." not in page
    assert "the meetings of 1 person were not counted (Ana Lima: no attendee data)" in page
    assert '<span class="badge">no attendee data: meetings not counted</span>' in page
    assert "not counted (no attendee data)</td>" in page  # the summary, not "0.0 h"
    assert "set meetings: busy on this person&#39;s calendar:" in page


def test_html_with_meetings_busy_shows_hours_and_the_note(run_cli, feed_counted: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "html")
    assert result.code == 0, result.err
    page = result.out
    assert "No overloaded day in this period." in page
    assert "no attendee data: busy events counted as meetings" in page
    assert '<span class="h">2.5<small> h</small></span>' in page
    assert "3.5 h<span" in page  # the summary


def test_csv_repeats_the_fields_on_each_row(run_cli, feed_counted: Path) -> None:
    result = run_cli("analyze", "--week", "2026-W45", "--format", "csv")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.endswith(",attendees,meetings_from")
    assert len(rows) == 7 and all(r.endswith(",absent,busy") for r in rows)


# -- the real exports in ../shared/fixtures/ics ------------------------------------------------

#: Google and Outlook exports without ATTENDEE lines, and a week with their timed events.
EXPORTS = {
    "node-ical/google-calendar-kiev-tz.ics": "2016-W34",
    "node-ical/Office-2012-owa.ics": "2020-W44",
    "ical/office_365_extended_timezone.ics": "2024-W17",
    "ical/google_dtstart_until_mismatch.ics": "2023-W40",
}


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_real_exports_show_real_hours_with_the_note(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = FIXTURES / name
    config_text = f"""\
timezone: Europe/Berlin
people:
  - {{email: owner@example.com, name: Owner, calendar: {{ics: "{path}"MEETINGS}}}}
"""
    week = EXPORTS[name]
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    write(project / "steadyhand.yaml", config_text.replace("MEETINGS", ""))
    before = json.loads(run_cli("analyze", "--week", week, "--format", "json").out)
    (owner,) = before["people"]
    busy = sum(d["busy_minutes"] for d in owner["days"])
    assert owner["attendees"] == "absent" and busy > 0
    assert owner["week"]["meeting_minutes"] == 0
    assert "Note: Owner's calendar has no attendee data" in run_cli("analyze", "--week", week).out

    write(project / "steadyhand.yaml", config_text.replace("MEETINGS", ", meetings: busy"))
    after = json.loads(run_cli("analyze", "--week", week, "--format", "json").out)
    (owner,) = after["people"]
    assert (owner["attendees"], owner["meetings_from"]) == ("absent", "busy")
    assert owner["week"]["meeting_minutes"] == busy
    table = run_cli("analyze", "--week", week).out
    assert f"{busy / 60:.1f}" in next(li for li in table.splitlines() if "Owner" in li)
    assert table.rstrip().splitlines()[-1] == (
        f"Note: Owner's calendar has no attendee data (attendees: absent); its "
        f"{busy / 60:.1f} h of busy events are counted as meetings (meetings: busy)."
    )


def test_html_names_everyone_whose_meetings_were_not_counted() -> None:
    from worker.report.html import render_html

    def person(email: str, attendees: str, meetings_from: str) -> dict[str, object]:
        day = {
            "date": "2026-11-02",
            "working_minutes": 480,
            "meeting_minutes": 0,
            "busy_minutes": 90,
            "meeting_load": 0.0,
            "after_hours_meeting_minutes": 0,
            "double_booked_minutes": 0,
            "longest_chain_minutes": 0,
            "focus_minutes": 390,
            "fragmented_minutes": 0,
            "away": False,
            "overloaded": False,
            "reasons": [],
        }
        return {
            "email": email,
            "timezone": "Europe/Berlin",
            "attendees": attendees,
            "meetings_from": meetings_from,
            "days": [day],
            "week": {"meeting_minutes": 0, "overloaded_days": 0},
        }

    report = {
        "period": {"start": "2026-11-02", "end": "2026-11-02"},
        "people": [
            person("a@example.com", "absent", "attendees"),
            person("b@example.com", "absent", "attendees"),
            person("c@example.com", "present", "attendees"),
            person("d@example.com", "present", "busy"),
        ],
        "teams": [],
    }
    page = render_html(report, generated_at="now", thresholds={}, names={"a@example.com": "Al"})
    assert "the meetings of 2 people were not counted (Al, b@example.com: no attendee data)" in page
    assert "so their days may be overloaded all the same" in page
    assert page.count("no attendee data: meetings not counted</span>") == 2
    assert "d@example.com: every busy event counts as a meeting" in page
    assert "No overloaded day in this period." not in page
