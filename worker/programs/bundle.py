"""The bundle: several sends to one recipient in one email, when more than
``mail.max_per_day`` are due on their local day (each part keeps its own program's values).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Final

from worker.core.model import Person
from worker.core.wording import first_name

NAME: Final = "bundle"
PRIORITY: Final = 9
PREVIEW: Final = False


def key(person: Person, day: date) -> str:
    """The bundle's outbox key: one per recipient and local day."""
    return f"{NAME}:{person.email}:{day.isoformat()}"


def context(person: Person, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The bundle's values: ``parts`` are ``{key, program, payload}``, in the order sent."""
    return {"name": person.name, "first_name": first_name(person), "parts": list(parts)}
