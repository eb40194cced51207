"""Calendar-load metrics (docs/metrics.md): hand-made calendars in hostile zones, then properties."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tz import (
    APIA,
    APIA_SKIPPED_DAY,
    BERLIN,
    EU_DST_END,
    EU_DST_START,
    KATHMANDU,
    LORD_HOWE,
    LORD_HOWE_DST_END,
    LORD_HOWE_DST_START,
    NEW_YORK,
    SYDNEY,
    SYDNEY_DST_END,
    SYDNEY_DST_START,
    US_DST_END,
    US_DST_START,
    at,
    real_hours,
)
from worker.core.analysis import (
    REASONS,
    DayMetrics,
    Policy,
    _us,
    _wall_us,
    analyze_day,
    analyze_days,
    away_dates,
    is_busy,
    is_meeting,
    roll_up,
    team_spread,
)
from worker.core.model import (
    Event,
    EventType,
    Person,
    Response,
    Status,
    Transparency,
    WorkingHours,
    local_day_range,
    wall_time,
)

ME = "ana@example.com"
BO = "bo@example.com"
EVERY_DAY = dict.fromkeys(range(7), "09:00-17:00")
_ids = itertools.count()


def _ranges(text: str) -> list[tuple[time, time]]:
    out = []
    for part in text.split(","):
        start, end = part.strip().split("-")
        out.append((time.fromisoformat(start), time.fromisoformat(end)))
    return out


def person(tz: ZoneInfo, hours: Mapping[int, str] | None = None) -> Person:
    """Ana in ``tz``; working hours per weekday (0 = Monday), Mon-Fri 09:00-17:00 by default."""
    hours = dict.fromkeys(range(5), "09:00-17:00") if hours is None else hours
    return Person(ME, "Ana", tz.key, WorkingHours.of({d: _ranges(t) for d, t in hours.items()}))


def meeting(
    start: datetime, end: datetime, *, others: tuple[str, ...] = (BO,), **kw: object
) -> Event:
    ident = str(kw.pop("id", f"e{next(_ids)}"))
    return Event(ident, "primary", start, end, attendees=others, **kw)  # type: ignore[arg-type]


def solo(start: datetime, end: datetime, **kw: object) -> Event:
    """A busy event with nobody else on it (a task, a personal hold)."""
    return meeting(start, end, others=(), **kw)


def day_of(tz: ZoneInfo, day: date, events: Sequence[Event], **kw: object) -> DayMetrics:
    hours = kw.pop("hours", None)
    policy = kw.pop("policy", Policy())
    assert not kw
    return analyze_day(person(tz, hours), events, day, policy)  # type: ignore[arg-type]


# -- one ordinary day ---------------------------------------------------------------------


def test_design_example_day_reproduces_the_json_of_design_section_3() -> None:
    d = date(2026, 11, 23)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    events = [
        meeting(t("09:00"), t("12:00")),
        solo(t("12:30"), t("13:00")),
        meeting(t("13:00"), t("15:00")),
    ]
    m = day_of(BERLIN, d, events)
    assert m.as_dict() == {
        "date": "2026-11-23",
        "working_minutes": 480,
        "meeting_minutes": 300,
        "busy_minutes": 330,
        "meeting_load": 0.625,
        "after_hours_meeting_minutes": 0,
        "double_booked_minutes": 0,
        "longest_chain_minutes": 180,
        "focus_minutes": 120,
        "fragmented_minutes": 30,
        "away": False,
        "overloaded": True,
        "reasons": ["meeting_load"],
    }
    json.dumps(m.as_dict())


def test_solo_busy_event_is_busy_but_neither_meeting_nor_chain() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    events = [meeting(t("10:00"), t("11:00")), solo(t("11:00"), t("11:30"))]
    events.append(meeting(t("14:00"), t("15:00")))
    m = day_of(BERLIN, d, events)
    assert (m.meeting_minutes, m.busy_minutes, m.meeting_load) == (120, 150, 0.25)
    assert m.longest_chain_minutes == 60
    assert (m.focus_minutes, m.fragmented_minutes) == (150 + 120, 60)
    assert not m.overloaded


def test_empty_working_day_is_all_focus_and_not_overloaded() -> None:
    m = day_of(BERLIN, date(2026, 11, 24), [])
    assert (m.working_minutes, m.focus_minutes, m.fragmented_minutes) == (480, 480, 0)
    assert m.meeting_load == 0 and m.reasons == ()


def test_minutes_are_fractional_not_rounded() -> None:
    d = date(2026, 11, 24)
    start = at(BERLIN, f"{d} 10:00")
    m = day_of(BERLIN, d, [meeting(start, start + timedelta(minutes=10, seconds=30))])
    assert m.meeting_minutes == 10.5


# -- hostile zones --------------------------------------------------------------------------


def test_lord_howe_dst_start_day_is_23_5_hours() -> None:
    d = LORD_HOWE_DST_START
    span = local_day_range(d, LORD_HOWE)
    assert real_hours(span.start, span.end) == 23.5
    whole_day = meeting(span.start, span.end)
    m = day_of(LORD_HOWE, d, [whole_day], hours={6: "01:00-03:00"})
    assert m.busy_minutes == m.meeting_minutes == 23.5 * 60
    assert m.working_minutes == 90  # 01:00-02:00, then 02:30-03:00
    assert m.after_hours_meeting_minutes == 23.5 * 60 - 90
    assert m.longest_chain_minutes == 23.5 * 60


def test_lord_howe_dst_end_day_is_24_5_hours_and_repeats_half_an_hour_of_work() -> None:
    d = LORD_HOWE_DST_END
    span = local_day_range(d, LORD_HOWE)
    m = day_of(LORD_HOWE, d, [solo(span.start, span.end)], hours={6: "01:00-03:00"})
    assert m.busy_minutes == 24.5 * 60
    assert m.working_minutes == 150  # 01:30-02:00 happens twice


def test_meeting_in_the_repeated_hour_of_lord_howe_counts_real_minutes() -> None:
    d = LORD_HOWE_DST_END
    start = at(LORD_HOWE, f"{d} 01:40")  # first pass, +11:00
    end = at(LORD_HOWE, f"{d} 01:35", fold=1)  # second pass, +10:30: wall clock went back
    m = day_of(LORD_HOWE, d, [meeting(start, end)], hours={6: "01:00-03:00"})
    assert m.meeting_minutes == 25
    assert m.after_hours_meeting_minutes == 0


def test_us_fall_back_day_has_25_hours_and_the_repeated_hour_counts_twice() -> None:
    d = US_DST_END
    span = local_day_range(d, NEW_YORK)
    m = day_of(NEW_YORK, d, [solo(span.start, span.end)], hours=EVERY_DAY)
    assert m.busy_minutes == 25 * 60
    first = at(NEW_YORK, f"{d} 01:00")
    second = at(NEW_YORK, f"{d} 01:00", fold=1)
    m = day_of(NEW_YORK, d, [meeting(first, second)], hours={6: "00:30-02:30"})
    assert m.meeting_minutes == 60  # the wall clock says 0
    assert m.working_minutes == 180
    assert m.meeting_load == pytest.approx(1 / 3)


def test_us_spring_forward_day_has_23_hours() -> None:
    d = US_DST_START
    span = local_day_range(d, NEW_YORK)
    assert real_hours(span.start, span.end) == 23
    m = day_of(NEW_YORK, d, [], hours={6: "01:00-04:00"})
    assert m.working_minutes == 120
    assert m.focus_minutes == 120


def test_eu_fall_back_day_working_range_across_the_change_is_an_hour_longer() -> None:
    d = EU_DST_END
    span = local_day_range(d, BERLIN)
    assert real_hours(span.start, span.end) == 25
    m = day_of(BERLIN, d, [], hours={6: "02:00-04:00"})
    assert (m.working_minutes, m.focus_minutes) == (180, 180)
    m = day_of(BERLIN, EU_DST_START, [], hours={6: "01:00-04:00"})
    assert m.working_minutes == 120


def test_sydney_change_days_are_25_and_23_hours() -> None:
    for d, hours in ((SYDNEY_DST_END, 25), (SYDNEY_DST_START, 23)):
        span = local_day_range(d, SYDNEY)
        m = day_of(SYDNEY, d, [solo(span.start, span.end)])
        assert m.busy_minutes == hours * 60


def test_kathmandu_quarter_hour_offset_places_events_in_local_hours() -> None:
    d = date(2026, 6, 1)  # Monday; 09:00 +05:45 is 03:15 UTC
    events = [
        meeting(datetime(2026, 6, 1, 3, 15, tzinfo=UTC), datetime(2026, 6, 1, 4, 15, tzinfo=UTC)),
        meeting(datetime(2026, 6, 1, 11, 15, tzinfo=UTC), datetime(2026, 6, 1, 12, 0, tzinfo=UTC)),
    ]
    m = day_of(KATHMANDU, d, events)
    assert m.meeting_minutes == 105
    assert m.after_hours_meeting_minutes == 45  # 17:00-17:45 local
    assert m.meeting_load == 60 / 480


def test_kathmandu_event_across_local_midnight_is_split_at_18_15_utc() -> None:
    ev = meeting(datetime(2026, 6, 1, 18, 0, tzinfo=UTC), datetime(2026, 6, 1, 18, 45, tzinfo=UTC))
    mon, tue = analyze_days(person(KATHMANDU), [ev], date(2026, 6, 1), date(2026, 6, 2))
    assert (mon.meeting_minutes, tue.meeting_minutes) == (15, 30)


def test_apia_days_around_the_skipped_day_do_not_crash_and_lose_no_minute() -> None:
    start = datetime(2011, 12, 28, 10, tzinfo=UTC)  # 2011-12-28 00:00 -10:00
    end = datetime(2011, 12, 31, 10, tzinfo=UTC)  # 2012-01-01 00:00 +14:00
    first, last = date(2011, 12, 28), date(2011, 12, 31)
    days = analyze_days(person(APIA, EVERY_DAY), [solo(start, end)], first, last)
    assert [d.date.day for d in days] == [28, 29, 30, 31]
    assert sum(d.busy_minutes for d in days) == 3 * 24 * 60  # three real days, four dates
    assert all(d.focus_minutes == d.fragmented_minutes == 0 for d in days)
    skipped = [d for d in days if real_hours(*_bounds(APIA, d.date)) == 0]
    assert len(skipped) == 1
    assert skipped[0].working_minutes == 0 and skipped[0].meeting_load is None
    assert not skipped[0].overloaded
    assert len(analyze_days(person(APIA, EVERY_DAY), [], first, last)) == 4


def test_apia_skipped_day_2011_12_30_is_the_zero_hour_day() -> None:
    start = datetime(2011, 12, 29, 19, tzinfo=UTC)  # 2011-12-29 09:00 -10:00
    ev = meeting(start, start + timedelta(hours=1))
    thu, fri, sat = analyze_days(
        person(APIA, EVERY_DAY), [ev], date(2011, 12, 29), APIA_SKIPPED_DAY + timedelta(days=1)
    )
    assert (thu.working_minutes, thu.meeting_minutes) == (480, 60)
    assert (fri.working_minutes, fri.meeting_minutes, fri.meeting_load) == (0, 0, None)
    assert sat.working_minutes == 480


def _bounds(tz: ZoneInfo, d: date) -> tuple[datetime, datetime]:
    span = local_day_range(d, tz)
    return span.start, span.end


# -- splitting at midnight -----------------------------------------------------------------


def test_event_over_midnight_is_split_between_the_two_days() -> None:
    ev = meeting(at(BERLIN, "2026-11-23 22:00"), at(BERLIN, "2026-11-24 02:00"))
    mon, tue = analyze_days(person(BERLIN), [ev], date(2026, 11, 23), date(2026, 11, 24))
    assert (mon.meeting_minutes, tue.meeting_minutes) == (120, 120)
    assert (mon.after_hours_meeting_minutes, tue.after_hours_meeting_minutes) == (120, 120)
    assert (mon.longest_chain_minutes, tue.longest_chain_minutes) == (120, 120)
    assert mon.reasons == tue.reasons == ("after_hours",)


def test_event_over_midnight_into_the_us_fall_back_day_gets_its_long_night() -> None:
    ev = solo(at(NEW_YORK, "2026-10-31 23:00"), at(NEW_YORK, "2026-11-01 03:00"))
    sat, sun = analyze_days(person(NEW_YORK), [ev], date(2026, 10, 31), US_DST_END)
    assert (sat.busy_minutes, sun.busy_minutes) == (60, 240)


def test_multi_day_event_covers_every_day_in_between() -> None:
    ev = solo(at(BERLIN, "2026-11-23 12:00"), at(BERLIN, "2026-11-26 12:00"))
    days = analyze_days(person(BERLIN), [ev], date(2026, 11, 22), date(2026, 11, 27))
    assert [d.busy_minutes for d in days] == [0, 720, 1440, 1440, 720, 0]


# -- focus time and working ranges ---------------------------------------------------------


LUNCH = dict.fromkeys(range(5), "09:00-12:30, 13:30-17:30")


def test_lunch_break_splits_focus_gaps() -> None:
    d = date(2026, 11, 24)
    m = day_of(
        BERLIN, d, [meeting(at(BERLIN, f"{d} 10:00"), at(BERLIN, f"{d} 11:00"))], hours=LUNCH
    )
    assert m.working_minutes == 450
    assert m.focus_minutes == 240  # 13:30-17:30; 11:00-12:30 stops at the break
    assert m.fragmented_minutes == 60 + 90


def test_gap_exactly_focus_min_long_counts_as_focus() -> None:
    d = date(2026, 11, 24)
    m = day_of(
        BERLIN, d, [meeting(at(BERLIN, f"{d} 09:00"), at(BERLIN, f"{d} 10:30"))], hours=LUNCH
    )
    assert m.focus_minutes == 120 + 240
    assert m.fragmented_minutes == 0


def test_touching_working_ranges_make_one_gap() -> None:
    d = date(2026, 11, 24)
    hours = dict.fromkeys(range(5), "09:00-12:30, 12:30-17:00")
    m = day_of(BERLIN, d, [solo(at(BERLIN, f"{d} 09:00"), at(BERLIN, f"{d} 11:00"))], hours=hours)
    assert (m.working_minutes, m.focus_minutes, m.fragmented_minutes) == (480, 360, 0)


def test_focus_and_ooo_and_working_location_events_leave_time_free() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    events = [
        solo(t("09:00"), t("12:00"), event_type=EventType.FOCUS),
        solo(t("12:00"), t("13:00"), event_type=EventType.OUT_OF_OFFICE),
        solo(t("09:00"), t("17:00"), event_type=EventType.WORKING_LOCATION),
    ]
    m = day_of(BERLIN, d, events)
    assert (m.busy_minutes, m.focus_minutes) == (0, 480)


def test_no_focus_on_a_fragmented_day() -> None:
    d = date(2026, 11, 24)
    events = [
        meeting(at(BERLIN, f"{d} {h}:00"), at(BERLIN, f"{d} {h}:30")) for h in (10, 12, 14, 16)
    ]
    m = day_of(BERLIN, d, events)
    assert (m.focus_minutes, m.fragmented_minutes) == (0, 60 + 90 + 90 + 90 + 30)
    assert m.reasons == ("no_focus",)


def test_no_focus_is_raised_even_when_working_hours_are_shorter_than_focus_min() -> None:
    m = day_of(BERLIN, date(2026, 11, 24), [], hours={1: "09:00-10:00"})
    assert m.focus_minutes == 0 and m.reasons == ("no_focus",)


def test_policy_focus_min_is_honoured() -> None:
    d = date(2026, 11, 24)
    events = [meeting(at(BERLIN, f"{d} 10:00"), at(BERLIN, f"{d} 10:30"))]
    policy = Policy(focus_min=timedelta(minutes=60))
    m = day_of(BERLIN, d, events, policy=policy)
    assert (m.focus_minutes, m.fragmented_minutes) == (60 + 390, 0)


# -- which events count ----------------------------------------------------------------------


def _one_hour(**kw: object) -> Event:
    d = date(2026, 11, 24)
    return meeting(at(BERLIN, f"{d} 10:00"), at(BERLIN, f"{d} 11:00"), **kw)


EXCLUDED = {
    "declined": {"response": Response.DECLINED},
    "cancelled": {"status": Status.CANCELLED},
    "free": {"transparency": Transparency.FREE},
    "out_of_office": {"event_type": EventType.OUT_OF_OFFICE},
    "focus": {"event_type": EventType.FOCUS},
    "working_location": {"event_type": EventType.WORKING_LOCATION},
    "steadyhand_block": {"owned_block_id": "blk-1"},
    "all_day": {"all_day": True},
}


@pytest.mark.parametrize("kw", EXCLUDED.values(), ids=EXCLUDED.keys())
def test_excluded_event_is_neither_busy_nor_meeting(kw: dict[str, object]) -> None:
    ev = _one_hour(**kw)
    assert not is_busy(ev, person(BERLIN)) and not is_meeting(ev, person(BERLIN))
    m = day_of(BERLIN, date(2026, 11, 24), [ev])
    assert (m.busy_minutes, m.meeting_minutes, m.focus_minutes) == (0, 0, 480)


INCLUDED = {
    "accepted": {"response": Response.ACCEPTED},
    "tentative_answer": {"response": Response.TENTATIVE},
    "not_answered": {"response": Response.NEEDS_ACTION},
    "tentative_event": {"status": Status.TENTATIVE},
}


@pytest.mark.parametrize("kw", INCLUDED.values(), ids=INCLUDED.keys())
def test_unanswered_or_tentative_meeting_still_counts(kw: dict[str, object]) -> None:
    m = day_of(BERLIN, date(2026, 11, 24), [_one_hour(**kw)])
    assert m.meeting_minutes == 60


ATTENDEES = {
    "nobody": ((), None, False),
    "blank_entries": (("", " "), " ", False),
    "only_me": ((ME,), None, False),
    "me_in_other_case": ((" Ana@Example.COM ",), ME, False),
    "someone_else": ((ME, BO), ME, True),
    "someone_else_in_caps": (("BO@EXAMPLE.COM",), None, True),
    "organizer_else_graph_style": ((ME,), BO, True),
}


@pytest.mark.parametrize(
    ("others", "organizer", "expected"), ATTENDEES.values(), ids=ATTENDEES.keys()
)
def test_meeting_needs_someone_other_than_the_person(
    others: tuple[str, ...], organizer: str | None, expected: bool
) -> None:
    ev = _one_hour(others=others, organizer=organizer)
    assert is_busy(ev, person(BERLIN))
    assert is_meeting(ev, person(BERLIN)) is expected


# -- overload reasons ---------------------------------------------------------------------


def test_double_booked_minutes_and_reason() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    events = [
        meeting(t("10:00"), t("11:00")),
        meeting(t("10:30"), t("11:30")),
        meeting(t("10:45"), t("11:00")),
        solo(t("11:00"), t("12:00")),  # busy, not a meeting: never double-booked
    ]
    m = day_of(BERLIN, d, events)
    assert (m.meeting_minutes, m.double_booked_minutes) == (90, 30)
    assert "double_booked" in m.reasons


def test_same_meeting_on_two_calendars_is_not_double_booked() -> None:
    ev = _one_hour(id="standup")
    twin = replace(ev, calendar_id="work-shared")
    m = day_of(BERLIN, date(2026, 11, 24), [ev, twin])
    assert (m.meeting_minutes, m.double_booked_minutes) == (60, 0)


def test_back_to_back_chain_joins_gaps_up_to_five_minutes() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    base = [
        meeting(t("09:00"), t("10:00")),
        meeting(t("10:05"), t("11:00")),  # gap 5: joined
        meeting(t("11:03"), t("12:00")),  # gap 3: joined
    ]
    m = day_of(BERLIN, d, [*base, meeting(t("12:10"), t("13:00"))])  # gap 10: new run
    assert m.longest_chain_minutes == 180 and "back_to_back" not in m.reasons
    m = day_of(BERLIN, d, [*base, meeting(t("12:05"), t("12:30"))])
    assert m.longest_chain_minutes == 210 and "back_to_back" in m.reasons
    late = t("12:05") + timedelta(seconds=1)
    m = day_of(BERLIN, d, [*base, meeting(late, t("12:30"))])
    assert m.longest_chain_minutes == 180


def test_after_hours_reason_only_above_thirty_minutes() -> None:
    d = date(2026, 11, 24)
    m = day_of(BERLIN, d, [meeting(at(BERLIN, f"{d} 17:00"), at(BERLIN, f"{d} 17:30"))])
    assert m.after_hours_meeting_minutes == 30 and "after_hours" not in m.reasons
    m = day_of(BERLIN, d, [meeting(at(BERLIN, f"{d} 08:29"), at(BERLIN, f"{d} 09:30"))])
    assert m.after_hours_meeting_minutes == 31 and "after_hours" in m.reasons


def test_meeting_load_reason_only_above_the_limit() -> None:
    d = date(2026, 11, 24)
    exact = meeting(at(BERLIN, f"{d} 09:00"), at(BERLIN, f"{d} 13:48"))  # 288 / 480 = 0.6
    m = day_of(BERLIN, d, [exact])
    assert m.meeting_load == 0.6 and "meeting_load" not in m.reasons
    m = day_of(BERLIN, d, [exact], policy=Policy(max_meeting_load=0.5))
    assert "meeting_load" in m.reasons


def test_all_five_reasons_come_in_contract_order() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    events = [
        meeting(t("07:00"), t("12:30")),  # after hours 120, chain > 180
        meeting(t("12:00"), t("12:30")),  # double-booked
        meeting(t("13:00"), t("16:00")),  # load 6.5 h of 8; 30 + 60 fragmented
    ]
    m = day_of(BERLIN, d, events)
    assert m.reasons == REASONS
    assert m.overloaded


# -- days off and away days ----------------------------------------------------------------


def test_day_off_has_no_load_and_no_focus_reason_but_after_hours_counts() -> None:
    sat = date(2026, 11, 28)
    m = day_of(BERLIN, sat, [meeting(at(BERLIN, f"{sat} 10:00"), at(BERLIN, f"{sat} 11:00"))])
    assert (m.working_minutes, m.meeting_load, m.focus_minutes, m.fragmented_minutes) == (
        0,
        None,
        0,
        0,
    )
    assert m.after_hours_meeting_minutes == 60
    assert m.reasons == ("after_hours",)


def test_all_day_ooo_makes_days_away_and_never_overloaded() -> None:
    mon = date(2026, 11, 23)
    ooo = solo(
        at(BERLIN, "2026-11-23 00:00"),
        at(BERLIN, "2026-11-25 00:00"),
        all_day=True,
        event_type=EventType.OUT_OF_OFFICE,
    )
    crunch = meeting(at(BERLIN, f"{mon} 07:00"), at(BERLIN, f"{mon} 18:00"))
    days = analyze_days(person(BERLIN), [ooo, crunch], mon, mon + timedelta(days=2))
    assert [d.away for d in days] == [True, True, False]
    assert days[0].working_minutes == 480 and days[0].meeting_minutes == 660
    assert (days[0].overloaded, days[0].reasons) == (False, ())
    assert days[1].reasons == () and days[2].reasons == ()


def test_all_day_ooo_dates_follow_the_event_wall_clock_not_the_person_zone() -> None:
    # stored as midnight UTC (as some feeds do): still the 24th for someone in New York
    ooo = solo(
        datetime(2026, 11, 24, tzinfo=UTC),
        datetime(2026, 11, 25, tzinfo=UTC),
        all_day=True,
        event_type=EventType.OUT_OF_OFFICE,
    )
    days = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]
    assert away_dates([ooo], person(NEW_YORK), days) == {date(2026, 11, 24)}


def test_timed_ooo_must_cover_all_working_hours() -> None:
    d = date(2026, 11, 24)
    t = lambda hm: at(BERLIN, f"{d} {hm}")  # noqa: E731
    ooo = {"event_type": EventType.OUT_OF_OFFICE}
    p = person(BERLIN, LUNCH)
    assert away_dates([solo(t("08:00"), t("18:00"), **ooo)], p, [d]) == {d}
    assert away_dates(
        [solo(t("09:00"), t("12:30"), **ooo), solo(t("13:30"), t("17:30"), **ooo)], p, [d]
    ) == {d}
    assert away_dates([solo(t("09:00"), t("12:30"), **ooo)], p, [d]) == set()
    cancelled = solo(t("08:00"), t("18:00"), status=Status.CANCELLED, **ooo)
    assert away_dates([cancelled], p, [d]) == set()
    assert day_of(BERLIN, d, [solo(t("08:00"), t("18:00"), **ooo)]).away


def test_timed_ooo_over_a_weekend_makes_the_days_off_away() -> None:
    trip = solo(
        at(BERLIN, "2026-11-27 17:00"),
        at(BERLIN, "2026-11-30 00:00"),
        event_type=EventType.OUT_OF_OFFICE,
    )
    days = [date(2026, 11, d) for d in (27, 28, 29, 30)]
    assert away_dates([trip], person(BERLIN), days) == {date(2026, 11, 28), date(2026, 11, 29)}
    short = solo(
        at(BERLIN, "2026-11-28 10:00"),
        at(BERLIN, "2026-11-28 12:00"),
        event_type=EventType.OUT_OF_OFFICE,
    )
    assert away_dates([short], person(BERLIN), days) == set()


def test_away_dates_accepts_scattered_days() -> None:
    ooo = solo(
        at(BERLIN, "2026-11-23 00:00"),
        at(BERLIN, "2026-12-01 00:00"),
        all_day=True,
        event_type=EventType.OUT_OF_OFFICE,
    )
    days = {date(2026, 11, 23), date(2026, 11, 27), date(2026, 12, 1)}
    assert away_dates([ooo], person(BERLIN), days) == {date(2026, 11, 23), date(2026, 11, 27)}
    assert away_dates([ooo], person(BERLIN), []) == set()


# -- week and team -------------------------------------------------------------------------


def test_week_roll_up_sums_days_and_counts_overloaded_ones() -> None:
    mon = date(2026, 11, 23)
    events = [
        meeting(
            at(BERLIN, f"{mon + timedelta(days=i)} 09:00"),
            at(BERLIN, f"{mon + timedelta(days=i)} 15:00"),
        )
        for i in range(3)
    ]
    days = analyze_days(person(BERLIN), events, mon, mon + timedelta(days=6))
    week = roll_up(days)
    assert week.meeting_minutes == 3 * 360
    assert week.overloaded_days == 3
    assert week.focus_minutes == 3 * 120 + 2 * 480
    assert week.days == tuple(days)
    assert week.as_dict() == {
        "meeting_minutes": 1080,
        "busy_minutes": 1080,
        "after_hours_meeting_minutes": 0,
        "focus_minutes": 1320,
        "overloaded_days": 3,
    }
    assert roll_up([]).overloaded_days == 0


def test_analyze_days_with_end_before_start_is_empty() -> None:
    assert analyze_days(person(BERLIN), [], date(2026, 11, 24), date(2026, 11, 23)) == []


def test_team_spread_median_ratio_and_members_above_one_and_a_half_times() -> None:
    spread = team_spread("Platform", {"c@x": 400, "a@x": 100, "b@x": 200, "d@x": 310})
    assert spread.median_meeting_minutes == 255
    assert spread.max_over_median == 400 / 255
    assert spread.above_1_5x_median == ("c@x",)
    assert team_spread("Odd", {"a": 100, "b": 200, "c": 900}).max_over_median == 4.5


def test_team_spread_with_zero_median_has_no_ratio() -> None:
    spread = team_spread("Quiet", {"a": 0, "b": 0, "c": 30})
    assert (spread.median_meeting_minutes, spread.max_over_median) == (0, None)
    assert spread.above_1_5x_median == ("c",)
    empty = team_spread("Empty", {})
    assert (empty.median_meeting_minutes, empty.max_over_median, empty.above_1_5x_median) == (
        0,
        None,
        (),
    )


# -- properties --------------------------------------------------------------------------------

CHANGES = [
    (LORD_HOWE, LORD_HOWE_DST_START),
    (LORD_HOWE, LORD_HOWE_DST_END),
    (NEW_YORK, US_DST_START),
    (NEW_YORK, US_DST_END),
    (BERLIN, EU_DST_START),
    (BERLIN, EU_DST_END),
    (SYDNEY, SYDNEY_DST_START),
    (KATHMANDU, date(2026, 6, 1)),
    (APIA, APIA_SKIPPED_DAY),
]
ATTENDEE_SETS = [(), (ME,), ("ANA@example.com",), (BO,), (ME, "cy@example.com")]


@st.composite
def working_hours(draw: st.DrawFn) -> WorkingHours:
    quarter = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))
    ranges = st.lists(st.tuples(quarter, quarter).filter(lambda r: r[0] < r[1]), max_size=2)
    return WorkingHours.of({d: draw(ranges) for d in range(7)})


@st.composite
def calendars(draw: st.DrawFn) -> tuple[Person, list[Event], date, date]:
    tz, change = draw(st.sampled_from(CHANGES))
    who = Person(ME, "Ana", tz.key, draw(working_hours()))
    first, last = change - timedelta(days=2), change + timedelta(days=2)
    origin = local_day_range(first, tz).start.astimezone(UTC) - timedelta(hours=6)
    events = []
    for i in range(draw(st.integers(0, 12))):
        start = origin + timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
        end = start + timedelta(minutes=draw(st.integers(0, 12 * 60)))
        zone = draw(st.sampled_from([UTC, tz, BERLIN]))
        events.append(
            Event(
                f"ev{i}",
                "primary",
                start.astimezone(zone),
                end.astimezone(zone),
                all_day=draw(st.sampled_from([False] * 9 + [True])),
                status=draw(st.sampled_from([Status.CONFIRMED] * 3 + list(Status))),
                response=draw(st.sampled_from(list(Response))),
                transparency=draw(st.sampled_from([Transparency.BUSY] * 3 + [Transparency.FREE])),
                event_type=draw(st.sampled_from([EventType.DEFAULT] * 4 + list(EventType))),
                attendees=draw(st.sampled_from(ATTENDEE_SETS)),
                owned_block_id=draw(st.sampled_from([None] * 5 + ["blk"])),
            )
        )
    return who, events, first, last


def _minute(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) // 60


def _oracle(who: Person, events: Sequence[Event], day: date) -> dict[str, float | None]:
    """The metrics counted minute by minute (every instant here falls on a whole minute)."""
    span = local_day_range(day, who.tz)
    lo, hi = _minute(span.start), _minute(span.end)
    working = set()
    for r in who.working_hours.ranges_on(day, who.tz):
        working |= set(range(max(lo, _minute(r.start)), min(hi, _minute(r.end))))
    busy: set[int] = set()
    depth: Counter[int] = Counter()
    for ev in {(e.id, e.start, e.end): e for e in events}.values():
        if not is_busy(ev, who):
            continue
        covered = set(range(max(lo, _minute(ev.start)), min(hi, _minute(ev.end))))
        busy |= covered
        if is_meeting(ev, who):
            depth.update(covered)
    meetings = sorted(depth)
    free = sorted(working - busy)
    gaps = []  # free runs broken by busy minutes and by the ends of working ranges
    run = 0
    for m in sorted(working):
        if m in busy:
            gaps.append(run)
            run = 0
        else:
            run += 1
        if m + 1 not in working:
            gaps.append(run)
            run = 0
    best = first = 0
    previous: int | None = None
    for cur in meetings:
        if previous is None or cur - previous - 1 > 5:  # minutes between two meetings
            first = cur
        best = max(best, cur - first + 1)
        previous = cur
    in_hours = len(working & set(meetings))
    assert len(free) == sum(gaps)
    return {
        "working_minutes": len(working),
        "meeting_minutes": len(meetings),
        "busy_minutes": len(busy),
        "busy_in_hours": len(working & busy),
        "meeting_load": in_hours / len(working) if working else None,
        "after_hours_meeting_minutes": len(meetings) - in_hours,
        "double_booked_minutes": sum(1 for n in depth.values() if n >= 2),
        "longest_chain_minutes": best,
        "focus_minutes": sum(g for g in gaps if g >= 120),
        "fragmented_minutes": sum(g for g in gaps if g < 120),
    }


PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(calendars())
def test_random_calendars_around_dst_changes_match_a_minute_by_minute_count(
    cal: tuple[Person, list[Event], date, date],
) -> None:
    who, events, first, last = cal
    for m in analyze_days(who, events, first, last):
        expected = _oracle(who, events, m.date)
        busy_in_hours = expected.pop("busy_in_hours")
        got = m.as_dict()
        for name, value in expected.items():
            if value is None or got[name] is None:
                assert got[name] == value, name
            else:
                assert math.isclose(got[name], value, abs_tol=1e-6), (name, got[name], value)  # type: ignore[arg-type]
        assert busy_in_hours is not None
        assert math.isclose(
            m.focus_minutes + m.fragmented_minutes + busy_in_hours, m.working_minutes, abs_tol=1e-6
        )


@PROPERTY
@given(calendars())
def test_random_calendars_keep_the_metric_bounds(
    cal: tuple[Person, list[Event], date, date],
) -> None:
    who, events, first, last = cal
    for m in analyze_days(who, events, first, last):
        span = local_day_range(m.date, who.tz)
        day_minutes = real_hours(span.start, span.end) * 60
        assert 0 <= m.double_booked_minutes <= m.meeting_minutes <= m.busy_minutes <= day_minutes
        assert 0 <= m.after_hours_meeting_minutes <= m.meeting_minutes
        assert m.longest_chain_minutes <= day_minutes
        assert m.focus_minutes + m.fragmented_minutes <= m.working_minutes + 1e-6
        assert (m.meeting_load is None) == (m.working_minutes == 0)
        assert m.meeting_load is None or 0 <= m.meeting_load <= 1
        assert m.overloaded == bool(m.reasons)
        assert list(m.reasons) == [r for r in REASONS if r in m.reasons]
        assert not (m.away and m.reasons)


@PROPERTY
@given(calendars(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_event_order(
    cal: tuple[Person, list[Event], date, date], rnd: random.Random
) -> None:
    who, events, first, last = cal
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert analyze_days(who, shuffled, first, last) == analyze_days(who, events, first, last)


@PROPERTY
@given(calendars(), st.data())
def test_splitting_an_event_into_two_adjoining_parts_changes_nothing(
    cal: tuple[Person, list[Event], date, date], data: st.DataObject
) -> None:
    who, events, first, last = cal
    # real durations: two datetimes of one zone subtract by wall clock (wrong over a DST change)
    timed = [
        i
        for i, e in enumerate(events)
        if not e.all_day and e.range.duration >= timedelta(minutes=2)
    ]
    if not timed:
        return
    i = data.draw(st.sampled_from(timed))
    ev = events[i]
    cut = ev.range.start + timedelta(
        minutes=data.draw(st.integers(1, int(ev.range.duration.total_seconds()) // 60 - 1))
    )
    cut = cut.astimezone(data.draw(st.sampled_from([UTC, KATHMANDU, who.tz])))
    parts = [replace(ev, id=f"{ev.id}/1", end=cut), replace(ev, id=f"{ev.id}/2", start=cut)]
    split = [*events[:i], *parts, *events[i + 1 :]]
    assert analyze_days(who, split, first, last) == analyze_days(who, events, first, last)


@PROPERTY
@given(calendars())
def test_one_day_at_a_time_equals_the_whole_run(
    cal: tuple[Person, list[Event], date, date],
) -> None:
    who, events, first, last = cal
    run = analyze_days(who, events, first, last)
    assert [analyze_day(who, events, m.date) for m in run] == run
    assert {m.date for m in run if m.away} == away_dates(events, who, [m.date for m in run])


@PROPERTY
@given(calendars())
def test_the_zone_events_are_written_in_does_not_matter(
    cal: tuple[Person, list[Event], date, date],
) -> None:
    who, events, first, last = cal
    in_utc = [
        e if e.all_day else replace(e, start=e.start.astimezone(UTC), end=e.end.astimezone(UTC))
        for e in events
    ]
    assert analyze_days(who, in_utc, first, last) == analyze_days(who, events, first, last)


# -- internal fast paths ---------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "change"), CHANGES, ids=[f"{tz.key}-{d}" for tz, d in CHANGES])
def test_fast_wall_clock_conversion_equals_model_wall_time(tz: ZoneInfo, change: date) -> None:
    """``_wall_us`` skips ``wall_time``'s round trip unless the wall time was skipped."""
    for day in (change - timedelta(days=1), change, change + timedelta(days=1)):
        for minute in range(0, 24 * 60, 5):
            wall = time(minute // 60, minute % 60)
            assert _wall_us(day, wall, tz) == _us(wall_time(day, wall, tz)), (day, wall)


def test_inlined_classification_equals_is_busy_and_is_meeting() -> None:
    """``analyze_day`` classifies events inline; it must agree with the public predicates."""
    who = person(BERLIN)
    d = date(2026, 11, 24)
    organizers = [None, "", ME, " ana@EXAMPLE.com", BO]
    for status, response, transparency, kind, owned, others, organizer in itertools.product(
        Status, Response, Transparency, EventType, [None, "blk"], ATTENDEE_SETS, organizers
    ):
        ev = _one_hour(
            status=status,
            response=response,
            transparency=transparency,
            event_type=kind,
            owned_block_id=owned,
            others=others,
            organizer=organizer,
        )
        m = analyze_day(who, [ev], d)
        assert (m.busy_minutes == 60) is is_busy(ev, who)
        assert (m.meeting_minutes == 60) is is_meeting(ev, who)
