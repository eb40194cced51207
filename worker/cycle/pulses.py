"""The pulse check in the cycle: who is due a pulse now, and its values, from the settings.

:func:`dues` is called from :func:`worker.cycle.decide.scheduled`; what it returns goes
the same decide path as every other program (opt-outs, pauses, ``mail.max_per_day`` and
bundles, once per key ``pulse:EMAIL:2026-W45``). One person's failure is theirs alone.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from worker.config import Settings
from worker.core.errors import Problem, UserError
from worker.core.model import Person
from worker.cycle.runtime import Runtime
from worker.programs import pulse

if TYPE_CHECKING:
    from worker.cycle.decide import Candidate

logger = logging.getLogger(__name__)


def questions(settings: Settings) -> tuple[pulse.Question, ...]:
    """The configured pulse questions (none without ``emails.pulse``)."""
    section = settings.emails.pulse
    if section is None:
        return ()
    return tuple(pulse.Question(q.id, q.text, q.low, q.high) for q in section.questions)


def values(rt: Runtime, person: Person, week: str) -> dict[str, Any]:
    """The pulse's values for ``person`` and ``week``."""
    asked = questions(rt.settings)
    return pulse.context(person, week, asked, rt.settings.privacy.min_team_size)


def dues(
    rt: Runtime, people: dict[str, Person], away: dict[str, set[date]], now: datetime
) -> list[Candidate]:
    """Every recipient's next pulse, due now or later."""
    from worker.cycle.decide import Candidate, _contained  # decide calls this module

    section = rt.settings.emails.pulse
    if section is None:
        return []
    out: list[Candidate] = []

    def one(p: Person) -> list[Candidate]:
        assert section is not None
        due = pulse.due(
            p, section.weekday, section.clock, section.weeks, WITHIN, now, away[p.email]
        )
        if due is None:
            return []
        return [Candidate(due, partial(values, rt, p, due.period))]

    for email in rt.settings.audience(section.to):
        if email in people:
            out += _contained(rt, now, email, pulse.NAME, partial(one, people[email])) or []
    return out


#: How long after its moment a missed pulse may still go (cut at the end of its week).
WITHIN = timedelta(hours=4)


def preview(rt: Runtime, person: Person, day: date) -> dict[str, Any]:
    """The values of the pulse of ``day``'s week (for ``emails preview pulse``)."""
    if rt.settings.emails.pulse is None:
        raise UserError(
            Problem(
                "there is no emails.pulse section in the config",
                "add one with its questions (config/example.yaml shows how)",
            )
        )
    return values(rt, person, pulse.week_of(day))
