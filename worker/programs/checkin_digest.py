"""The async stand-up: at ``emails.checkin_digest.at`` (each recipient's local time), to
each member of a team who shared that day's check-in with "my team", the priorities and
blockers their team shared with the team that day, and "Done this week": the partner
commitments marked done since the last digest, by name (an owner who turned that off is
not named, and their commitment is only counted).

Nothing from people who shared nothing or shared only with their leader or themselves.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule, wording
from worker.core.model import Person
from worker.programs.base import who

NAME: Final = "checkin_digest"
PRIORITY: Final = 4
PREVIEW: Final = True


@dataclass(frozen=True, slots=True)
class Shared:
    """One person's check-in as shared with the team."""

    name: str
    priorities: tuple[str, ...]
    blocker: str


@dataclass(frozen=True, slots=True)
class Done:
    """A partner commitment marked done; ``name`` is None when its owner is not named."""

    name: str | None
    text: str


def due(
    person: Person,
    at: time,
    days: frozenset[int],
    within: timedelta,
    now: datetime,
    away: Set[date],
) -> schedule.Due | None:
    """The person's next stand-up digest (sent only if they shared that day)."""
    return schedule.daily(NAME, person, at, days, now, away, within)


def previous(day: date, days: frozenset[int]) -> date:
    """The digest day before ``day`` (of ``days``; a week back when there is none)."""
    for back in range(1, 8):
        earlier = day - timedelta(days=back)
        if earlier.weekday() in days:
            return earlier
    return day - timedelta(days=7)


def context(
    person: Person,
    day: date,
    team: str,
    shared: Sequence[Shared],
    done: Sequence[Done],
) -> dict[str, Any]:
    """The digest's values (templates/README.md)."""
    return {
        **who(person),
        "day_label": wording.day_label(day),
        "team": team,
        "shared": [
            {
                "name": " ".join(s.name.split()),
                "priorities": list(s.priorities),
                "blocker": s.blocker,
            }
            for s in sorted(shared, key=lambda s: s.name.casefold())
        ],
        "done": [
            {"name": " ".join(d.name.split()), "text": d.text} for d in done if d.name is not None
        ],
        "done_unnamed": sum(1 for d in done if d.name is None),
    }
