"""The pulse check: one to three questions each week or every two weeks, answered with one
click per score, anonymous to leaders.

When: ``emails.pulse.at`` (``"fri 14:00"``) in each recipient's zone, moved into their
working hours (someone off that day gets it at ``at`` on their last working day before
it in the same week). With ``every: 2w`` it goes only in the ISO weeks whose number is even
(W02, W04 … W52): the same weeks for everyone, whatever day the worker started. A year
with a week 53 has two odd weeks in a row (W53, W01), so once in such a year the gap is
three weeks.

The period of a pulse is the ISO week of the day it is due (``2026-W45``); its answers can
be changed until the end of the Sunday of that week, in the person's zone. Answers are
stored per person only so the person can see and change their own; leaders see only
figures over at least ``privacy.min_team_size`` people.

Pure: no I/O, no clock (every moment arrives as an argument).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule
from worker.core.model import Person, local_day_range, wall_time
from worker.programs.base import who

NAME: Final = "pulse"
PRIORITY: Final = 4
PREVIEW: Final = True


@dataclass(frozen=True, slots=True)
class Question:
    """One pulse question as the templates and the form need it."""

    id: str
    text: str
    low: int
    high: int

    @property
    def scale(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def scores(self) -> range:
        return range(self.low, self.high + 1)


#: The ISO week of a day, as a pulse's period: ``2026-W45``.
week_of = schedule.iso_week


def monday_of(week: str) -> date:
    """The Monday of an ISO week written ``2026-W45``; ValueError for anything else."""
    year, _, number = week.partition("-W")
    if len(week) != 8 or not year.isdecimal() or not number.isdecimal():
        raise ValueError(f"{week!r} is not an ISO week")
    return date.fromisocalendar(int(year), int(number), 1)


def runs_in(day: date, weeks: int) -> bool:
    """Whether a pulse sent ``every`` ``weeks`` (1 or 2) runs in the week of ``day``: every
    week, or (every 2 weeks) the ISO weeks whose number is even."""
    return weeks == 1 or day.isocalendar()[1] % 2 == 0


def closes(week: str, person: Person) -> datetime:
    """When a week's answers stop being editable: the end of its Sunday, their zone."""
    return local_day_range(monday_of(week) + timedelta(days=6), person.tz).end


def due(
    person: Person,
    weekday: int,
    at: time,
    weeks: int,
    within: timedelta,
    now: datetime,
    away: Set[date],
) -> schedule.Due | None:
    """The person's next pulse (``emails.pulse``: ``at`` on ``weekday``, ``every`` 1 or 2
    weeks), moved into their working hours; its period is the week of ``weekday``."""
    today = now.astimezone(person.tz).date()
    monday = today - timedelta(days=today.weekday())
    for offset in range(-1, 5):
        day = monday + timedelta(weeks=offset, days=weekday)
        if not runs_in(day, weeks):
            continue
        week = week_of(day)
        moved = _moment(person, day, at, away, closes(week, person))
        if moved is None:
            continue
        until = min(schedule.allowed_until(moved, person, within), closes(week, person))
        if until > now:
            return schedule.Due(NAME, person.email, week, moved, until)
    return None


def _moment(
    person: Person, day: date, at: time, away: Set[date], closing: datetime
) -> datetime | None:
    """When the pulse of ``day``'s week goes to ``person``: ``at`` on ``day`` moved into
    their working hours; when that falls after the week (a day off, away), ``at`` on their
    last working day before it in the same week."""
    for back in range(day.weekday() + 1):
        moved = schedule.next_allowed(
            wall_time(day - timedelta(days=back), at, person.tz), person, away
        )
        if moved is not None and moved < closing:
            return moved
    return None


def context(
    person: Person, week: str, questions: Sequence[Question], min_team_size: int
) -> dict[str, Any]:
    """The pulse's values (templates/README.md): the week, its questions with their
    scales, and the privacy rule in figures."""
    monday = monday_of(week)
    sunday = monday + timedelta(days=6)
    return {
        **who(person),
        "week": week,
        "week_label": f"the week of {monday:%A} {monday.day} {monday:%B}",
        "until": f"{sunday:%A} {sunday.day} {sunday:%B}",
        "min_team_size": min_team_size,
        "questions": [
            {
                "id": q.id,
                "text": q.text,
                "scale": q.scale,
                "low": q.low,
                "high": q.high,
                "scores": list(range(q.low, q.high + 1)),
            }
            for q in questions
        ],
    }
