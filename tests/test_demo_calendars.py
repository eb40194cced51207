"""The bundled demo calendars (config/demo/*.ics) really contain every demo scenario.

The files are read exactly as a connector would read an export: parsed with
icalendar and expanded with recurring_ical_events over the demo period, so a lost
EXDATE, override, time zone or attendee shows up here rather than in the demo.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo"

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")

# The expansion window: Monday 26 October to Friday 6 November 2026 inclusive.
PERIOD_START = date(2026, 10, 26)
PERIOD_END = date(2026, 11, 7)

MON_FRI = (0, 1, 2, 3, 4)
PEOPLE: dict[str, dict[str, Any]] = {
    "ana": {
        "name": "Ana Lima",
        "tz": BERLIN,
        "days": MON_FRI,
        "hours": [(time(9), time(12, 30)), (time(13, 30), time(17, 30))],
    },
    "bo": {"name": "Bo Berg", "tz": BERLIN, "days": MON_FRI, "hours": [(time(9), time(17))]},
    "cy": {"name": "Cy Chen", "tz": BERLIN, "days": (0, 1, 2, 3), "hours": [(time(9), time(17))]},
    "dee": {"name": "Dee Park", "tz": NEW_YORK, "days": MON_FRI, "hours": [(time(9), time(17))]},
    "eli": {"name": "Eli Moss", "tz": NEW_YORK, "days": MON_FRI, "hours": [(time(8), time(16))]},
}
BACK_TO_BACK_GAP = timedelta(minutes=5)


def email(who: str) -> str:
    return f"{who}@example.com"


@cache
def raw(who: str) -> bytes:
    return (DEMO / f"{who}.ics").read_bytes()


@cache
def calendar(who: str) -> Calendar:
    return Calendar.from_ical(raw(who))


@cache
def occurrences(who: str) -> tuple[Any, ...]:
    return tuple(recurring_ical_events.of(calendar(who)).between(PERIOD_START, PERIOD_END))


def titled(who: str, summary: str) -> list[Any]:
    found = sorted(
        (e for e in occurrences(who) if str(e.get("SUMMARY")) == summary),
        key=lambda e: utc(e.start),
    )
    assert found, f"{who}.ics has no {summary!r}"
    return found


def utc(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(), UTC)


def local(value: datetime, who: str) -> datetime:
    return value.astimezone(PEOPLE[who]["tz"])


def partstats(event: Any) -> dict[str, str]:
    attendees = event.get("ATTENDEE", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    return {
        str(a).lower().removeprefix("mailto:"): str(a.params.get("PARTSTAT", "NEEDS-ACTION"))
        for a in attendees
    }


def is_meeting(event: Any, who: str) -> bool:
    """docs/metrics.md: timed, not cancelled, not declined, busy, with someone else invited."""
    if not isinstance(event.start, datetime):
        return False
    if str(event.get("STATUS", "CONFIRMED")).upper() == "CANCELLED":
        return False
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    states = partstats(event)
    if states.get(email(who)) == "DECLINED":
        return False
    return any(address != email(who) for address in states)


def merge(
    spans: list[tuple[datetime, datetime]], gap: timedelta
) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def meetings_on(who: str, day: date) -> list[tuple[datetime, datetime]]:
    """The person's meetings on a local calendar day, in UTC, cut at local midnight."""
    tz = PEOPLE[who]["tz"]
    day_start = datetime.combine(day, time(), tz).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    spans = []
    for event in occurrences(who):
        if is_meeting(event, who):
            start, end = max(utc(event.start), day_start), min(utc(event.end), day_end)
            if start < end:
                spans.append((start, end))
    return spans


def longest_chain(who: str, day: date) -> timedelta:
    chains = merge(meetings_on(who, day), BACK_TO_BACK_GAP)
    return max((end - start for start, end in chains), default=timedelta())


def working_ranges(who: str, day: date) -> list[tuple[datetime, datetime]]:
    person = PEOPLE[who]
    if day.weekday() not in person["days"]:
        return []
    return [
        (
            datetime.combine(day, start, person["tz"]).astimezone(UTC),
            datetime.combine(day, end, person["tz"]).astimezone(UTC),
        )
        for start, end in person["hours"]
    ]


def inside_working_hours(who: str, start: datetime, end: datetime) -> bool:
    day = local(start, who).date()
    return any(ws <= start and end <= we for ws, we in working_ranges(who, day))


def meeting_load(who: str, day: date) -> float:
    meetings = merge(meetings_on(who, day), timedelta())
    working = working_ranges(who, day)
    inside = sum(
        (max(timedelta(), min(me, we) - max(ms, ws)) for ms, me in meetings for ws, we in working),
        timedelta(),
    )
    return inside / sum((we - ws for ws, we in working), timedelta())


def period_days() -> list[date]:
    return [PERIOD_START + timedelta(days=n) for n in range((PERIOD_END - PERIOD_START).days)]


# --- the files themselves ----------------------------------------------------


@pytest.mark.parametrize("who", PEOPLE)
def test_calendar_is_a_proper_export(who: str) -> None:
    data = raw(who)
    lines = data.split(b"\r\n")
    assert lines[-1] == b"", "the file ends with CRLF"
    assert b"\n" not in data.replace(b"\r\n", b""), "every line ends with CRLF"
    assert all(len(line) <= 75 for line in lines), "lines are folded at 75 octets"

    cal = calendar(who)
    assert cal.get("VERSION") == "2.0"
    assert cal.get("PRODID")
    assert str(cal.get("X-WR-CALNAME")) == PEOPLE[who]["name"]
    zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    assert set(zones) == {"Europe/Berlin", "America/New_York"}
    for tz in zones.values():
        assert {c.name for c in tz.subcomponents} == {"STANDARD", "DAYLIGHT"}
        assert all("RRULE" in c for c in tz.subcomponents), "real yearly rules"

    events = cal.walk("VEVENT")
    assert events
    for event in events:
        for key in ("UID", "DTSTAMP", "SUMMARY", "STATUS", "ORGANIZER", "ATTENDEE"):
            assert key in event, f"{event.get('SUMMARY')} lacks {key}"
        assert email(who) in partstats(event), "the owner's own ATTENDEE line is present"
        if isinstance(event.start, datetime):
            assert event["DTSTART"].params["TZID"] in zones


@pytest.mark.parametrize("who", PEOPLE)
def test_every_event_lies_inside_the_period(who: str) -> None:
    first = datetime.combine(PERIOD_START, time(), PEOPLE[who]["tz"]).astimezone(UTC)
    last = datetime.combine(PERIOD_END, time(), PEOPLE[who]["tz"]).astimezone(UTC)
    assert occurrences(who)
    for event in occurrences(who):
        assert first <= utc(event.start) and utc(event.end) <= last, event.get("SUMMARY")
    # and nothing recurs past the period either
    later = recurring_ical_events.of(calendar(who)).between(PERIOD_END, date(2027, 12, 31))
    assert list(later) == []


def test_shared_meetings_agree_across_calendars() -> None:
    seen: dict[tuple[str, datetime], tuple[str, datetime, datetime, dict[str, str], str]] = {}
    for who in PEOPLE:
        for event in occurrences(who):
            key = (str(event["UID"]), utc(event.start))
            facts = (
                str(event["SUMMARY"]),
                utc(event.start),
                utc(event.end),
                partstats(event),
                str(event["ORGANIZER"]),
            )
            assert seen.setdefault(key, facts) == facts, key
            team_guests = {a.split("@")[0] for a in facts[3]} & set(PEOPLE)
            assert who in team_guests
            for guest in team_guests:
                assert (str(event["UID"]), utc(event.start)) in {
                    (str(e["UID"]), utc(e.start)) for e in occurrences(guest)
                }, f"{facts[0]} is missing from {guest}.ics"


# --- 1. the daily stand-up ---------------------------------------------------


@pytest.mark.parametrize("who", PEOPLE)
def test_standup_is_a_weekday_series_organised_by_ana_with_everyone(who: str) -> None:
    masters = [e for e in calendar(who).walk("VEVENT") if str(e["SUMMARY"]) == "Team stand-up"]
    series = [e for e in masters if "RRULE" in e]
    assert len(series) == 1
    rule = series[0]["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"]
    assert rule["BYDAY"] == ["MO", "TU", "WE", "TH", "FR"]
    assert "UNTIL" in rule or "COUNT" in rule
    assert str(series[0]["ORGANIZER"]) == "mailto:ana@example.com"
    assert set(partstats(series[0])) == {email(p) for p in PEOPLE}
    assert len({str(e["UID"]) for e in masters}) == 1


@pytest.mark.parametrize("who", PEOPLE)
def test_standup_is_cancelled_on_friday_30_october(who: str) -> None:
    days = [local(e.start, "ana").date() for e in titled(who, "Team stand-up")]
    weekdays = [d for d in period_days() if d.weekday() < 5]
    assert days == [d for d in weekdays if d != date(2026, 10, 30)]


@pytest.mark.parametrize("who", PEOPLE)
def test_standup_moved_to_1600_berlin_on_tuesday_3_november(who: str) -> None:
    for event in titled(who, "Team stand-up"):
        start, end = local(event.start, "ana"), local(event.end, "ana")
        expected = time(16) if start.date() == date(2026, 11, 3) else time(15, 30)
        assert start.time() == expected
        assert end - start == timedelta(minutes=15)
    moved = [e for e in calendar(who).walk("VEVENT") if "RECURRENCE-ID" in e]
    assert [e["RECURRENCE-ID"].dt for e in moved] == [datetime(2026, 11, 3, 15, 30, tzinfo=BERLIN)]


@pytest.mark.parametrize("who", ["dee", "eli"])
def test_standup_is_at_1030_new_york_before_the_us_change_and_0930_after(who: str) -> None:
    # 15:30 Berlin is 10:30 in New York while the offset is 5 h (until 1 November)
    # and 09:30 once New York falls back too (offset 6 h).
    for event in titled(who, "Team stand-up"):
        start = local(event.start, who)
        if start.date() < date(2026, 11, 1):
            assert start.time() == time(10, 30)
        elif start.date() == date(2026, 11, 3):
            assert start.time() == time(10)  # the moved instance, 16:00 Berlin
        else:
            assert start.time() == time(9, 30)


# --- 2. weekly one-on-ones ---------------------------------------------------


@pytest.mark.parametrize("report", ["bo", "cy", "dee", "eli"])
def test_ana_has_a_weekly_one_on_one_with_each_report(report: str) -> None:
    summary = f"1:1 Ana / {PEOPLE[report]['name'].split()[0]}"
    for who in ("ana", report):
        found = titled(who, summary)
        assert len(found) == 2, "one per week"
        assert found[1].start - found[0].start == timedelta(weeks=1)
        for event in found:
            assert event.end - event.start == timedelta(minutes=30)
            assert set(partstats(event)) == {email("ana"), email(report)}
            for person in ("ana", report):
                assert inside_working_hours(person, utc(event.start), utc(event.end))
            items = [
                line for line in str(event["DESCRIPTION"]).splitlines() if line.startswith("- [ ] ")
            ]
            assert len(items) >= 2
    master = [e for e in calendar("ana").walk("VEVENT") if str(e["SUMMARY"]) == summary]
    assert [e["RRULE"]["FREQ"] for e in master] == [["WEEKLY"]]


# --- 3. Ana's overloaded Thursday --------------------------------------------


def test_ana_has_a_four_hour_back_to_back_chain_on_5_november() -> None:
    day = date(2026, 11, 5)
    chains = merge(meetings_on("ana", day), BACK_TO_BACK_GAP)
    first = chains[0]
    assert local(first[0], "ana").time() == time(9)
    assert local(first[1], "ana").time() == time(13)
    assert longest_chain("ana", day) == timedelta(hours=4)
    assert len(chains) > 1, "more meetings that afternoon"
    morning = [s for s in meetings_on("ana", day) if s[0] < first[1]]
    assert len(morning) >= 4


def test_ana_meeting_load_on_5_november_is_well_over_60_percent() -> None:
    assert meeting_load("ana", date(2026, 11, 5)) > 0.7


def test_nobody_else_has_a_chain_over_three_hours() -> None:
    for who in PEOPLE:
        for day in period_days():
            if (who, day) == ("ana", date(2026, 11, 5)):
                continue
            if day.weekday() >= 5:
                # the weekend holds only the release watch, one long meeting, not a chain
                watch = [
                    (utc(e.start), utc(e.end))
                    for e in occurrences(who)
                    if str(e["SUMMARY"]) == "Release watch"
                ]
                for start, end in meetings_on(who, day):
                    assert any(ws <= start and end <= we for ws, we in watch), (who, day)
                continue
            assert longest_chain(who, day) <= timedelta(hours=3), (who, day)


# --- 4. after-hours call -----------------------------------------------------


def test_bo_and_dee_have_an_after_hours_incident_review_on_3_november() -> None:
    for who in ("bo", "dee"):
        (event,) = titled(who, "Incident review with US")
        start, end = utc(event.start), utc(event.end)
        assert (local(start, "bo"), local(end, "bo")) == (
            datetime(2026, 11, 3, 19, tzinfo=BERLIN),
            datetime(2026, 11, 3, 20, tzinfo=BERLIN),
        )
        assert (local(start, "dee").time(), local(end, "dee").time()) == (time(13), time(14))
        assert partstats(event)[email(who)] == "ACCEPTED"
        assert is_meeting(event, who)
    assert not inside_working_hours("bo", start, end)
    assert inside_working_hours("dee", start, end)


# --- 5. declined meeting -----------------------------------------------------


def test_cy_declined_the_architecture_forum() -> None:
    for who in ("ana", "bo", "cy"):
        (event,) = titled(who, "Architecture forum")
        assert local(event.start, "cy") == datetime(2026, 11, 4, 10, tzinfo=BERLIN)
        assert local(event.end, "cy") == datetime(2026, 11, 4, 11, tzinfo=BERLIN)
        states = partstats(event)
        assert states[email("cy")] == "DECLINED"
        assert {s for a, s in states.items() if a != email("cy")} == {"ACCEPTED"}
    assert not is_meeting(titled("cy", "Architecture forum")[0], "cy")


# --- 6. out of office --------------------------------------------------------


def test_eli_is_out_of_office_on_2_november() -> None:
    (event,) = titled("eli", "Out of office")
    assert event["DTSTART"].params.get("VALUE") == "DATE"
    assert event.start == date(2026, 11, 2)
    assert event.end == date(2026, 11, 3)
    assert str(event["X-MICROSOFT-CDO-BUSYSTATUS"]) == "OOF"
    assert str(event["TRANSP"]) == "OPAQUE"


# --- 7. over the US DST change -----------------------------------------------


def test_release_watch_spans_the_us_dst_change_and_lasts_five_hours() -> None:
    for who in ("dee", "eli"):
        (event,) = titled(who, "Release watch")
        assert event["DTSTART"].params["TZID"] == "America/New_York"
        assert event.start == datetime(2026, 10, 31, 23, tzinfo=NEW_YORK)
        assert event.end == datetime(2026, 11, 1, 3, tzinfo=NEW_YORK)
        assert event.start.utcoffset() == timedelta(hours=-4)
        assert event.end.utcoffset() == timedelta(hours=-5)
        # wall clocks say 4 h, but 01:00-02:00 happens twice: 5 real hours
        assert utc(event.end) - utc(event.start) == timedelta(hours=5)
        assert str(event["ORGANIZER"]) == "mailto:dee@example.com"
        assert set(partstats(event)) == {email("dee"), email("eli")}


# --- the background ----------------------------------------------------------


def test_background_has_a_tentative_a_free_lunch_hold_and_a_cancelled_meeting() -> None:
    everything = [(who, e) for who in PEOPLE for e in occurrences(who)]
    assert any(partstats(e).get(email(who)) == "TENTATIVE" for who, e in everything)

    (lunch,) = titled("bo", "Lunch")
    assert str(lunch["TRANSP"]) == "TRANSPARENT"
    assert not is_meeting(lunch, "bo")

    cancelled = {str(e["SUMMARY"]) for _, e in everything if str(e["STATUS"]) == "CANCELLED"}
    assert cancelled == {"Offsite planning"}


def test_meeting_hours_differ_visibly_between_people() -> None:
    hours = {
        who: sum(
            (end - start for day in period_days() for start, end in meetings_on(who, day)),
            timedelta(),
        )
        / timedelta(hours=1)
        for who in PEOPLE
    }
    assert max(hours, key=lambda who: hours[who]) == "ana"
    assert max(hours.values()) >= 1.5 * min(hours.values())
    for who in PEOPLE:
        assert len({str(e["UID"]) for e in occurrences(who)}) >= 8, "a realistic background"
