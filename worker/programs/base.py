"""What every email program is, and the small helpers the programs share.

A program is one module in :mod:`worker.programs` plus its two templates
(``templates/<name>.txt.j2`` and ``.html.j2``), registered in
:data:`worker.programs.PROGRAMS`. The module satisfies :class:`Program`: its name, its
place when sends compete for a recipient's ``mail.max_per_day``, and whether
``emails preview`` renders it. Beside those it has a ``due(...)`` (when it is sent, from
:mod:`worker.core.schedule`) and a ``context(...)`` (the plain template values), each
taking typed values (the person, their day metrics or events, its settings' values,
``now``) that the cycle layer (:mod:`worker.cycle.decide`) fetches from the store and
passes in; nothing here sees the Runtime, a store or a client. Their arguments differ
from program to program (a weekly digest needs a load report, a follow-up the 1:1), so
the protocol holds only what every program has in common.

Pure: no I/O, no clock (every moment arrives as an argument).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Protocol

from worker.core.model import Person
from worker.core.wording import display_name, first_name

#: How long after its moment a scheduled send may still go out.
WINDOW = timedelta(hours=4)
#: Upper bound on suggestions and candidate meetings in one email.
MAX_SUGGESTIONS = 3


class Program(Protocol):
    """An email program module (see the module docs)."""

    @property
    def NAME(self) -> str:
        """The program's name: its key prefix, ``unsubscribe`` name and template stem."""
        ...

    @property
    def PRIORITY(self) -> int:
        """Lower sorts first when sends compete for a recipient's daily quota."""
        ...

    @property
    def PREVIEW(self) -> bool:
        """Whether ``steadyhand emails preview`` renders it."""
        ...


def norm(email: str) -> str:
    return email.strip().casefold()


def who(person: Person) -> dict[str, str]:
    """The values every program gives about its recipient."""
    return {
        "name": display_name(person),
        "first_name": first_name(person),
        "email": person.email,
        "timezone": person.timezone,
    }


def hours(minutes: float) -> float:
    return round(minutes / 60, 1)


def short_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"
