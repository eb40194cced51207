"""The daily reflection, to a person at the end of their working day: the day's figures,
and the facts its send-time words about the next working day are made from.

The values are decided here (:func:`context`); what they say about "today" and
"tomorrow" is worded when the email goes out (:func:`worker.core.wording.reflection_at_send`,
from :mod:`worker.cycle.deliver`). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import analysis, schedule, wording
from worker.core.analysis import DayMetrics, MeetingsFrom
from worker.core.model import Event, Person, local_day_range
from worker.programs.base import hours

NAME: Final = "reflection"
PRIORITY: Final = 3
PREVIEW: Final = True


def due(
    person: Person,
    at: time,
    days: frozenset[int],
    within: timedelta,
    now: datetime,
    away: Set[date],
) -> schedule.Due | None:
    """The person's next reflection (``emails.reflection``: ``at`` on ``days``)."""
    return schedule.daily(NAME, person, at, days, now, away, within)


def ahead(day: date) -> tuple[date, date]:
    """The days after ``day`` in which the next working day is looked for."""
    return day + timedelta(days=1), day + timedelta(days=schedule.SEARCH_DAYS)


def next_day(person: Person, day: date, events: Sequence[Event]) -> date:
    """The working day after ``day`` that the reflection looks ahead to (away days, from
    ``events`` over :func:`ahead`, skipped); the next calendar day when none is found."""
    first, last = ahead(day)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    away = analysis.away_dates(events, person, days)
    return schedule.next_working_day(person, day, away) or first


def context(
    person: Person,
    day: date,
    following: date,
    metrics: Sequence[DayMetrics],
    events: Sequence[Event],
    meetings_from: MeetingsFrom,
    blocks: Sequence[tuple[str, datetime, datetime]],
) -> dict[str, Any]:
    """The reflection's values as decided (templates/README.md): the reflected ``day``'s
    figures, and under ``_reflect`` the facts its send-time words are computed from: the
    next working day ``following``, its meetings (of ``events``, counted as
    ``meetings_from`` says) and its protected ``blocks`` (title, start, end).
    ``metrics`` covers ``day`` to ``following``."""
    by_date = {m.date: m for m in metrics}
    today = by_date[day]
    tomorrow = by_date[following]
    span = local_day_range(following, person.tz)
    meetings = sorted(
        (e.start, e.end)
        for e in events
        if analysis.is_meeting(e, person, meetings_from)
        and e.start < span.end
        and e.end > span.start
    )
    kept = sorted(b for b in blocks if b[1].astimezone(person.tz).date() == following)
    return {
        "name": person.name,
        "first_name": wording.first_name(person),
        "email": person.email,
        "timezone": person.timezone,
        "day_label": wording.day_label(day),
        "today": {
            "meeting_hours": hours(today.meeting_minutes),
            "meeting_load": today.meeting_load,
            "meeting_load_pct": round((today.meeting_load or 0) * 100),
            "longest_chain_hours": hours(today.longest_chain_minutes),
            "focus_hours": hours(today.focus_minutes),
            "after_hours_meeting_minutes": round(today.after_hours_meeting_minutes),
            "reasons": list(today.reasons),
            "reasons_text": wording.reason_felt(today.reasons),
        },
        "tomorrow": {
            "label": wording.day_label(following),
            "day_off": tomorrow.working_minutes == 0,
            "meeting_hours": hours(tomorrow.meeting_minutes),
        },
        "_reflect": wording.reflection_facts(day, following, meetings, kept),
    }
