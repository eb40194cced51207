"""A TZID as a zone: IANA name, the file's own VTIMEZONE, Windows id, Windows display name.

:func:`find` tries, in this order (docs/calendars.md):

1. an IANA name (``Europe/Berlin``), also at the end of a libical or Mozilla prefix
   (``/mozilla.org/20070129_1/Europe/Berlin``);
2. the file's own VTIMEZONE of that TZID (``zones``);
3. a Windows zone id (``W. Europe Standard Time``), through CLDR's windowsZones table
   as icalendar ships it;
4. a Windows display name (``(UTC-05:00) Eastern Time (US & Canada)``, also the older
   ``(GMT-05:00) …`` and ``Pacific Time (US & Canada); Tijuana`` forms), through the
   display names in the same CLDR file (:mod:`connectors._windows_names`): the name
   without its offset, or else one of its comma-separated places, when just one
   Windows zone lists it (of those with the same offset, when the TZID gives one).

None when nothing matches: the caller reads the time in the person's zone and says so.
:func:`resolve` gives an icalendar time value the zone its TZID names; :func:`aware` reads
a floating time or a date in a zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from icalendar.prop import vDDDLists, vDDDTypes
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors._windows_names import DISPLAY_NAMES

_OFFSET = re.compile(
    r"^\(\s*(?:UTC|GMT)\s*(?:(?P<sign>[+-])\s*(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?\s*\)\s*(?P<name>.*)$",
    re.IGNORECASE,
)
_PLACES = re.compile(r"\\?[,;]")
_IANA_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


def norm(tzid: str) -> str:
    """A TZID without quotes, stray whitespace or leading and trailing slashes."""
    return " ".join(tzid.replace('"', " ").split()).strip("/")


def find(tzid: str, zones: Mapping[str, tzinfo]) -> tzinfo | None:
    """The zone ``tzid`` names (``zones``: the file's VTIMEZONEs by normalised TZID)."""
    name = norm(tzid)
    return iana(name) or zones.get(name) or windows(name)


def resolve(value: Any, zones: Mapping[str, tzinfo]) -> tuple[Any, str | None]:
    """Times that name a TZID, in the zone it names by the order of :func:`find`
    (whatever icalendar made of it); with the TZID when no zone is found, the times
    left floating, to be read in the calendar's or the person's zone."""
    if isinstance(value, list):
        resolved = [resolve(v, zones) for v in value]
        return [v for v, _ in resolved], next((m for _, m in resolved if m), None)
    tzid = value.params.get("TZID") if hasattr(value, "params") else None
    if not tzid:
        return value, None
    if isinstance(value, vDDDTypes):
        values = [value.dt]
    elif isinstance(value, vDDDLists):
        values = [v.dt for v in value.dts]
    else:
        return value, None
    dts = [d for d in values if isinstance(d, datetime)]
    if len(dts) != len(values) or any(_is_utc(d) for d in dts):
        return value, None  # dates, periods, or a UTC time ("Z" says more than TZID)
    found = find(str(tzid), zones)
    walls = [d.replace(tzinfo=None) for d in dts]
    times = walls if found is None else [w.replace(tzinfo=found) for w in walls]
    resolved_value = vDDDTypes(times[0]) if isinstance(value, vDDDTypes) else vDDDLists(times)
    return resolved_value, (str(tzid) if found is None else None)


def _is_utc(moment: datetime) -> bool:
    return moment.tzinfo is UTC or getattr(moment.tzinfo, "key", None) == "UTC"


def aware(value: date | datetime, tz: ZoneInfo) -> datetime:
    """``value`` as an aware time: a date at its midnight, a floating time in ``tz``. A
    wall time a DST change skips or repeats is read as RFC 5545 says: with the offset
    before the change (02:30 on the spring-forward morning in Berlin is 03:30 CEST),
    the first of two (fold 0)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=tz, fold=0)


def windows(name: str) -> ZoneInfo | None:
    """The zone of a Windows zone id or display name; None when it is neither."""
    found = WINDOWS_TO_OLSON.get(name) or WINDOWS_TO_OLSON.get(_display_name(name) or "")
    return _zoneinfo(found) if found else None


@lru_cache(maxsize=1024)  # TZIDs come from files: bounded
def iana(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` is, or ends with after a vendor prefix; None if none."""
    parts = name.split("/")
    for first in range(len(parts)):  # the whole name first, then shorter tails
        found = _zoneinfo("/".join(parts[first:]))
        if found is not None and (first == 0 or "/" in found.key or found.key == "UTC"):
            return found
    return None


def _zoneinfo(name: str) -> ZoneInfo | None:
    if not _IANA_SHAPE.match(name):
        return None  # never a path or anything zoneinfo would try to open as one
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


@lru_cache(maxsize=1024)
def _display_name(name: str) -> str | None:
    """The Windows id of a display name, as the module docstring says; None if none."""
    offset, text = _split(name)
    if not text:
        return None
    exact = _by_name().get(text, [])
    if len(exact) == 1 or (exact and offset is None):
        return exact[0][1]
    if exact:
        same = [wid for off, wid in exact if off == offset]
        return same[0] if same else exact[0][1]
    candidates: set[tuple[timedelta, str]] = set()
    for place in _places(text):
        candidates.update(_by_place().get(place, ()))
    if offset is not None:
        candidates = {c for c in candidates if c[0] == offset}
    ids = {wid for _, wid in candidates}
    return ids.pop() if len(ids) == 1 else None


def _split(name: str) -> tuple[timedelta | None, str]:
    """``(UTC-05:00) Eastern Time`` -> (-5 h, ``eastern time``); no offset -> None."""
    match = _OFFSET.match(name)
    if match is None:
        return None, _key(name)
    offset = timedelta(0)
    if match["sign"]:
        size = timedelta(hours=int(match["h"]), minutes=int(match["m"] or 0))
        offset = size if match["sign"] == "+" else -size
    return offset, _key(match["name"])


def _key(text: str) -> str:
    """Compared without case, accents, stray spaces or backslash escapes."""
    plain = unicodedata.normalize("NFKD", text.replace("\\", ""))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(_PLACES.sub(", ", plain).casefold().split()).strip(" ,")


def _places(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@cache
def _by_name() -> dict[str, list[tuple[timedelta | None, str]]]:
    table: dict[str, list[tuple[timedelta | None, str]]] = {}
    for display, wid in DISPLAY_NAMES.items():
        offset, text = _split(display)
        table.setdefault(text, []).append((offset, wid))
    return table


@cache
def _by_place() -> dict[str, set[tuple[timedelta, str]]]:
    table: dict[str, set[tuple[timedelta, str]]] = {}
    for display, wid in DISPLAY_NAMES.items():
        offset, text = _split(display)
        for place in _places(text):
            table.setdefault(place, set()).add((offset or timedelta(0), wid))
    return table
