"""Accountability partners: the members of ``emails.partners.team`` in pairs (a trio when
their number is odd), or the ``pairs`` given; weekly at ``at``, each gets "Your partner's
commitments this week" and their own commitments with "done" / "still on it" links.

Who is paired (docs/programs.md): the team's members; its leader is left out (partners
are peers; a leader listed under ``members`` is still left out). Explicit ``pairs`` are
kept as given (only their people who are members); the others are shuffled with a seed
made of the team and the period and paired in order, the last three a trio when odd. The
period is the ISO week (``rotate: weekly``), the month (``monthly``) or none (``never``):
the same period always gives the same groups. A lone member left over by explicit pairs
joins an explicit pair as its third; with no pair to join they have no partner.

A commitment is a check-in priority ticked "commitment" in the last 7 days, shared beyond
"only me" (with the leader or the team), or a 1:1 commitment its owner chose to share
from their follow-up email in the last 7 days. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule, wording
from worker.core.model import Person
from worker.programs.base import WINDOW, short_day, who

NAME: Final = "partners"
PRIORITY: Final = 5
PREVIEW: Final = True
#: How far back a check-in's commitments count for the weekly email.
LOOK_BACK: Final = timedelta(days=7)
#: The start of the period of a 1:1 commitment's status (``1on1:`` + the follow-up's
#: period): it cannot be taken for a check-in day.
ONE_ON_ONE: Final = "1on1:"


def due(
    person: Person, weekday: int, at: time, now: datetime, away: Set[date]
) -> schedule.Due | None:
    """The person's next weekly partners email (``emails.partners.at``)."""
    return schedule.weekly(NAME, person, weekday, at, now, away, WINDOW)


def period_of(rotate: str, day: date) -> str:
    """The rotation period ``day`` falls in: ``2026-W45``, ``2026-11`` or ``""``."""
    if rotate == "weekly":
        return schedule.iso_week(day)
    if rotate == "monthly":
        return f"{day.year}-{day.month:02}"
    return ""


def groups(
    team: str,
    members: Sequence[str],
    period: str,
    pairs: Sequence[Sequence[str]] = (),
) -> list[tuple[str, ...]]:
    """The partner groups of ``members`` for ``period`` (see the module docs): every
    member in exactly one group when there are two or more, groups of two or three."""
    people = sorted({m.lower() for m in members})
    taken: set[str] = set()
    fixed: list[list[str]] = []
    for pair in pairs:
        group = [p.lower() for p in pair if p.lower() in people and p.lower() not in taken]
        if len(group) >= 2:
            fixed.append(group)
            taken.update(group)
    rest = [p for p in people if p not in taken]
    seed = hashlib.sha256(f"{team}\n{period}".encode()).digest()
    random.Random(seed).shuffle(rest)
    made = [rest[i : i + 2] for i in range(0, len(rest) - len(rest) % 2, 2)]
    if len(rest) % 2:
        lone = rest[-1]
        if made:
            made[-1].append(lone)
        else:
            open_pair = next((g for g in fixed if len(g) == 2), None)
            if open_pair is not None:
                open_pair.append(lone)
    return [tuple(g) for g in fixed + made]


def partners_of(email: str, found: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The others in ``email``'s group (empty when they have none)."""
    for group in found:
        if email in group:
            return tuple(p for p in group if p != email)
    return ()


@dataclass(frozen=True, slots=True)
class Commitment:
    """A check-in priority ticked "commitment" (or a shared 1:1 commitment: ``one_on_one``
    is then its follow-up's period): its day, line number, words, status."""

    day: date
    line: int
    text: str
    status: int | None = None  # 1 done, 0 still on it, None not said
    one_on_one: str = ""

    @property
    def period(self) -> str:
        """The period its status is stored under: its check-in day, or ``1on1:`` + the
        follow-up's period."""
        return ONE_ON_ONE + self.one_on_one if self.one_on_one else self.day.isoformat()

    @property
    def id(self) -> str:
        return f"{self.period}:{self.line}"


def _shown(c: Commitment) -> dict[str, Any]:
    return {
        "id": c.id,
        "day": c.day.isoformat(),
        "period": c.period,
        "from_one_on_one": bool(c.one_on_one),
        "line": c.line,
        "text": c.text,
        "day_label": short_day(c.day),
        "status": {1: "done", 0: "still on it"}.get(c.status if c.status is not None else -1, ""),
    }


def context(
    person: Person,
    week: str,
    partners: Sequence[tuple[Person, Sequence[Commitment]]],
    own: Sequence[Commitment],
    celebrate: bool,
) -> dict[str, Any]:
    """The weekly email's values (templates/README.md): each partner's name and shared
    commitments, the recipient's own ones (their links are made at send time)."""
    return {
        **who(person),
        "week": week,
        "partners": [
            {
                "name": wording.display_name(partner),
                "first_name": wording.first_name(partner),
                "commitments": [_shown(c) for c in items],
            }
            for partner, items in partners
        ],
        "own": [_shown(c) for c in own],
        "celebrate": celebrate,
    }
