"""Which events count: busy events, meetings, and whether a calendar carries attendee data.

* **Attendees.** "An attendee other than the person" counts the organizer as an
  attendee too (as iCalendar does; Microsoft Graph lists the organizer apart from
  ``attendees``). Emails are compared after ``strip()`` and ``casefold()``; blank
  ones are ignored.
* **No attendee data** (:func:`meeting_source`). A calendar is ``attendees: absent`` for a
  period when the period has at least one busy event and none of its events (any kind,
  all-day ones included) names an attendee or an organizer, not even the person;
  otherwise ``present`` (a period without busy events has nothing to miscount). With
  ``meetings_from="busy"`` (``meetings: busy`` in the config) every busy event is a
  meeting, attendee data or not.

Pure: imports only the standard library and :mod:`worker.core`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from worker.core.intervals import boundaries, to_us
from worker.core.model import Event, EventType, Person, Response, Status, Transparency

MeetingsFrom = Literal["attendees", "busy"]
MEETINGS_FROM: tuple[MeetingsFrom, ...] = ("attendees", "busy")
"""What makes a busy event a meeting: another person on it (default), or being busy."""


@dataclass(frozen=True, slots=True)
class MeetingSource:
    """Whether a person's calendar carries attendee data in a period, and what counted as
    a meeting: ``attendees`` is ``present`` or ``absent``, ``meetings_from`` is one of
    :data:`MEETINGS_FROM`. Meetings go uncounted when attendees are absent and meetings
    come from attendees (:attr:`uncounted`)."""

    attendees: Literal["present", "absent"]
    meetings_from: MeetingsFrom

    @property
    def uncounted(self) -> bool:
        return self.attendees == "absent" and self.meetings_from == "attendees"

    def as_dict(self) -> dict[str, object]:
        return {"attendees": self.attendees, "meetings_from": self.meetings_from}


def norm_email(email: str) -> str:
    return email.strip().casefold()


def is_busy(event: Event, person: Person) -> bool:
    """A timed, not cancelled, not declined, busy, user-owned default event (docs/metrics.md).

    ``person`` is part of the signature for symmetry with :func:`is_meeting`; the
    event's ``response`` already is the person's own answer.
    """
    del person
    return (
        not event.all_day
        and event.status != Status.CANCELLED
        and event.response != Response.DECLINED
        and event.transparency == Transparency.BUSY
        and event.owned_block_id is None
        and event.event_type == EventType.DEFAULT
    )


def _has_other(event: Event, me: str) -> bool:
    for attendee in event.attendees:
        other = norm_email(attendee)
        if other and other != me:
            return True
    other = norm_email(event.organizer or "")
    return bool(other) and other != me


def is_meeting(event: Event, person: Person, meetings_from: MeetingsFrom = "attendees") -> bool:
    """A busy event with at least one attendee (organizer included) other than the person;
    with ``meetings_from="busy"``, any busy event."""
    if meetings_from == "busy":
        return is_busy(event, person)
    return is_busy(event, person) and _has_other(event, norm_email(person.email))


def all_day_dates(event: Event) -> Iterable[date]:
    first = event.start.date()
    last = event.end.date()
    yield first
    current = first + timedelta(days=1)
    while current < last:
        yield current
        current += timedelta(days=1)


def meeting_test(me: str) -> Callable[[Event], bool]:
    """``_has_other(event, me)``, remembering each address as written (series repeat them)."""
    seen: dict[str, bool] = {}

    def other(address: str) -> bool:
        found = seen.get(address)
        if found is None:
            norm = norm_email(address)
            found = seen[address] = bool(norm) and norm != me
        return found

    def has_other(event: Event) -> bool:
        organizer = event.organizer
        return any(map(other, event.attendees)) or (organizer is not None and other(organizer))

    return has_other


def meeting_source(
    events: Iterable[Event],
    person: Person,
    start: date,
    end: date,
    meetings_from: MeetingsFrom = "attendees",
) -> MeetingSource:
    """Whether the events touching local days ``start``..``end`` carry attendee data:
    ``absent`` when at least one of them is a busy event and none names an attendee or
    an organizer (see the module docs)."""
    if end < start:
        return MeetingSource("present", meetings_from)
    bounds = boundaries([start, end], person.tz)
    lo, hi = bounds[0], bounds[-1]
    any_busy = False
    for event in events:
        s, e = to_us(event.start), to_us(event.end)
        if event.all_day:
            first = event.start.date()
            inside = first <= end and max(event.end.date(), first + timedelta(days=1)) > start
        else:
            inside = e > lo and s < hi
        if not inside:
            continue
        if any(a.strip() for a in event.attendees) or (event.organizer or "").strip():
            return MeetingSource("present", meetings_from)
        any_busy = any_busy or (e > s and is_busy(event, person))
    return MeetingSource("absent" if any_busy else "present", meetings_from)
