"""When a reflection goes out: the recipient's local time, inside working hours, never away."""

from __future__ import annotations

import itertools
from datetime import date, time, timedelta

import pytest

from tests.tz import BERLIN, KATHMANDU, LORD_HOWE, NEW_YORK, at
from worker.core.model import Person, WorkingHours
from worker.core.schedule import daily, is_allowed, next_allowed

WEEKDAYS = frozenset(range(5))


def person(tz: str, hours: dict[int, list[tuple[time, time]]] | None = None) -> Person:
    hours = hours or {d: [(time(9), time(17))] for d in range(5)}
    return Person("p@example.com", "P", tz, WorkingHours.of(hours))


def test_reflection_is_due_at_1630_local_and_stays_due_until_working_hours_end() -> None:
    p = person("Europe/Berlin")
    due = daily(
        "reflection",
        p,
        time(16, 30),
        WEEKDAYS,
        at(BERLIN, "2026-11-05 16:45"),
        set(),
        timedelta(hours=4),
    )
    assert due is not None
    assert due.key == "reflection:p@example.com:2026-11-05"
    assert due.at == at(BERLIN, "2026-11-05 16:30")
    assert due.until == at(BERLIN, "2026-11-05 17:00")
    assert due.is_due(at(BERLIN, "2026-11-05 16:45"))
    assert not due.is_due(at(BERLIN, "2026-11-05 17:00"))


def test_before_the_time_the_next_send_is_scheduled_not_due() -> None:
    p = person("America/New_York")
    now = at(BERLIN, "2026-11-05 16:45")  # 10:45 in New York
    due = daily("reflection", p, time(16, 30), WEEKDAYS, now, set(), timedelta(hours=4))
    assert due is not None and not due.is_due(now)
    assert due.at == at(NEW_YORK, "2026-11-05 16:30")


def test_a_time_after_working_hours_moves_to_the_next_working_morning() -> None:
    p = person("America/New_York", {d: [(time(8), time(16))] for d in range(5)})
    due = daily(
        "reflection",
        p,
        time(16, 30),
        WEEKDAYS,
        at(NEW_YORK, "2026-11-05 12:00"),
        set(),
        timedelta(hours=4),
    )
    assert due is not None
    assert due.period == "2026-11-05"
    assert due.at == at(NEW_YORK, "2026-11-06 08:00")


def test_friday_evening_moves_past_the_weekend_and_an_away_monday() -> None:
    p = person("Europe/Berlin")
    away = {date(2026, 11, 9)}
    due = daily(
        "reflection",
        p,
        time(18, 0),
        frozenset({4}),
        at(BERLIN, "2026-11-06 12:00"),
        away,
        timedelta(hours=4),
    )
    assert due is not None
    assert due.at == at(BERLIN, "2026-11-10 09:00")


def test_no_send_on_a_day_off_or_an_away_day() -> None:
    p = person("Europe/Berlin", {d: [(time(9), time(17))] for d in range(4)})  # Friday off
    friday = at(BERLIN, "2026-11-06 16:40")
    due = daily("reflection", p, time(16, 30), WEEKDAYS, friday, set(), timedelta(hours=4))
    assert due is not None and due.period == "2026-11-09"
    away = daily(
        "reflection",
        p,
        time(16, 30),
        WEEKDAYS,
        at(BERLIN, "2026-11-05 16:40"),
        {date(2026, 11, 5)},
        timedelta(hours=4),
    )
    assert away is not None and away.period == "2026-11-09"


def test_a_missed_send_goes_stale_after_its_window() -> None:
    p = person("Europe/Berlin", {d: [(time(9), time(20))] for d in range(5)})
    due = daily(
        "reflection",
        p,
        time(16, 30),
        WEEKDAYS,
        at(BERLIN, "2026-11-05 19:00"),
        set(),
        timedelta(hours=2),
    )
    assert due is not None and due.period == "2026-11-06"


def test_kathmandu_quarter_hour_offset() -> None:
    p = person("Asia/Kathmandu")
    due = daily(
        "reflection",
        p,
        time(16, 30),
        WEEKDAYS,
        at(KATHMANDU, "2026-11-05 16:31"),
        set(),
        timedelta(hours=4),
    )
    assert due is not None and due.is_due(at(KATHMANDU, "2026-11-05 16:31"))
    assert due.at.strftime("%H:%M") == "10:45"  # UTC


def test_us_dst_change_keeps_the_local_time() -> None:
    p = person("America/New_York")
    before = daily(
        "r", p, time(16, 30), WEEKDAYS, at(NEW_YORK, "2026-10-30 16:31"), set(), timedelta(hours=1)
    )
    after = daily(
        "r", p, time(16, 30), WEEKDAYS, at(NEW_YORK, "2026-11-02 16:31"), set(), timedelta(hours=1)
    )
    assert before is not None and after is not None
    assert (
        before.at.astimezone(NEW_YORK).strftime("%H:%M")
        == after.at.astimezone(NEW_YORK).strftime("%H:%M")
        == "16:30"
    )
    assert after.at - before.at == timedelta(days=3, hours=1)


def test_lord_howe_half_hour_dst_on_the_change_day() -> None:
    p = person("Australia/Lord_Howe", {d: [(time(0), time(23))] for d in range(7)})
    # 2026-10-04 02:00 -> 02:30: a wall time in the gap moves to the first instant after it
    moment = next_allowed(at(LORD_HOWE, "2026-10-04 01:59"), p, set())
    assert moment == at(LORD_HOWE, "2026-10-04 01:59")
    assert is_allowed(at(LORD_HOWE, "2026-10-04 02:45"), p, set())


@pytest.mark.parametrize(
    ("zone", "change"),
    [
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Europe/Berlin", date(2026, 3, 29)),
        ("Europe/Berlin", date(2026, 10, 25)),
        ("Australia/Sydney", date(2026, 4, 5)),
        ("Australia/Lord_Howe", date(2026, 4, 5)),
        ("Australia/Lord_Howe", date(2026, 10, 4)),
    ],
)
def test_daily_send_keeps_its_local_time_across_a_dst_change(zone: str, change: date) -> None:
    every_day = {d: [(time(9), time(17))] for d in range(7)}
    p = person(zone, every_day)
    tz = p.tz
    sends = []
    for offset in (-1, 0, 1):
        day = change + timedelta(days=offset)
        now = at(tz, f"{day} 16:31")
        due = daily(
            "reflection", p, time(16, 30), frozenset(range(7)), now, set(), timedelta(hours=1)
        )
        assert due is not None and due.is_due(now) and due.period == day.isoformat()
        sends.append(due.at)
    assert [s.astimezone(tz).strftime("%H:%M") for s in sends] == ["16:30"] * 3
    gaps = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(sends)}
    assert gaps != {24.0}  # the change shows in real time between the sends


def test_weekly_program_moves_off_a_day_off_and_names_its_iso_week() -> None:
    from worker.core.schedule import weekly

    p = person("Europe/Berlin", {d: [(time(9), time(17))] for d in range(4)})  # Fridays off
    due = weekly(
        "recognition", p, 4, time(10), at(BERLIN, "2026-11-06 10:05"), set(), timedelta(hours=4)
    )
    assert due is not None
    assert due.period == "2026-W45" and due.at == at(BERLIN, "2026-11-09 09:00")


def test_the_daily_cap_bundles_the_rest_into_one() -> None:
    from worker.core.schedule import Due, cap_per_day

    p = person("Europe/Berlin")
    now = at(BERLIN, "2026-11-05 10:00")
    dues = [Due(f"p{i}", p.email, "x", now, now) for i in range(4)]
    assert cap_per_day(dues, p, 0, 2) == (dues[:1], dues[1:])
    assert cap_per_day(dues[:2], p, 0, 2) == (dues[:2], [])
    assert cap_per_day(dues, p, 2, 2) == ([], dues)
