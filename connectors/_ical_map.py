"""One iCalendar component -> one :class:`worker.core.model.Event`.

What an occurrence's id is (:class:`Series`: ``UID@RECURRENCE-ID`` for an occurrence of a
recurring series, moved back by any RANGE=THISANDFUTURE override), its times in UTC (an
all-day event keeps its dates, a DST gap keeps the written length), and the fields that do
not change from one instance to the next: status, the owner's response, transparency, event
type and the attendees' and organizer's emails. Parsing, repair and expansion of series are
:mod:`connectors._ical`'s.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors import _zones
from connectors._readaround import written_length
from connectors.base import BLOCK_PROPERTY
from worker.core.model import (
    UTC,
    CalendarRef,
    Event,
    EventType,
    Response,
    Status,
    TimeRange,
    Transparency,
)

TYPE_PROPERTY = "X-STEADYHAND-TYPE"
_PARTSTAT = {
    "ACCEPTED": Response.ACCEPTED,
    "TENTATIVE": Response.TENTATIVE,
    "DECLINED": Response.DECLINED,
    "DELEGATED": Response.DECLINED,  # handed on to someone else: the owner is not going
    "NEEDS-ACTION": Response.NEEDS_ACTION,
}
_STEADYHAND_TYPES = {
    "focus": EventType.FOCUS,
    "out_of_office": EventType.OUT_OF_OFFICE,
    "working_location": EventType.WORKING_LOCATION,
}
_OOO_CATEGORIES = {"out of office", "ooo"}


class Series:
    """UIDs of recurring series, and how far each RANGE=THISANDFUTURE override moved."""

    def __init__(self) -> None:
        self.uids: set[str] = set()
        self.shifts: dict[tuple[str, str], timedelta] = {}
        # What every instance of one source component shares, read once: the instances
        # are shallow copies, so they share its UID value (kept here, so its id stays).
        self.static: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.unknown: dict[str, tuple[str, str]] = {}  # UID -> (unknown TZID, read as)
        self.gap_repaired: set[str] = set()  # ids of events a DST gap shrank

    def key(self, uid: str, component: Any, raw_start: date | datetime, tz: ZoneInfo) -> str:
        """The RECURRENCE-ID part of an occurrence's id: where it was before any move.

        Occurrences after a RANGE=THISANDFUTURE override all carry its RECURRENCE-ID;
        each one's own is its start minus the override's shift.
        """
        recurrence = component.get("RECURRENCE-ID")
        if recurrence is None:
            return recurrence_key(raw_start, tz)
        own = recurrence_key(recurrence.dt, tz)
        shift = self.shifts.get((uid, own)) if this_and_future(recurrence) else None
        if shift is None:
            return own
        if not isinstance(raw_start, datetime):
            return recurrence_key(raw_start - timedelta(days=shift.days), tz)
        return recurrence_key(_zones.aware(raw_start, tz).astimezone(UTC) - shift, tz)


def this_and_future(recurrence: Any) -> bool:
    params = getattr(recurrence, "params", {})
    return str(params.get("RANGE", "")).upper() == "THISANDFUTURE"


def to_event(
    component: Any, cal: CalendarRef, tz: ZoneInfo, series: Series, etag: str | None
) -> Event:
    uid = str(component["UID"])
    raw_start = component["DTSTART"].dt
    raw_end = component["DTEND"].dt if "DTEND" in component else None
    all_day = not isinstance(raw_start, datetime)
    start = _zones.aware(raw_start, tz)
    if raw_end is None:
        end = _zones.aware(raw_start + timedelta(days=1), tz) if all_day else start
    else:
        end = _zones.aware(raw_end, tz)
    if all_day and end <= start:  # DTEND == DTSTART on an all-day event: one day meant
        end = _zones.aware(raw_start + timedelta(days=1), tz)
    event_id = _event_id(uid, component, raw_start, tz, series)
    if not all_day:  # compared in UTC: Python compares times of one zone by the wall clock
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        length = written_length(raw_start, raw_end) if raw_end is not None else None
        if end <= start and length is not None:  # a DST gap took its length: keep the written one
            end = start + length
            series.gap_repaired.add(event_id)
    end = max(start, end)
    series_id = uid if uid in series.uids else None
    uid_value = component["UID"]
    shared = series.static.get(id(uid_value))
    if shared is None or shared[0] is not uid_value:
        shared = (uid_value, _shared_fields(component, cal))
        series.static[id(uid_value)] = shared
    return Event(
        id=event_id,
        calendar_id=cal.location,
        start=start,
        end=end,
        all_day=all_day,
        series_id=series_id,
        etag=etag,
        **shared[1],
    )


def _event_id(
    uid: str, component: Any, raw_start: date | datetime, tz: ZoneInfo, series: Series
) -> str:
    if uid not in series.uids:
        return uid
    return f"{uid}@{series.key(uid, component, raw_start, tz)}"


def _shared_fields(component: Any, cal: CalendarRef) -> dict[str, Any]:
    """The fields of an event that do not change from one instance to the next."""
    owner = cal.owner.strip().lower()
    organizer = _email(component.get("ORGANIZER"))
    attendees = list(_as_list(component.get("ATTENDEE")))
    block = prop_text(component, BLOCK_PROPERTY)
    return {
        "status": _status(prop_text(component, "STATUS")),
        "response": _response(owner, organizer, attendees),
        "transparency": _transparency(component),
        "event_type": _event_type(component),
        "attendees": tuple(dict.fromkeys(e for e in map(_email, attendees) if e)),
        "organizer": organizer,
        "owned_block_id": block or None,
        "title": prop_text(component, "SUMMARY"),
    }


def in_window(event: Event, window: TimeRange) -> bool:
    if event.start == event.end:  # a moment: inside when the half-open window holds it
        return window.contains(event.start)
    return event.range.overlaps(window)


def recurrence_key(moment: date | datetime, tz: ZoneInfo) -> str:
    if not isinstance(moment, datetime):
        return moment.strftime("%Y%m%d")
    return _zones.aware(moment, tz).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def prop_text(component: Any, name: str) -> str | None:
    values = _as_list(component.get(name))
    if not values:
        return None
    text = str(values[0]).strip()
    return text or None


def _email(address: Any) -> str | None:
    if address is None:
        return None
    value = str(address).strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :].strip()
    elif "@" not in value or ":" in value:
        params = getattr(address, "params", {})
        value = str(params.get("EMAIL", "")).strip()
        value = value[len("mailto:") :] if value.lower().startswith("mailto:") else value
    value = "".join(value.split())  # a line fold inside an address leaves a space behind
    return value.lower() if "@" in value else None


def _status(value: str | None) -> Status:
    value = (value or "").upper()
    if value == "CANCELLED":
        return Status.CANCELLED
    if value == "TENTATIVE":
        return Status.TENTATIVE
    return Status.CONFIRMED


def _response(owner: str, organizer: str | None, attendees: list[Any]) -> Response:
    if organizer == owner:
        return Response.ORGANIZER
    for attendee in attendees:
        if _email(attendee) == owner:
            partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "NEEDS-ACTION"))
            return _PARTSTAT.get(partstat.upper(), Response.NEEDS_ACTION)
    return Response.ORGANIZER


def _transparency(component: Any) -> Transparency:
    transp = (prop_text(component, "TRANSP") or "").upper()
    if not transp:
        transp = "TRANSPARENT" if _cdo_busy(component) == "FREE" else ""
    return Transparency.FREE if transp == "TRANSPARENT" else Transparency.BUSY


def _cdo_busy(component: Any) -> str:
    return (prop_text(component, "X-MICROSOFT-CDO-BUSYSTATUS") or "").upper()


def _event_type(component: Any) -> EventType:
    tagged = (prop_text(component, TYPE_PROPERTY) or "").lower()
    if tagged in _STEADYHAND_TYPES:
        return _STEADYHAND_TYPES[tagged]
    if _cdo_busy(component) == "OOF":
        return EventType.OUT_OF_OFFICE
    categories: set[str] = set()
    for value in _as_list(component.get("CATEGORIES")):
        cats = getattr(value, "cats", None)
        items = cats if cats is not None else str(value).split(",")
        categories.update(str(c).strip().lower() for c in items)
    if categories & _OOO_CATEGORIES:
        return EventType.OUT_OF_OFFICE
    return EventType.DEFAULT
