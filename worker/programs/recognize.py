"""A leader's own note to a member (sent to the member, cc the leader), queued by hand.

Pure: no I/O, no clock (every moment arrives as an argument).
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from worker.core import schedule
from worker.core.model import Person
from worker.core.wording import display_name, first_name
from worker.programs.base import who

NAME: Final = "recognize"
PRIORITY: Final = 0
PREVIEW: Final = False
#: How far ahead a note may wait for the member's working hours.
WAIT = timedelta(days=14)
MAX_NOTE_CHARS = 5000


def context(leader: Person, member: Person, text: str) -> dict[str, Any]:
    """The leader's own note to ``member`` (sent to the member, cc the leader).

    ``text`` keeps its line breaks (``lines``) and its paragraphs (``paragraphs``, each a
    list of lines, split at blank lines); control characters are dropped and it is capped
    at ``MAX_NOTE_CHARS`` characters.
    """
    note = text.replace("\r\n", "\n").replace("\r", "\n")
    note = "".join(c for c in note if c == "\n" or c.isprintable() or c == "\t").strip()
    if len(note) > MAX_NOTE_CHARS:
        note = note[: MAX_NOTE_CHARS - 1].rstrip() + "…"
    lines = [line.rstrip() for line in note.split("\n")]
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return {
        **who(member),
        "leader_name": display_name(leader),
        "leader_first_name": first_name(leader),
        "leader_email": leader.email,
        "text": note,
        "lines": lines,
        "paragraphs": paragraphs,
    }


def due(
    leader: Person, member: Person, text: str, now: datetime, away: Set[date]
) -> schedule.Due | None:
    """The note's send: at once, or when the member's working hours next begin."""
    digest = hashlib.sha256(f"{leader.email}\n{text}".encode()).hexdigest()[:12]
    period = f"{now.astimezone(UTC):%Y%m%d}-{digest}"
    return schedule.once(NAME, member, now, period, away, WAIT)
