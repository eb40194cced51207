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
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

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


def windows(name: str) -> ZoneInfo | None:
    """The zone of a Windows zone id or display name; None when it is neither."""
    found = WINDOWS_TO_OLSON.get(name) or WINDOWS_TO_OLSON.get(_display_name(name) or "")
    return _zoneinfo(found) if found else None


@cache
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


@cache
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
