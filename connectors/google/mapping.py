"""Google's event resources and steadyhand's values, both ways: an event read is an
:class:`~worker.core.model.Event`, a block written is an event body tagged
``extendedProperties.private.steadyhand=<block id>`` under the event id :func:`event_id_for`
derives from the block id. No I/O.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import date, datetime
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from worker.core.model import (
    UTC,
    Block,
    CalendarRef,
    Event,
    EventType,
    Response,
    Status,
    TimeRange,
    Transparency,
    details_digest,
    wall_time,
)

TAG = "steadyhand"
FOCUS_TIME_PROPERTIES = {
    "autoDeclineMode": "declineOnlyNewConflictingInvitations",
    "chatStatus": "doNotDisturb",
}
_EVENT_ID = re.compile(r"[0-9a-v]{5,1024}")
_EVENT_TYPES = {
    "focusTime": EventType.FOCUS,
    "outOfOffice": EventType.OUT_OF_OFFICE,
    "workingLocation": EventType.WORKING_LOCATION,
}
_RESPONSES = {
    "accepted": Response.ACCEPTED,
    "tentative": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "needsAction": Response.NEEDS_ACTION,
}
_STATUSES = {"confirmed": Status.CONFIRMED, "tentative": Status.TENTATIVE}


def event_id_for(block_id: str) -> str:
    """The Google event id of a block: the block id itself when Google accepts it (26
    characters of base32hex, as :func:`worker.core.planning.block_id` makes them), else
    ``sh`` + the base32hex of its UTF-8 (Google takes ``[a-v0-9]{5,1024}``)."""
    if _EVENT_ID.fullmatch(block_id):
        return block_id
    return "sh" + base64.b32hexencode(block_id.encode("utf-8")).decode("ascii").rstrip("=").lower()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Mapping[str, Any], tz: ZoneInfo) -> tuple[datetime, bool]:
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            zone = value.get("timeZone")
            moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else tz)
        return moment, False
    day = date.fromisoformat(str(value["date"]))
    return wall_time(day, clock_time(0), tz), True


def tag_of(item: Mapping[str, Any]) -> str | None:
    private = (item.get("extendedProperties") or {}).get("private") or {}
    value = private.get(TAG)
    return str(value) if value else None


def to_event(item: Mapping[str, Any], cal: CalendarRef, tz: ZoneInfo | None = None) -> Event:
    """A Google event resource as steadyhand's :class:`~worker.core.model.Event`."""
    tz = tz or ZoneInfo(cal.timezone)
    start, all_day = _when(item["start"], tz)
    end, _ = _when(item["end"], tz)
    owner = cal.owner.strip().lower()
    organizer_field = item.get("organizer") or {}
    organizer = str(organizer_field.get("email") or "").lower() or None
    people = [a for a in item.get("attendees") or () if a.get("email") and not a.get("resource")]
    response = Response.ORGANIZER
    if not (organizer_field.get("self") or organizer == owner):
        mine = next((a for a in people if a.get("self") or str(a["email"]).lower() == owner), None)
        if mine is not None:
            response = _RESPONSES.get(str(mine.get("responseStatus")), Response.NEEDS_ACTION)
    status = item.get("status")
    return Event(
        id=str(item["id"]),
        calendar_id=cal.location,
        start=start,
        end=end,
        all_day=all_day,
        status=Status.CANCELLED
        if status == "cancelled"
        else _STATUSES.get(str(status), Status.CONFIRMED),
        response=response,
        transparency=Transparency.FREE
        if item.get("transparency") == "transparent"
        else Transparency.BUSY,
        event_type=_EVENT_TYPES.get(str(item.get("eventType")), EventType.DEFAULT),
        attendees=tuple(str(a["email"]).lower() for a in people),
        organizer=organizer,
        series_id=item.get("recurringEventId"),
        etag=item.get("etag"),
        owned_block_id=tag_of(item),
        title=item.get("summary"),
        details=details_digest(item.get("description"), item.get("location"))
        if tag_of(item)
        else None,
    )


def inside(event: Event, window: TimeRange) -> bool:
    start, end = event.range.start, event.range.end
    if start == end:
        return window.contains(start)
    return start < window.end and window.start < end


def event_body(block: Block, cal: CalendarRef, focus: bool) -> dict[str, Any]:
    """The Google event resource of ``block`` (without its id)."""
    body: dict[str, Any] = {
        "summary": block.title,
        "start": {"dateTime": block.start.isoformat(), "timeZone": cal.timezone},
        "end": {"dateTime": block.end.isoformat(), "timeZone": cal.timezone},
        "transparency": "transparent" if block.transparency is Transparency.FREE else "opaque",
        "extendedProperties": {"private": {TAG: block.id}},
    }
    if focus:
        body["eventType"] = "focusTime"
        body["focusTimeProperties"] = dict(FOCUS_TIME_PROPERTIES)
    return body


def matches(item: Mapping[str, Any], block: Block, cal: CalendarRef) -> bool:
    try:
        event = to_event(item, cal)
    except (KeyError, ValueError, TypeError):
        return False
    return (
        event.start == block.start
        and event.end == block.end
        and event.transparency is block.transparency
        and (event.title or "") == block.title
    )
