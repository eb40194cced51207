"""The morning check-in, to a person at the start of their working day: "What are your
priorities today? Anything in your way?", with a link to a short form (priorities, a
concern, a blocker; each optional; who may see it: only me, my leader, my team).

The form's link is made when the email goes out (:func:`worker.mail_links.link_values`); without
a secret key there is none and the email says to ask the admin. The answers are stored
under program ``checkin`` and the check-in day (docs/programs.md). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule, wording
from worker.core.model import Person
from worker.programs.base import who

NAME: Final = "checkin"
PRIORITY: Final = 2
PREVIEW: Final = True

#: Who may see a check-in, as stored under ``share``; absent means ``leader``.
SHARES: Final = ("me", "leader", "team")
DEFAULT_SHARE: Final = "leader"


def due(
    person: Person,
    at: time,
    days: frozenset[int],
    within: timedelta,
    now: datetime,
    away: Set[date],
) -> schedule.Due | None:
    """The person's next check-in (``emails.checkin``: ``at`` on ``days``)."""
    return schedule.daily(NAME, person, at, days, now, away, within)


def context(person: Person, day: date) -> dict[str, Any]:
    """The check-in's values (templates/README.md) for the check-in ``day``."""
    return {**who(person), "day_label": wording.day_label(day), "day": day.isoformat()}


def share_of(value: str | None) -> str:
    """Who may see a check-in, from its stored ``share`` (anything else: the leader)."""
    return value if value in SHARES else DEFAULT_SHARE


def lines(priorities: str | None) -> list[str]:
    """The priorities, one a line, blank lines left out (line numbers count these)."""
    return [line.strip() for line in (priorities or "").splitlines() if line.strip()]


def commitment_numbers(value: str | None, count: int) -> list[int]:
    """The 1-based line numbers of ``value`` ("1,3") between 1 and ``count``, sorted,
    each once; anything that is not such a number is left out."""
    found = set()
    for raw in (value or "").replace(" ", ",").split(","):
        part = raw.strip()
        if part.isdecimal() and len(part) <= 4 and 1 <= int(part) <= count:
            found.add(int(part))
    return sorted(found)
