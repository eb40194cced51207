"""The leader's blockers email: the blockers their team shared with them in the
morning's check-ins (shared with "my leader" or "my team"), bundled, the same day.

The rule (docs/programs.md): one email a leader's local day at most, decided at the first
tick at or after the check-in time plus one hour (``emails.checkin.at`` + 1 h) in the
leader's zone, inside their working hours that day (moved to the start of their next
working range when that moment falls outside one; no email that day when none is left).
It lists every blocker shared with them up to that moment (name, blocker, concern). A
blocker saved after that moment goes into the next working day's email, marked with its
day when it is of an earlier day: each email lists the blockers saved after the previous
email's moment and up to its own, so none is listed twice (unless changed again). No
blockers, no email. A worker that was down still decides it up to ``emails.checkin.within``
after its moment, with the same blockers. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule, wording
from worker.core.model import Person, wall_time
from worker.programs.base import who

NAME: Final = "checkin_blockers"
PRIORITY: Final = 1
PREVIEW: Final = True
#: How long after the check-in the leader's email is decided.
AFTER: Final = timedelta(hours=1)
#: How many earlier days a late blocker is carried over from.
CARRY_DAYS: Final = 7


@dataclass(frozen=True, slots=True)
class Blocker:
    """One person's blocker of one check-in day, as the leader's email shows it."""

    name: str
    day: date
    blocker: str
    concern: str


def moment(leader: Person, checkin_at: time, day: date) -> datetime:
    """The wall moment of ``day``'s email, before it is moved into working hours."""
    later = (datetime.combine(day, checkin_at) + AFTER).time()
    return wall_time(day, later, leader.tz)


def due(
    leader: Person,
    checkin_at: time,
    day: date,
    away: Set[date],
    within: timedelta = timedelta(hours=4),
) -> schedule.Due | None:
    """``day``'s email to ``leader`` (the leader's local day): inside their working hours
    that day, or None when no working time is left that day after the moment. It may
    still be decided ``within`` after it (a worker that was down), never after the end
    of that working range."""
    moved = schedule.next_allowed(moment(leader, checkin_at, day), leader, away)
    if moved is None or moved.astimezone(leader.tz).date() != day:
        return None
    until = schedule.allowed_until(moved, leader, within)
    return schedule.Due(NAME, leader.email, day.isoformat(), moved, until)


def context(leader: Person, day: date, blockers: Sequence[Blocker]) -> dict[str, Any]:
    """The email's values (templates/README.md): ``blockers`` of ``day`` and, marked with
    their day, those carried over from earlier days."""
    ordered = sorted(blockers, key=lambda b: (b.day, b.name.casefold()))
    return {
        **who(leader),
        "day_label": wording.day_label(day),
        "count": len(ordered),
        "blockers": [
            {
                "name": " ".join(b.name.split()),
                "blocker": b.blocker,
                "concern": b.concern,
                "earlier": b.day != day,
                "day_label": wording.day_label(b.day),
            }
            for b in ordered
        ],
    }
