"""Every real-world calendar in ../shared/fixtures/ics analysed without error."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from connectors.ics import IcsCalendar
from tests.test_ics_fixtures import FIXTURES, GOOD, WIDE, needs_fixtures
from worker.core.analysis import analyze_days, roll_up
from worker.core.model import CalendarRef, Person, WorkingHours

HOURS = WorkingHours.of({d: [(time(9), time(12, 30)), (time(13, 30), time(17))] for d in range(5)})
#: Each file is read as the calendar of someone in one of these zones, in turn.
ZONES = ("Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kathmandu")


@needs_fixtures
@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_calendar_is_analysed_without_error(path: Path) -> None:
    person = Person("owner@example.com", "Owner", ZONES[GOOD.index(path) % len(ZONES)], HOURS)
    ref = CalendarRef(f"fixture:{path.name}", person.email, "ics", str(path), person.timezone)
    events = list(IcsCalendar().sync(ref, WIDE, None).events)
    if not events:
        pytest.skip("no event in 1990-2035")
    first = min(e.start for e in events).astimezone(person.tz).date()
    last = min(max(e.end for e in events).astimezone(person.tz).date(), first + timedelta(days=400))
    days = analyze_days(person, events, first, last)
    assert [d.date for d in days] == [
        first + timedelta(days=i) for i in range((last - first).days + 1)
    ]
    for day in days:
        assert 0 <= day.double_booked_minutes <= day.meeting_minutes <= day.busy_minutes + 1e-6
        assert 0 <= day.focus_minutes + day.fragmented_minutes <= day.working_minutes + 1e-6
        assert day.overloaded == bool(day.reasons)
    assert roll_up(days).overloaded_days == sum(d.overloaded for d in days)
