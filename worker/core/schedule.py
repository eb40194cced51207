"""Pure: who gets which email when, in the recipient's own local time.

Rules (docs/architecture.md, *When an email goes out*):

* A send happens inside the recipient's working hours, never on a day off or an away
  day. A due time that falls outside is moved to the next allowed instant.
* Each send has an idempotency key ``program:recipient:period``; the period of a daily
  program is the local date it is about (``2026-11-05``).
* A send that was missed (the worker was down) is still made while it is less than
  ``within`` past its allowed time and the recipient is inside working hours; later than
  that it is skipped, so a worker coming back after a weekend does not send a pile of
  stale prompts.
* A daily send about a day may go out on that day or on the recipient's next working
  day (a prompt at 16:30 for someone whose hours end at 16:00 goes the next working
  morning); a send that reaches the outbox's delivery later than that (a row left
  pending while the worker was down) is dropped, not sent: see :func:`too_late`.

No clock is read here: ``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from worker.core.model import UTC, Person, wall_time
from worker.core.wording import day_label

#: How far ahead :func:`next_allowed` looks before deciding there is no allowed time.
SEARCH_DAYS = 21
#: How many days back :func:`daily` looks for a period whose send was moved forward
#: (past a weekend, days off and away days) and is due now.
LOOK_BACK_DAYS = 7


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


def iso_week(day: date) -> str:
    """The ISO week of ``day`` as weekly periods are written: ``2026-W45``."""
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02}"


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
    the local dates the program runs on; the last :data:`LOOK_BACK_DAYS` are considered
    too, so a prompt moved to a later day (``at`` after working hours: Thursday's to
    Monday for someone off on Fridays) is not lost.
    """
    tz = person.tz
    today = now.astimezone(tz).date()
    for offset in range(-LOOK_BACK_DAYS, SEARCH_DAYS):
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


def weekly(
    program: str,
    person: Person,
    weekday: int,
    at: time,
    now: datetime,
    away: Collection[date],
    within: timedelta,
) -> Due | None:
    """The next send of a weekly program (e.g. ``recognition`` on Friday at 10:00).

    The period is the ISO week of the day it is due (``2026-W45``); a due time on a day
    off or an away day moves to the next allowed instant, which may be the next week.
    """
    tz = person.tz
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    for week in range(-1, 4):
        day = monday + timedelta(weeks=week, days=weekday)
        moved = next_allowed(wall_time(day, at, tz), person, away)
        if moved is None:
            continue
        until = allowed_until(moved, person, within)
        if until > now:
            return Due(program, person.email, iso_week(day), moved, until)
    return None


def once(
    program: str,
    person: Person,
    moment: datetime,
    period: str,
    away: Collection[date],
    within: timedelta,
) -> Due | None:
    """A single send at ``moment`` (e.g. a follow-up 30 minutes after a 1:1 ends),
    moved into the recipient's working hours."""
    moved = next_allowed(moment, person, away)
    if moved is None:
        return None
    return Due(program, person.email, period, moved, allowed_until(moved, person, within))


def cap_per_day(
    dues: list[Due], person: Person, already_sent: int, limit: int
) -> tuple[list[Due], list[Due]]:
    """Split one recipient's sends due now into those that go on their own and those
    to bundle into one email, so at most ``limit`` emails reach them that local day.

    ``already_sent`` counts the emails they got earlier that day. With room for ``r``
    more, ``r - 1`` go alone and the rest are bundled into the ``r``-th; with no room
    left, everything waits in one bundle (the caller sends it next working day).
    """
    room = max(0, limit - already_sent)
    if len(dues) <= room:
        return dues, []
    if room == 0:
        return [], dues
    return dues[: room - 1], dues[room - 1 :]


def next_working_day(person: Person, day: date, away: Collection[date] = ()) -> date | None:
    """The first day after ``day`` with working hours on which the person is not away
    (within :data:`SEARCH_DAYS`); None when there is none. A day whose working hours a
    clock change swallowed (Apia skipped 2011-12-30) is not a working day."""
    for offset in range(1, SEARCH_DAYS + 1):
        candidate = day + timedelta(days=offset)
        if candidate not in away and person.working_hours.ranges_on(candidate, person.tz):
            return candidate
    return None


def too_late(about: date, next_working: date, moment: datetime, tz: ZoneInfo) -> str | None:
    """Why a send about the local day ``about`` is too late at ``moment``, or None.

    It may go out on that day or until the end of the recipient's next working day
    ``next_working`` (both in their zone ``tz``): one working day late at most, worded
    as such (``your Wednesday``). Later it would ask about a day long past as if it were
    recent, so it is dropped (and audited) rather than sent.
    """
    sent_on = moment.astimezone(tz).date()
    if sent_on <= next_working:
        return None
    return (
        f"more than one working day late: about {day_label(about)}, it would go out on "
        f"{day_label(sent_on)}, after the next working day ({day_label(next_working)})"
    )
