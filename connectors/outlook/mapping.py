"""Graph JSON <-> steadyhand's values: events read, blocks written, mailbox settings.

:func:`event_from_graph` reads one Graph event as an :class:`~worker.core.model.Event`;
:func:`block_json` is the event steadyhand writes for a block, tagged with
:data:`TAG_PROPERTY` (which :func:`tag_of` reads back) and in :data:`CATEGORY`;
:func:`transaction_id` makes a block's create idempotent; :func:`mailbox_settings_from`
reads ``mailboxSettings``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from connectors.outlook.zones import graph_time, iana_zone, iso_z, parse_graph_time
from worker.core.model import (
    UTC,
    WEEKDAYS,
    Block,
    CalendarRef,
    Event,
    EventType,
    Response,
    Status,
    Transparency,
    details_digest,
    wall_time,
)

#: steadyhand's block tag: a string MAPI named property in our own property set.
TAG_PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name steadyhand"
#: Every block is in this category too: it marks events worth a look for the tag.
CATEGORY = "steadyhand"
#: Categories that make a user's event a focus event (Graph has no focus event type).
FOCUS_CATEGORIES = frozenset({"focus time", "focus"})
#: Namespace of the transactionId of a block's create (uuid5 of the block id and slot).
TRANSACTION_NAMESPACE = uuid.UUID("66f5a359-4659-4830-9070-00047ec6ac6e")
_RESPONSES = {
    "organizer": Response.ORGANIZER,
    "accepted": Response.ACCEPTED,
    "tentativelyaccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "notresponded": Response.NEEDS_ACTION,
    "none": Response.NEEDS_ACTION,
}
#: ``responseStatus.response`` values of an invitation not answered yet.
PENDING = frozenset({"none", "notresponded"})


def transaction_id(block: Block, key: str | None = None) -> str:
    """The ``transactionId`` of a block's create, from the write's idempotency ``key``
    (unique per write, the same for its retry: Graph turns a retried create into the
    event it already made, and a later create of the same block in the same slot is a
    new one). Without a key: from the block id and slot."""
    slot = key or f"{block.id}|{iso_z(block.start)}|{iso_z(block.end)}"
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, slot))


#: The body steadyhand writes on a block (``bodyPreview`` reads it back as it is).
BLOCK_BODY = "Booked by steadyhand ({rule}). Move or edit it and it is yours."
_BLOCK_BODY = re.compile(r"Booked by steadyhand \(\w*\)\. Move or edit it and it is yours\.")


def _details(raw: Mapping[str, Any]) -> str | None:
    """``Event.details``: the body (unless it is the text steadyhand wrote) and location."""
    preview = raw.get("bodyPreview")
    body = raw.get("body")
    if preview is None and isinstance(body, Mapping) and body.get("contentType") == "text":
        preview = body.get("content")
    preview = " ".join(str(preview or "").split())
    location = raw.get("location")
    place = location.get("displayName") if isinstance(location, Mapping) else None
    return details_digest(None if _BLOCK_BODY.fullmatch(preview) else preview, place)


def tag_of(raw: Mapping[str, Any]) -> str | None:
    """The block id in our extended property, when ``raw`` was read with it expanded."""
    for prop in raw.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).casefold() == TAG_PROPERTY.casefold() and prop.get("value"):
            return str(prop["value"])
    return None


def categories_of(raw: Mapping[str, Any]) -> set[str]:
    """The event's categories, case-folded."""
    return {str(c).casefold() for c in raw.get("categories") or ()}


def _address(value: Any) -> str | None:
    if isinstance(value, Mapping):
        email = value.get("emailAddress") or {}
        address = email.get("address") if isinstance(email, Mapping) else None
        if address:
            return str(address).strip().lower()
    return None


def event_from_graph(
    raw: Mapping[str, Any], cal: CalendarRef, block_id: str | None = None
) -> Event | None:
    """One Graph event as steadyhand's :class:`Event`; None for a series master (its
    occurrences come on their own) or an event without times."""
    if raw.get("type") == "seriesMaster":
        return None
    start, end = raw.get("start"), raw.get("end")
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        return None
    tz = ZoneInfo(cal.timezone)
    all_day = bool(raw.get("isAllDay"))
    if all_day:  # dates without a zone: midnights in the owner's zone
        first = parse_graph_time(str(start["dateTime"]), UTC).date()
        last = parse_graph_time(str(end["dateTime"]), UTC).date()
        begins, ends = wall_time(first, clock(0), tz), wall_time(last, clock(0), tz)
    else:
        begins = parse_graph_time(str(start["dateTime"]), iana_zone(start.get("timeZone"), tz))
        ends = parse_graph_time(str(end["dateTime"]), iana_zone(end.get("timeZone"), tz))
        begins, ends = begins.astimezone(tz), ends.astimezone(tz)
    show_as = str(raw.get("showAs") or "busy").casefold()
    categories = categories_of(raw)
    if show_as == "oof":
        event_type = EventType.OUT_OF_OFFICE
    elif show_as == "workingelsewhere":
        event_type = EventType.WORKING_LOCATION
    elif categories & FOCUS_CATEGORIES:
        event_type = EventType.FOCUS
    else:
        event_type = EventType.DEFAULT
    transparency = (
        Transparency.FREE if show_as in ("free", "workingelsewhere") else Transparency.BUSY
    )
    if raw.get("isCancelled"):
        status = Status.CANCELLED
    elif show_as == "tentative":
        status = Status.TENTATIVE
    else:
        status = Status.CONFIRMED
    answer = str((raw.get("responseStatus") or {}).get("response") or "").casefold()
    if raw.get("isOrganizer") is True:
        response = Response.ORGANIZER
    else:
        response = _RESPONSES.get(answer, Response.ORGANIZER)
    attendees = tuple(a for a in (_address(x) for x in raw.get("attendees") or ()) if a)
    return Event(
        id=str(raw["id"]),
        calendar_id=cal.location,
        start=begins,
        end=max(begins, ends),
        all_day=all_day,
        status=status,
        response=response,
        transparency=transparency,
        event_type=event_type,
        attendees=attendees,
        organizer=_address(raw.get("organizer")),
        series_id=str(raw["seriesMasterId"]) if raw.get("seriesMasterId") else None,
        etag=str(raw["changeKey"]) if raw.get("changeKey") else None,
        owned_block_id=block_id,
        title=str(raw["subject"]) if raw.get("subject") else None,
        details=_details(raw) if block_id else None,
    )


def block_json(block: Block, categories: Sequence[str] = ()) -> dict[str, Any]:
    """The Graph event for ``block`` (a create's or a move's body), keeping the event's
    other ``categories``."""
    kept = [c for c in categories if str(c).casefold() != CATEGORY]
    return {
        "subject": block.title,
        "start": graph_time(block.start),
        "end": graph_time(block.end),
        "showAs": "free" if block.transparency is Transparency.FREE else "busy",
        "categories": [*kept, CATEGORY],
        "isReminderOn": False,
        "singleValueExtendedProperties": [{"id": TAG_PROPERTY, "value": block.id}],
    }


# -- the person's Outlook settings ------------------------------------------------------
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """What Outlook knows of a person's day (``GET …/mailboxSettings``): the mailbox's time
    zone as an IANA name and its working hours (days ``mon``…``sun``, local times)."""

    timezone: str | None
    working_days: tuple[str, ...]
    working_start: clock | None
    working_end: clock | None


def _clock(value: Any) -> clock | None:
    match = re.match(r"^(\d{2}):(\d{2})(?::(\d{2}))?", str(value or ""))
    if match is None:
        return None
    return clock(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def mailbox_settings_from(body: Mapping[str, Any]) -> MailboxSettings:
    """The answer to ``GET …/mailboxSettings`` as :class:`MailboxSettings`."""
    zone_name = body.get("timeZone")
    timezone = iana_zone(str(zone_name), UTC).key if zone_name else None
    hours = body.get("workingHours") or {}
    days = tuple(
        WEEKDAYS[_DAYS.index(d.casefold())]
        for d in hours.get("daysOfWeek") or ()
        if str(d).casefold() in _DAYS
    )
    return MailboxSettings(
        timezone, days, _clock(hours.get("startTime")), _clock(hours.get("endTime"))
    )
