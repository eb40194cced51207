"""What a sync reads around, by the rules docs/calendars.md writes down, and how it is said.

:class:`Notes` counts, per calendar, every malformed event skipped or repaired, the
events read in the person's zone because their TZID names no zone, and names each
(file and UID) at INFO; its :meth:`Notes.read_notes` become
:attr:`worker.core.model.SyncResult.notes`. :func:`malformed` is the rule that skips an
event; :func:`salvage` reads a file that does not parse whole component by component.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from connectors import _zones
from worker.core.model import ReadNote

logger = logging.getLogger(__name__)

#: iTIP messages whose events may leave DTSTART out (RFC 5546): not events to read.
NO_START_NEEDED = {"REPLY", "CANCEL", "REFRESH", "DECLINECOUNTER"}
#: Where :func:`salvage` leaves what it could not read, on each calendar it returns.
SALVAGED = "_steadyhand_salvaged"
_BEGIN = re.compile(rb"(?i)^BEGIN:([A-Z0-9-]+)\s*$")
_END = re.compile(rb"(?i)^END:([A-Z0-9-]+)\s*$")
_UID = re.compile(rb"(?im)^UID[;:](?:[^:\r\n]*:)?([^\r\n]*)")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def one_line(text: str, limit: int = 160) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    printable = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    flat = " ".join(printable.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _Tally:
    """How many events one note concerns, and the first few of them by name."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []

    def add(self, name: str, message: str, *args: object) -> None:
        """Count the event ``name``; log ``message`` at INFO for the first few, then DEBUG."""
        self.count += 1
        if len(self.names) < Notes.SHOWN:
            self.names.append(name)
        logger.log(logging.INFO if self.count <= Notes.SHOWN else logging.DEBUG, message, *args)


class Notes:
    """What was read around in one calendar (all its files), as the user is told it.

    Each malformed event is counted under the documented rule that skipped or repaired
    it (docs/calendars.md) and named, file and UID, at INFO (the first ten of each note,
    the rest at DEBUG, so a big calendar does not flood the log); :meth:`read_notes` gives
    the counts for :attr:`worker.core.model.SyncResult.notes`, which the sync logs once
    per calendar as a WARNING."""

    SHOWN = 10  # events named per note

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], _Tally] = {}  # ("event skipped", why) -> tally
        self._zones: dict[str, list[str]] = {}  # read as <zone> -> the unknown TZIDs
        self._zone_events: dict[str, _Tally] = {}
        self._other: dict[str, int] = {}

    def skipped(self, why: str, source: str, uid: str, noun: str = "event") -> None:
        tally = self._events.setdefault((f"{noun} skipped", why), _Tally())
        tally.add(f"{source}: {uid}", "%s: %s %s skipped: %s", source, noun, uid, why)

    def repaired(self, why: str, source: str, uid: str) -> None:
        tally = self._events.setdefault(("event repaired", why), _Tally())
        tally.add(f"{source}: {uid}", "%s: event %s repaired: %s", source, uid, why)

    def unknown_zone(self, tzid: str, read_as: str, source: str, uid: str) -> None:
        zones = self._zones.setdefault(read_as, [])
        if tzid not in zones:
            zones.append(tzid)
        tally = self._zone_events.setdefault(read_as, _Tally())
        message = "%s: event %s in an unknown zone %r, read as %s"
        tally.add(f"{source}: {uid}", message, source, uid, tzid, read_as)

    def add(self, text: str) -> None:
        """Something read around that is no one event's (an unknown X-WR-TIMEZONE)."""
        self._other[text] = self._other.get(text, 0) + 1

    def read_notes(self) -> tuple[ReadNote, ...]:
        notes = []
        for read_as, tzids in self._zones.items():
            tally = self._zone_events[read_as]
            shown = ", ".join(repr(one_line(t, 60)) for t in tzids[:3])
            shown += f" and {len(tzids) - 3} more" if len(tzids) > 3 else ""
            text = f"{_events(tally.count)} in an unknown zone ({shown}): read as {read_as}"
            notes.append(ReadNote(text, tally.count, tuple(tally.names)))
        for (verb, why), tally in self._events.items():
            noun, _, done = verb.partition(" ")
            count = _events(tally.count) if noun == "event" else f"{tally.count} {noun}"
            notes.append(ReadNote(f"{count} {done} ({why})", tally.count, tuple(tally.names)))
        notes.extend(ReadNote(t if n == 1 else f"{t} (x{n})") for t, n in self._other.items())
        return tuple(notes)


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def malformed(component: Any, tz: ZoneInfo) -> str | None:
    """Why an event must be skipped (docs/calendars.md), or None to read it."""
    start = value(component, "DTSTART")
    if not isinstance(start, date):
        return "its start cannot be read"
    end: Any = None
    if "DTEND" in component:
        end = value(component, "DTEND")
        if not isinstance(end, date):
            return "its end cannot be read"
    elif "DURATION" in component:
        length = value(component, "DURATION")
        if not isinstance(length, timedelta):
            return "its duration cannot be read"
        end = start + length
    if end is None or isinstance(start, datetime) != isinstance(end, datetime):
        return None  # a moment, or start and end of different kinds: the start decides
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return "ends before it starts" if end < start else None
    if _zones.aware(end, tz).astimezone(UTC) >= _zones.aware(start, tz).astimezone(UTC):
        return None
    if written_length(start, end):
        return None  # a wall-clock interval that a DST gap shrank is repaired when read
    return "ends before it starts"


def value(component: Any, name: str) -> Any:
    """A property's value (``.dt``), or None when it is absent or cannot be read."""
    try:
        return component[name].dt if name in component else None
    except Exception:  # icalendar's BrokenCalendarProperty, a value of another type
        return None


def mixed(component: Any) -> bool:
    """Whether start and end are of different kinds (a date and a date-time)."""
    end = value(component, "DTEND")
    return end is not None and isinstance(end, datetime) != isinstance(
        component["DTSTART"].dt, datetime
    )


def written_length(start: datetime, end: datetime) -> timedelta | None:
    """How long an event is on the wall clock of its one zone; None if it has no one
    zone or no positive length there."""
    if start.tzinfo is not end.tzinfo and start.tzinfo != end.tzinfo:
        return None
    length = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    return length if length > timedelta(0) else None


# -- a file that does not parse whole ----------------------------------------------------
def salvage(data: bytes) -> list[icalendar.Calendar] | None:
    """The calendars of a file that does not parse whole, read component by component.

    A component that does not parse is left out; an event whose alarm does not parse is
    read without its alarms. Each event left out or repaired is listed on its calendar
    under :data:`SALVAGED`, as ``(verb, why, uid)``. None when not even a calendar's
    frame (its own lines, outside its components) parses."""
    calendars: list[icalendar.Calendar] = []
    frame: list[bytes] | None = None
    parts: list[list[bytes]] = []
    part: list[bytes] | None = None
    depth = 0
    for line in data.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n")
        begin, end = _BEGIN.match(bare), _END.match(bare)
        if frame is None:
            if begin and begin[1].upper() == b"VCALENDAR":
                frame, parts, depth = [line], [], 1
        elif part is not None:
            part.append(line)
            depth += 1 if begin else -1 if end else 0
            if depth == 1:
                parts.append(part)
                part = None
        elif begin:
            part, depth = [line], 2
        else:
            frame.append(line)
            if end and end[1].upper() == b"VCALENDAR":
                calendar = _calendar(frame, parts)
                if calendar is None:
                    return None
                calendars.append(calendar)
                frame = None
    return calendars or None


def _calendar(frame: list[bytes], parts: list[list[bytes]]) -> icalendar.Calendar | None:
    try:
        calendar = icalendar.Calendar.from_ical(b"".join(frame))
    except Exception:
        return None
    said: list[tuple[str, str, str]] = []
    for part in parts:
        text = b"".join(part)
        kind = (_BEGIN.match(part[0].rstrip(b"\r\n")) or [b"", b"?"])[1].decode().upper()
        found = _UID.search(text)
        uid = found[1].decode("utf-8", "replace").strip() if found else "?"
        component, error = _component(text)
        if component is None and kind == "VEVENT":
            component, _ = _component(_without_alarms(part))
            if component is not None:
                said.append(("repaired", "an alarm that cannot be read: left out", uid))
        if component is None:
            why = one_line(_QUOTED.sub("…", error), 100)
            if kind == "VEVENT":
                said.append(("skipped", f"cannot be read: {why}", uid))
            else:
                logger.info("left out a %s that cannot be read (%s)", kind, why)
            continue
        calendar.add_component(component)
    setattr(calendar, SALVAGED, said)
    return calendar


def _component(text: bytes) -> tuple[Any, str]:
    try:
        return icalendar.Calendar.from_ical(text), ""
    except Exception as exc:
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        return None, first or type(exc).__name__


def _without_alarms(part: list[bytes]) -> bytes:
    kept, inside = [], 0
    for line in part:
        bare = line.rstrip(b"\r\n").upper()
        if bare == b"BEGIN:VALARM":
            inside += 1
        if not inside:
            kept.append(line)
        if bare == b"END:VALARM" and inside:
            inside -= 1
    return b"".join(kept)
