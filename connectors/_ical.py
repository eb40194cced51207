"""iCalendar text -> :class:`worker.core.model.Event`: parsing, expansion and mapping.

One lenient path for every iCalendar source. :func:`parse` turns bytes into calendars
(several ``VCALENDAR`` blocks per file are fine) and :func:`events_between` expands them
inside a window and maps each occurrence to an :class:`~worker.core.model.Event`. Anything the
user must fix surfaces as one :class:`~connectors.base.CalendarUnreadable` line naming the
file (never quoting it: a file that is not iCalendar may be anything, ``/etc/shadow``);
what can be read around is read around and counted in :class:`Notes`: each malformed
event skipped or repaired by its rule in docs/calendars.md, named (file and UID) at INFO.

Expansion is bounded (:mod:`connectors._bounds`): each series is rewritten before
dateutil walks it, and expanded lazily, series by series (plain events first), within
one :class:`~connectors._bounds.Budget` per calendar of instances and time; a series
that fails to expand is skipped alone.

Time zones: a TZID is resolved by :func:`connectors._zones.find` (IANA name, the file's
own VTIMEZONE, Windows zone id, Windows display name), whatever icalendar made of it;
floating times are read in ``X-WR-TIMEZONE`` when the file names one, else in the
owner's zone (``CalendarRef.timezone``), and so are the times of a TZID nothing knows,
counted as events in an unknown zone.

Event ids: the UID; for an occurrence of a recurring series, ``UID@RECURRENCE-ID`` with
the RECURRENCE-ID in UTC (``uid@20261104T090000Z``), or as ``YYYYMMDD`` for an all-day
series, whose instants depend on the reader's zone.

This module parses, repairs and expands; :mod:`connectors._ical_map` maps one expanded
component to an Event (ids, times, status, response, transparency, type, emails). Its
``prop_text`` and ``TYPE_PROPERTY`` stay importable from here.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from time import time_ns
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from connectors import _zones
from connectors._bounds import Budget, bound_series
from connectors._ical_map import (
    TYPE_PROPERTY,
    Series,
    in_window,
    prop_text,
    recurrence_key,
    this_and_future,
    to_event,
)
from connectors._readaround import (
    NO_START_NEEDED,
    SALVAGED,
    Notes,
    malformed,
    mixed,
    one_line,
    salvage,
)
from worker.core.errors import CalendarUnreadable, Problem
from worker.core.model import UTC, CalendarRef, Event, TimeRange

__all__ = [
    "FIX_FILE",
    "RACY_NS",
    "TYPE_PROPERTY",
    "description",
    "events_between",
    "parse",
    "prop_text",
    "racy",
    "unreadable",
    "zone_of",
]

logger = logging.getLogger(__name__)

FIX_FILE = "export the calendar again or fix the file"
RACY_NS = 2_000_000_000
_TIME_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")
_SINGLE_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")
# Exchange 2003 writes "BYDAY=MO, TU, WE": spaces no RRULE parser accepts.
_RULE_LINE = re.compile(rb"(?im)^(?:RRULE|EXRULE)[;:][^\r\n]*")
# Google writes dates with a UTC suffix ("RDATE:20131210Z"): no such value exists.
_DATES_LINE = re.compile(rb"(?im)^(?:RDATE|EXDATE)[;:][^\r\n]*")
_DATE_WITH_Z = re.compile(rb"(?<![T\d])(\d{8})Z(?=,|$)")
# A parser's message quoting the file ("parts: 'SECRET…': …"): quotes are left out.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def racy(st: os.stat_result) -> bool:
    """Whether a file's size and mtime cannot vouch for its content (git's "racy" case).

    Timestamps tick coarsely (a few ms), so a file rewritten with the same size within
    a tick of being read looks unchanged; within a couple of seconds of its mtime, a
    file is compared by content instead.
    """
    return time_ns() - st.st_mtime_ns < RACY_NS


def unreadable(source: str, what: str, fix: str = FIX_FILE) -> CalendarUnreadable:
    """One line naming the source, what is wrong and how to fix it."""
    return CalendarUnreadable(Problem(one_line(what), fix, file=source))


def zone_of(cal: CalendarRef, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(cal.timezone)
    except Exception:
        raise unreadable(
            source,
            f"unknown time zone {cal.timezone!r} for {cal.owner}",
            "use an IANA name such as Europe/Berlin in steadyhand.yaml",
        ) from None


# -- parsing ---------------------------------------------------------------------------
def parse(
    data: bytes, source: str, fix: str = FIX_FILE, salvage_events: bool = False
) -> list[icalendar.Calendar]:
    """Every VCALENDAR in ``data``; raises :class:`CalendarUnreadable` naming ``source``.

    ``salvage_events`` (to read events, never to write a file back): a file that does
    not parse whole is read component by component (:func:`_readaround.salvage`), what
    does not parse left out and counted when its events are read."""
    if not data.strip():
        raise unreadable(source, "the file is empty, not an iCalendar file", fix)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n")[:7].upper().startswith(b"BEGIN:V"):
        what = "is not an iCalendar file (it does not begin with BEGIN:VCALENDAR)"
        raise unreadable(source, what, fix)  # and nothing of it is quoted: it may be secret
    data = _repair(data)
    try:
        components = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:
        salvaged = salvage(data) if salvage_events else None
        if salvaged is None:
            what = f"not a valid iCalendar file ({_where(exc, data)})"
            raise unreadable(source, what, fix) from None
        components = salvaged
    calendars: list[icalendar.Calendar] = []
    for component in components:
        if component.name == "VCALENDAR":
            calendars.append(component)
        elif component.name == "VEVENT":  # a bare event: read it as a calendar of one
            wrapper = icalendar.Calendar()
            wrapper.add_component(component)
            calendars.append(wrapper)
    if not calendars:
        if b"BEGIN:VCALENDAR" in data.upper():
            what = "the VCALENDAR block is never closed (an END: line is missing)"
        else:
            what = "no BEGIN:VCALENDAR found; this is not an iCalendar file"
        raise unreadable(source, what, fix)
    return calendars


def _repair(data: bytes) -> bytes:
    """Fix producer bugs whose meaning is unambiguous, before parsing."""
    data = _RULE_LINE.sub(lambda m: re.sub(rb",[ \t]+", b",", m.group(0)), data)
    return _DATES_LINE.sub(lambda m: _DATE_WITH_Z.sub(rb"\1", m.group(0)), data)


def _where(exc: Exception, data: bytes) -> str:
    """The parser's complaint, prefixed with the line it is about when that can be found;
    what it quotes of the file is left out."""
    message = str(exc) or type(exc).__name__
    shown = one_line(_QUOTED.sub("…", message), 120)
    quoted = re.search(r"parts: '(.{1,200}?)': ", message)
    if quoted:
        needle = quoted.group(1)[:40]
        text = data.decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            if needle and line.startswith(needle):
                return f"line {number}: not a content line of the form NAME:VALUE"
        return "a line is not of the form NAME:VALUE"
    return shown


# -- expansion -------------------------------------------------------------------------
def events_between(
    calendars: Iterable[icalendar.Calendar],
    cal: CalendarRef,
    window: TimeRange,
    source: str,
    etag: str | None = None,
    budget: Budget | None = None,
    notes: Notes | None = None,
) -> list[Event]:
    """Every occurrence overlapping ``window``, ids unique (a later duplicate wins).

    ``budget`` bounds the work (:mod:`connectors._bounds`; one per calendar, shared by
    its files): what does not fit is left out and ``budget.truncated`` says why.
    ``notes`` (one per calendar, shared by its files) counts what was read around."""
    tz = zone_of(cal, source)
    budget = budget if budget is not None else Budget()
    budget.sources = max(budget.sources - 1, 0)  # this one is being read
    notes = notes if notes is not None else Notes()
    found: dict[str, Event] = {}
    try:
        for calendar in calendars:
            for verb, why, uid in getattr(calendar, SALVAGED, ()):
                (notes.skipped if verb == "skipped" else notes.repaired)(why, source, uid)
            series = _prepare(calendar, tz, notes, source)
            for component in _expand(calendar, window, tz, source, notes, budget):
                try:
                    event = to_event(component, cal, tz, series, etag)
                except Exception as exc:
                    why = f"cannot be read: {_reason(exc)}"
                    notes.skipped(why, source, str(component.get("UID", "?")))
                    continue
                if in_window(event, window):
                    found[event.id] = event
                    _note_event(event, series, notes, source)
    except CalendarUnreadable:
        raise
    except Exception as exc:
        raise unreadable(source, f"cannot read its events ({type(exc).__name__}: {exc})") from None
    return list(found.values())


def _note_event(event: Event, series: Series, notes: Notes, source: str) -> None:
    """Count what this stored event was read around: an unknown zone, a DST gap."""
    uid = event.series_id or event.id
    unknown = series.unknown.get(uid)
    if unknown is not None:
        notes.unknown_zone(unknown[0], unknown[1], source, event.id)
    if event.id in series.gap_repaired:
        notes.repaired("zero length across a DST gap: kept its written length", source, event.id)


def _prepare(calendar: icalendar.Calendar, tz: ZoneInfo, notes: Notes, source: str) -> Series:
    """Repair what is safe to repair in place and leave out malformed events, each by its
    rule (docs/calendars.md); return what identifies series occurrences."""
    read_as = tz.key
    wr = prop_text(calendar, "X-WR-TIMEZONE")
    if wr is not None:  # x_wr_timezone needs a name zoneinfo knows
        del calendar["X-WR-TIMEZONE"]
        named = _zones.find(wr, {})
        if isinstance(named, ZoneInfo):
            calendar["X-WR-TIMEZONE"] = read_as = named.key
        else:
            shown = one_line(wr, 60)
            notes.add(f"unknown X-WR-TIMEZONE {shown!r}: floating times read as {tz.key}")
    zones: dict[str, tzinfo] = {}
    vtimezone: Any
    for vtimezone in calendar.walk("VTIMEZONE"):
        try:
            zones[_zones.norm(str(vtimezone["TZID"]))] = vtimezone.to_tz()
        except Exception:
            continue  # a bad definition: times using it are read as floating
    kept: list[Any] = []
    series = Series()
    component: Any
    for component in calendar.subcomponents:
        if component.name != "VEVENT":
            kept.append(component)
            continue
        uid = component.get("UID")
        if isinstance(uid, list):
            component["UID"] = uid = uid[0]
        if uid is None or not str(uid).strip():
            digest = hashlib.sha256(component.to_ical()).hexdigest()[:20]
            component["UID"] = uid = f"no-uid-{digest}"
        if "DTSTART" not in component:
            unread = any("DTSTART" in str(error) for error in getattr(component, "errors", ()))
            if unread or (prop_text(calendar, "METHOD") or "").upper() not in NO_START_NEEDED:
                why = "its start cannot be read" if unread else "no start time"
                notes.skipped(why, source, str(uid))
            continue
        for name in _SINGLE_PROPERTIES:
            if isinstance(component.get(name), list):  # said twice: the first one counts
                component[name] = component[name][0]
                notes.repaired(f"several {name} lines: the first one used", source, str(uid))
        unknown = None
        for name in _TIME_PROPERTIES:
            if name in component:
                component[name], missing = _zones.resolve(component[name], zones)
                unknown = unknown or missing
        skip = malformed(component, tz)
        if skip is not None:
            notes.skipped(skip, source, str(uid))
            continue
        if mixed(component):
            notes.repaired("a date and a date-time: read by its start", source, str(uid))
        if unknown is not None:
            series.unknown[str(uid)] = (unknown, read_as)
        if any(name in component for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            series.uids.add(str(uid))
        recurrence = component.get("RECURRENCE-ID")
        if this_and_future(recurrence):
            key = (str(uid), recurrence_key(recurrence.dt, tz))
            series.shifts[key] = _shift(component["DTSTART"].dt, recurrence.dt, tz)
        kept.append(component)
    calendar.subcomponents = kept
    return series


def _shift(start: date | datetime, recurrence: date | datetime, tz: ZoneInfo) -> timedelta:
    if not isinstance(start, datetime) and not isinstance(recurrence, datetime):
        return start - recurrence
    return _zones.aware(start, tz).astimezone(UTC) - _zones.aware(recurrence, tz).astimezone(UTC)


def _expand(
    calendar: icalendar.Calendar,
    window: TimeRange,
    tz: ZoneInfo,
    source: str,
    notes: Notes,
    budget: Budget,
) -> Iterator[Any]:
    """Occurrences between the window's ends; floating and all-day times compare in ``tz``.

    Lazily, series by series, within ``budget``: each rule is bounded before dateutil
    walks it, and the expansion stops when the calendar's instances or time run out."""
    start, end = window.start.astimezone(tz), window.end.astimezone(tz)
    try:
        calendar = x_wr_timezone.to_standard(calendar)
        vevents = calendar.walk("VEVENT")
        recurring = {str(c.get("UID")) for c in vevents if "RRULE" in c}
        # places kept before any series: this file's plain events, one per file to come
        reserve = sum(1 for c in vevents if "RRULE" not in c) + budget.sources
        for component in vevents:
            try:
                bound_series(component, window, tz, budget, reserve)
            except Exception:  # unbounded, it must not be expanded
                del component["RRULE"]
                budget.cut("a recurring series that cannot be bounded was skipped")
    except Exception as exc:
        what = f"cannot expand its recurring events ({type(exc).__name__})"
        raise unreadable(source, what) from None
    try:
        query = recurring_ical_events.of(calendar)
    except Exception as strict:
        try:
            query = recurring_ical_events.of(calendar, skip_bad_series=True)
        except Exception as exc:
            what = f"cannot expand its recurring events ({_reason(exc)})"
            raise unreadable(source, what) from None
        notes.skipped(f"cannot be expanded: {_reason(strict)}", source, "?", "series")
    # plain events first: a series cut at the cap must not crowd out the rest of the file
    for series in sorted(query.series, key=lambda found: str(found.uid) in recurring):
        if budget.full() or budget.out_of_time():
            return
        # a series leaves one place for each file still to come
        room = budget.left - (budget.sources if str(series.uid) in recurring else 0)
        try:
            found = list(itertools.islice(series.between(start, end), max(room, 0) + 1))
        except Exception as exc:  # that series only: the rest of the file is read
            notes.skipped(f"cannot be expanded: {_reason(exc)}", source, str(series.uid), "series")
            continue
        if len(found) > room:
            found = found[: max(room, 0)]
            budget.cut(f"more than {budget.limits.max_events} events (sync.max_events)")
        budget.left -= len(found)
        for occurrence in found:
            yield occurrence.as_component(query.keep_recurrence_attributes)


def _reason(exc: BaseException) -> str:
    """An exception as a short reason, without the file content some messages quote."""
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
    return one_line(_QUOTED.sub("…", first), 100) or type(exc).__name__


# -- a description, read on demand -----------------------------------------------------
def description(calendars: Sequence[icalendar.Calendar], event_id: str, tz: ZoneInfo) -> str | None:
    """The DESCRIPTION of the event ``event_id`` (an instance's own override when it has
    one, else its series'); None when there is none. Read on demand, never stored."""
    uid, _, recurrence = event_id.rpartition("@") if "@" in event_id else (event_id, "", "")
    series = None
    for calendar in calendars:
        for component in calendar.walk("VEVENT"):
            found = str(component.get("UID", ""))
            if found == event_id and component.get("RECURRENCE-ID") is None:
                return prop_text(component, "DESCRIPTION")
            if found == uid:
                rid = component.get("RECURRENCE-ID")
                if rid is not None and recurrence_key(rid.dt, tz) == recurrence:
                    return prop_text(component, "DESCRIPTION")
                if rid is None:
                    series = component
    return prop_text(series, "DESCRIPTION") if series is not None else None
