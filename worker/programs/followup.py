"""The follow-up after a 1:1, to both people: its agenda topic, the commitments read
from the 1:1's description (at send time, never stored), and when it is sent.

Pure: no I/O, no clock (every moment arrives as an argument).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence, Set
from datetime import date, datetime, timedelta
from typing import Any, Final

from worker.core import schedule
from worker.core.model import Event, Person, Response, Status
from worker.core.wording import day_label, display_name, first_name, one_line
from worker.programs.base import WINDOW, norm, who

NAME: Final = "followup"
PRIORITY: Final = 1
PREVIEW: Final = True

AGENDA = ("wins", "challenges", "development")
"""The rotating agenda of a 1:1: the n-th follow-up proposes ``AGENDA[n % 3]``."""

PROMPTS: Mapping[str, tuple[str, ...]] = {
    "wins": (
        "What went well since you last met, and what made it work?",
        "What are you proud of that others may not have seen?",
        "Who helped along the way and deserves a thank-you?",
    ),
    "challenges": (
        "What is getting in the way right now?",
        "Where would help, or fewer interruptions, make the biggest difference?",
        "What would you try differently next time?",
    ),
    "development": (
        "What would you like to get better at in the next three months?",
        "Which piece of work would stretch you in a good way?",
        "What support (time, a mentor, a course) would help?",
    ),
}
"""Two or three questions that open each agenda topic."""

TOPIC_LABELS = {"wins": "Wins", "challenges": "Challenges", "development": "Development"}

#: Upper bounds that keep a context (and so the email) small whatever the input.
MAX_COMMITMENTS = 20
MAX_COMMITMENT_CHARS = 300
#: How long after a 1:1 ended its follow-up may still be decided.
LOOK_BACK = timedelta(days=2)


def agenda_topic(count_before: int) -> str:
    """The agenda topic of the next 1:1 after ``count_before`` earlier follow-ups."""
    return AGENDA[count_before % len(AGENDA)]


_TAG = re.compile(r"<[^>]*>")
_HTML = re.compile(
    r"</?(?:br|p|div|span|li|ul|ol|b|i|u|em|strong|a|font|h[1-6]|html|body|table|tr|td)\b[^>]*>",
    re.IGNORECASE,
)
_BREAK = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|li|h[1-6]|tr)\s*)>", re.IGNORECASE)
_CHECKBOX = "- [ ]"
_MARKER = re.compile(r"(?:TODO\b|Action:)", re.IGNORECASE)


def _plain_lines(description: str) -> list[str]:
    """The description's lines; an HTML description (Google, Graph: it has HTML tags) is
    reduced to text, while ``<the room>`` in a plain one stays as written."""
    text = description.replace("\r\n", "\n").replace("\r", "\n")
    if _HTML.search(text):
        text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
    return [line.replace("\xa0", " ").strip() for line in text.split("\n")]


def commitments(description: str | None) -> list[str]:
    """The lines of a 1:1's description that are commitments, with the marker removed.

    A commitment line starts (after leading spaces) with ``- [ ]``, ``TODO`` or
    ``Action:`` (``TODO`` and ``Action:`` in any case; ``TODO`` as a word, so
    ``Todoist`` is not one); a ``:`` or ``-`` after ``TODO`` goes with the marker. Lines
    left empty are dropped. An HTML description is read as text first. At most
    ``MAX_COMMITMENTS`` lines of at most ``MAX_COMMITMENT_CHARS`` characters each.
    """
    if not description:
        return []
    out: list[str] = []
    for line in _plain_lines(description):
        if line.startswith(_CHECKBOX):
            rest = line[len(_CHECKBOX) :]
        elif match := _MARKER.match(line):
            rest = line[match.end() :].lstrip()
            if match.group(0).upper() == "TODO":
                rest = rest.removeprefix(":").removeprefix("-")
        else:
            continue
        item = one_line(rest)
        if item:
            if len(item) > MAX_COMMITMENT_CHARS:
                item = item[: MAX_COMMITMENT_CHARS - 1].rstrip() + "…"
            out.append(item)
            if len(out) == MAX_COMMITMENTS:
                break
    return out


_ONE_ON_ONE = re.compile(
    r"(?<![\d:])1\s*(?::|-|-?\s*on\s*-?)\s*1(?![\d:])|\bone[\s-]*on[\s-]*one\b",
    re.IGNORECASE,
)


def _looks_like_one_on_one(title: str | None) -> bool:
    return bool(title) and _ONE_ON_ONE.search(title or "") is not None


def is_one_on_one(event: Event, leader: str, member: str, title: str | None = None) -> bool:
    """Whether ``event`` is a 1:1 between ``leader`` and ``member``.

    Exactly two people take part (the attendees and the organizer, emails compared
    case-insensitively, blanks ignored) and they are the leader and the member; the
    event is not cancelled; and it recurs (``series_id`` set) or its title looks like a
    1:1 (``1:1``, ``1-1``, ``1on1``, ``1 on 1``, ``one on one``, any case). ``title``
    is the title read at send time when titles are not stored; it defaults to
    ``event.title``.
    """
    if event.status == Status.CANCELLED:
        return False
    pair = {norm(leader), norm(member)}
    if len(pair) != 2 or "" in pair:
        return False
    people = {norm(a) for a in (*event.attendees, event.organizer or "")} - {""}
    if people != pair:
        return False
    return event.series_id is not None or _looks_like_one_on_one(
        title if title is not None else event.title
    )


def context(
    recipient: Person,
    other: Person,
    leader: Person,
    start: datetime,
    end: datetime,
    commitments: list[str],
    topic: str,
    skipped_twice: bool,
) -> dict[str, Any]:
    """The follow-up after a 1:1 of ``recipient`` and ``other`` (one of them ``leader``).

    ``commitments`` are the lines :func:`commitments` found (an empty list asks both to
    add theirs); ``topic`` is one of :data:`AGENDA` (see :func:`agenda_topic`);
    ``skipped_twice`` is shown to the leader only. Times are in the recipient's zone.
    """
    if topic not in PROMPTS:
        raise ValueError(f"unknown agenda topic {topic!r}: one of {', '.join(AGENDA)}")
    tz = recipient.tz
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    is_leader = norm(recipient.email) == norm(leader.email)
    items = [one_line(c) for c in commitments if one_line(c)][:MAX_COMMITMENTS]
    return {
        **who(recipient),
        "other_name": display_name(other),
        "other_first_name": first_name(other),
        "is_leader": is_leader,
        "day_label": day_label(local_start.date()),
        "start_time": f"{local_start:%H:%M}",
        "end_time": f"{local_end:%H:%M}",
        "meeting_label": f"{day_label(local_start.date())}, {local_start:%H:%M}–{local_end:%H:%M}",
        "commitments": items,
        "topic": topic,
        "topic_label": TOPIC_LABELS[topic],
        "prompts": list(PROMPTS[topic]),
        "skipped_twice": bool(skipped_twice) and is_leader,
    }


def period(event: Event) -> str:
    """The 1:1's part of a follow-up's key."""
    return re.sub(r"[^A-Za-z0-9@._-]", "_", event.id)[:120]


def due(recipient: Person, event: Event, delay: timedelta, away: Set[date]) -> schedule.Due | None:
    """``recipient``'s follow-up, ``delay`` after the 1:1 ``event`` ended."""
    return schedule.once(NAME, recipient, event.end + delay, period(event), away, WINDOW)


def _held(event: Event) -> bool:
    return event.status is not Status.CANCELLED and event.response is not Response.DECLINED


def ended(
    events: Sequence[Event], leader: Person, member: Person, now: datetime, delay: timedelta
) -> list[tuple[Event, int, bool]]:
    """The 1:1s of ``leader`` and ``member`` among ``events`` whose follow-up is due around
    ``now`` (held, ended ``delay`` ago, within :data:`LOOK_BACK`), each with how many
    1:1s were held before it and whether the two before it were both skipped."""
    ones = sorted(
        (ev for ev in events if is_one_on_one(ev, leader.email, member.email, ev.title)),
        key=lambda ev: ev.start,
    )
    out = []
    for i, ev in enumerate(ones):
        if not _held(ev) or ev.end + delay > now or ev.end < now - LOOK_BACK:
            continue
        before = ones[:i]
        skipped = len(before) >= 2 and not any(_held(o) for o in before[-2:])
        out.append((ev, sum(1 for o in before if _held(o)), skipped))
    return out


def values(
    recipient: Person,
    other: Person,
    leader: Person,
    event: Event,
    held: int,
    skipped: bool,
    share: bool = False,
) -> dict[str, Any]:
    """The follow-up's values as decided: the commitments are read from the 1:1's
    description when it is sent (``_describe`` says where), never stored. ``share``: the
    email offers to share them with the recipient's accountability partner (``emails.
    partners`` is set and the recipient is one of its paired members)."""
    decided = context(
        recipient, other, leader, event.start, event.end, [], agenda_topic(held), skipped
    )
    return {
        **decided,
        "share": share,
        "_describe": {"owner": leader.email, "event_id": event.id},
    }
