"""Pure: who gets which email when, in the recipient's own local time.

Rules (DESIGN §5):

* A send happens inside the recipient's working hours, never on a day off or an away
  day. A due time that falls outside is moved to the next allowed instant.
* Each send has an idempotency key ``program:recipient:period``; the period of a daily
  program is the local date it is about (``2026-11-05``).
* A send that was missed (the worker was down) is still made while it is less than
  ``within`` past its allowed time and the recipient is inside working hours; later than
  that it is skipped, so a worker coming back after a weekend does not send a pile of
  stale prompts.

No clock is read here: ``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from worker.model import UTC, Person, wall_time

#: How far ahead :func:`next_allowed` looks before deciding there is no allowed time.
SEARCH_DAYS = 21


@dataclass(frozen=True, slots=True)
class Due:
    """One send: ``at`` is when it may go (UTC); ``until`` when it goes stale."""

    program: str
    recipient: str
    period: str
    at: datetime
    until: datetime

    @property
    def key(self) -> str:
        return f"{self.program}:{self.recipient}:{self.period}"

    def is_due(self, now: datetime) -> bool:
        return self.at <= now < self.until


def is_allowed(moment: datetime, person: Person, away: Collection[date]) -> bool:
    """Is ``moment`` inside the person's working hours on a day they are not away?"""
    local = moment.astimezone(person.tz)
    day = local.date()
    if day in away:
        return False
    return any(r.contains(moment) for r in person.working_hours.ranges_on(day, person.tz))


def next_allowed(moment: datetime, person: Person, away: Collection[date]) -> datetime | None:
    """The first instant at or after ``moment`` inside working hours on a day not away."""
    tz = person.tz
    day = moment.astimezone(tz).date()
    for offset in range(SEARCH_DAYS):
        current = day + timedelta(days=offset)
        if current in away:
            continue
        for r in person.working_hours.ranges_on(current, tz):
            if r.end > moment:
                return max(r.start, moment).astimezone(UTC)
    return None


def allowed_until(moment: datetime, person: Person, within: timedelta) -> datetime:
    """``moment + within``, cut at the end of the working range that holds ``moment``."""
    local_day = moment.astimezone(person.tz).date()
    for r in person.working_hours.ranges_on(local_day, person.tz):
        if r.contains(moment):
            return min(moment + within, r.end).astimezone(UTC)
    return (moment + within).astimezone(UTC)


def daily(
    program: str,
    person: Person,
    at: time,
    days: Collection[int],
    now: datetime,
    away: Collection[date],
    within: timedelta,
) -> Due | None:
    """The next send of a daily program (e.g. ``reflection`` at 16:30 on mon-fri).

    Returns the earliest period whose send window has not closed yet: if its ``at`` is
    in the past the send is due now; otherwise it is the next one coming. Periods are
    the local dates the program runs on; yesterday's is considered too, so a prompt
    moved past midnight (``at`` after working hours) is not lost.
    """
    tz = person.tz
    today = now.astimezone(tz).date()
    for offset in range(-1, SEARCH_DAYS):
        day = today + timedelta(days=offset)
        if day.weekday() not in days or day in away or person.working_hours.is_day_off(day):
            continue
        moved = next_allowed(wall_time(day, at, tz), person, away)
        if moved is None:
            continue
        until = allowed_until(moved, person, within)
        if until > now:
            return Due(program, person.email, day.isoformat(), moved, until)
    return None
