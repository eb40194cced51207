"""The heads-up that the coming day or week is overloaded: each overloaded day with its
reasons, and what could move or be shortened.

Pure: no I/O, no clock (every moment arrives as an argument).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule
from worker.core.analysis import DayMetrics
from worker.core.model import Event, Person
from worker.core.wording import day_label, one_line, plural, reason_figures, reason_words
from worker.programs.base import MAX_SUGGESTIONS, WINDOW, hours, short_day, who

NAME: Final = "overload"
PRIORITY: Final = 2
PREVIEW: Final = True


def _shortened(minutes: int) -> int | None:
    """The "speedy meeting" length: 5 min off up to 30 min, 10 min off longer ones."""
    if minutes < 20:
        return None
    return minutes - 5 if minutes <= 30 else minutes - 10


def context(
    person: Person,
    days: Sequence[DayMetrics],
    heaviest: Sequence[tuple[str, datetime, datetime, int]],
    lookahead_label: str,
) -> dict[str, Any]:
    """The heads-up to ``person`` that the coming day or week (``days``) is overloaded.

    Each overloaded day with its reasons in words (:func:`worker.core.wording.reason_words`;
    :func:`worker.core.wording.reason_figures` without the codes).
    ``heaviest`` are candidate meetings ``(label, start, end, attendee_count)`` to move or
    shorten, in the order given (the first three are used), shown in the person's zone.
    A meeting of at most three people on an overloaded day is proposed to move to the
    lightest other working day of ``days`` (not overloaded, not away, with the most focus
    time, at least the meeting's length); any other meeting of 20 minutes or more is
    proposed to be shortened (25 for 30, 50 for 60: a break before the next one).
    """
    tz = person.tz
    overloaded = [d for d in days if d.overloaded]
    day_rows = []
    for d in overloaded:
        as_dict = d.as_dict()
        day_rows.append(
            {
                "label": day_label(d.date),
                "date": d.date.isoformat(),
                "meeting_hours": hours(d.meeting_minutes),
                "meeting_load_pct": None if d.meeting_load is None else round(d.meeting_load * 100),
                "focus_hours": hours(d.focus_minutes),
                "reasons": list(d.reasons),
                "reason_words": reason_words(as_dict),
                "reason_texts": reason_figures(as_dict),
                "reasons_text": ", ".join(reason_figures(as_dict)),
            }
        )
    heavy_dates = {d.date for d in overloaded}
    lighter = sorted(
        (d for d in days if not d.overloaded and not d.away and d.working_minutes > 0),
        key=lambda d: (-d.focus_minutes, d.date),
    )
    meetings = []
    for label, start, end, count in list(heaviest)[:MAX_SUGGESTIONS]:
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        minutes = max(0, round((end - start) / timedelta(minutes=1)))
        name = one_line(label) or "a meeting"
        when = f"{short_day(local_start.date())} {local_start:%H:%M}–{local_end:%H:%M}"
        target = next(
            (
                d
                for d in lighter
                if d.date != local_start.date() and d.focus_minutes >= max(minutes, 1)
            ),
            None,
        )
        action: str | None
        if target is not None and count <= 3 and local_start.date() in heavy_dates:
            action = "move"
            suggestion = (
                f"Move {name} ({when}) to {day_label(target.date)}, which still has "
                f"{hours(target.focus_minutes)} h of uninterrupted time."
            )
            to_minutes = None
        elif (short := _shortened(minutes)) is not None:
            action = "shorten"
            to_minutes = short
            suggestion = (
                f"Shorten {name} ({when}) from {minutes} to {short} min: "
                "a break before whatever comes next."
            )
        else:
            action, to_minutes = None, None
            suggestion = f"Ask whether {name} ({when}) needs you there."
        meetings.append(
            {
                "label": name,
                "when": when,
                "day_label": day_label(local_start.date()),
                "start_time": f"{local_start:%H:%M}",
                "end_time": f"{local_end:%H:%M}",
                "minutes": minutes,
                "attendees": count,
                "action": action,
                "shorten_to_minutes": to_minutes,
                "move_to": day_label(target.date) if action == "move" and target else None,
                "suggestion": suggestion,
            }
        )
    return {
        **who(person),
        "lookahead_label": one_line(lookahead_label),
        "overloaded_count": len(overloaded),
        "days": day_rows,
        "meetings": meetings,
        "suggestions": [m["suggestion"] for m in meetings],
    }


def due(person: Person, now: datetime, away: Set[date]) -> schedule.Due | None:
    """The person's heads-up for their coming day (decided from their local midnight)."""
    return schedule.daily(NAME, person, time(0), frozenset(range(7)), now, away, WINDOW)


def leader_due(leader: Person, person: Person, due: schedule.Due) -> schedule.Due:
    """The copy of ``person``'s heads-up for their leader (``notify_leader``)."""
    return schedule.Due(NAME, leader.email, f"{person.email}:{due.period}", due.at, due.until)


def heaviest(
    person: Person, days: Sequence[DayMetrics], meetings: Sequence[Event]
) -> list[tuple[str, datetime, datetime, int]]:
    """The three longest ``meetings`` (already counted as meetings) on the overloaded
    ``days``, as :func:`context` takes them."""
    heavy_days = {d.date for d in days if d.overloaded}
    on_heavy = [ev for ev in meetings if ev.start.astimezone(person.tz).date() in heavy_days]
    on_heavy.sort(key=lambda ev: (-(ev.end - ev.start).total_seconds(), ev.start))
    return [(meeting_label(ev), ev.start, ev.end, len(ev.attendees)) for ev in on_heavy[:3]]


def meeting_label(event: Event) -> str:
    """Its title, else how many are on it; "" (worded "a meeting") for a busy event that
    names nobody (``meetings: busy`` on a calendar without attendees)."""
    count = len(set(event.attendees) | {event.organizer or ""}) - 1
    return event.title or (f"a meeting with {plural(count, 'person', 'people')}" if count else "")


def lookahead_label(day: date, last: date, lookahead: timedelta) -> str:
    return "today" if last == day else f"the next {lookahead.days} days"
