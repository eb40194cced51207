"""The values every part of steadyhand speaks in: frozen, typed, time-zone aware.

This module is the bottom of the import graph: it imports nothing of the project, does
no I/O and reads no clock. Connectors build these values; the pure core
(``analysis``, ``planning``, ``schedule``) consumes them.

Glossary
--------
time range
    A half-open interval ``[start, end)`` of aware datetimes.
event
    One occurrence on a calendar (a recurring series arrives expanded, one event per
    instance). ``id`` is unique within its calendar; an instance of a series has
    ``series_id`` set to the series' UID.
working hours
    Per weekday, zero or more local ``(start, end)`` wall-clock ranges. A weekday with
    no range is a day off.
block
    Time steadyhand books on a calendar (coaching, recovery, focus, lunch). An event
    that carries ``owned_block_id`` is steadyhand's; every other event is the user's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware, got naive {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open interval ``[start, end)`` of aware datetimes, held in UTC.

    Python compares and subtracts two datetimes of the *same* zone by their wall clocks,
    which is wrong across a DST change; holding both ends in UTC makes ``duration``,
    ``overlaps`` and ``contains`` exact.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware("start", self.start)
        _require_aware("end", self.end)
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end < self.start:
            raise ValueError(f"range ends before it starts: {self.start} .. {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: TimeRange) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class Status(StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Response(StrEnum):
    """The calendar owner's own answer to the event."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    NEEDS_ACTION = "needs_action"
    ORGANIZER = "organizer"


class Transparency(StrEnum):
    BUSY = "busy"
    FREE = "free"


class EventType(StrEnum):
    DEFAULT = "default"
    FOCUS = "focus"
    OUT_OF_OFFICE = "out_of_office"
    WORKING_LOCATION = "working_location"


@dataclass(frozen=True, slots=True)
class Event:
    """One event occurrence as a connector read it (docs/contract.md)."""

    id: str
    calendar_id: str
    start: datetime
    end: datetime
    all_day: bool = False
    status: Status = Status.CONFIRMED
    response: Response = Response.ORGANIZER
    transparency: Transparency = Transparency.BUSY
    event_type: EventType = EventType.DEFAULT
    attendees: tuple[str, ...] = ()
    organizer: str | None = None
    series_id: str | None = None
    etag: str | None = None
    owned_block_id: str | None = None
    title: str | None = None
    #: A digest of what a user may edit that the fields above do not carry (description,
    #: location); connectors set it for steadyhand's own blocks, None when there is none.
    details: str | None = None

    def __post_init__(self) -> None:
        _require_aware("Event.start", self.start)
        _require_aware("Event.end", self.end)

    @property
    def range(self) -> TimeRange:
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        return TimeRange(start, max(start, end))


def details_digest(*parts: str | None) -> str | None:
    """``Event.details`` of the given texts (description, location, ...): a short digest,
    None when all are empty. Only the digest is kept, never the text."""
    texts = [" ".join((p or "").split()) for p in parts]
    if not any(texts):
        return None
    return hashlib.sha256("\0".join(texts).encode("utf-8", "replace")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Local wall-clock ranges per weekday (0 = Monday). A missing weekday is a day off."""

    days: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, days: Mapping[int, Iterable[tuple[time, time]]]) -> WorkingHours:
        return cls({d: tuple(sorted(r)) for d, r in sorted(days.items()) if tuple(r)})

    def ranges_on(self, day: date, tz: ZoneInfo) -> list[TimeRange]:
        """The working ranges of ``day`` as aware ranges; a DST gap shortens a range."""
        out = []
        for start, end in self.days.get(day.weekday(), ()):
            s = wall_time(day, start, tz)
            e = wall_time(day, end, tz)
            if e > s:
                out.append(TimeRange(s, e))
        return out

    def is_day_off(self, day: date) -> bool:
        return not self.days.get(day.weekday())

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.days.items())))


def wall_time(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant a wall clock in ``tz`` shows ``at`` on ``day``.

    A wall time that does not exist (skipped by a DST change) maps to the instant the
    clocks jumped to; an ambiguous one (repeated) maps to its first occurrence.
    """
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return aware
    # Skipped: the jump lies between reading ``naive`` with the offset after the change
    # (too early) and with the offset before it (too late). Find it to the second.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = aware.astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0).astimezone(tz) if hi.microsecond else hi.astimezone(tz)


def local_day_range(day: date, tz: ZoneInfo) -> TimeRange:
    """Midnight to midnight of ``day`` in ``tz``: 23, 24 or 25 hours (0 for a skipped day)."""
    return TimeRange(wall_time(day, time(0), tz), wall_time(day + timedelta(days=1), time(0), tz))


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str
    timezone: str
    working_hours: WorkingHours

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    leader: str
    members: tuple[str, ...]

    @property
    def everyone(self) -> tuple[str, ...]:
        return (self.leader, *(m for m in self.members if m != self.leader))


@dataclass(frozen=True, slots=True)
class CalendarRef:
    """Which calendar to read: enough for its connector to find it, nothing secret.

    ``key`` is steadyhand's stable name for it (``person:kind:location``); ``timezone``
    is how floating (zone-less) times on it are read: the owner's time zone.
    """

    key: str
    owner: str
    kind: str
    location: str
    timezone: str
    account: str | None = None

    @property
    def shown(self) -> str:
        """``location`` as it may be logged and shown: a feed URL without its secrets."""
        return redact_location(self.location)


#: A path segment that looks like a secret: ``private-…``/``secret-…``/``token-…``
#: (Google's secret address), a long token (base64url, a UUID, hex) or a mixed
#: letters-and-digits run of 16+ (Nextcloud's public links). Names and ``.ics`` files stay.
_SECRET_PREFIX = re.compile(r"(?i)^(?:private|secret|token|key)[-_]")
_SECRET_SEGMENT = re.compile(
    r"(?i)^(?:private|secret|token|key)[-_].+"
    r"|^[A-Za-z0-9_~+=-]{24,}$"
    r"|^[0-9a-fA-F]{16,}$"
    r"|^(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{16,}$"
)
_URL = re.compile(r"(?i)^[a-z][a-z0-9+.-]*://")


def redact_location(location: str) -> str:
    """A file path as it is; a URL without userinfo or fragment, with each query value and
    each path segment that looks like a secret (``private-<hex>``, a long token) replaced
    by ``…``: ``https://calendar.google.com/calendar/ical/a%40b/private-…/basic.ics``."""
    if not _URL.match(location):
        return location
    parts = urlsplit(location)
    if not parts.netloc:  # sqlite:///var/x.db, file:///…: a path, no userinfo to drop
        return location
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: it is shown as no port rather than echoed
        port = None
    if port is not None:
        host = f"{host}:{port}"
    segments = []
    for segment in parts.path.split("/"):
        plain = unquote(segment)
        if _SECRET_SEGMENT.match(plain) or _SECRET_SEGMENT.match(segment):
            prefix = _SECRET_PREFIX.match(plain)
            segments.append(f"{prefix[0]}…" if prefix else "…")
        else:
            segments.append(segment)
    query = "&".join(
        f"{name}=…" if sep else "…"
        for name, sep, _ in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, host, "/".join(segments), query, ""))


@dataclass(frozen=True, slots=True)
class SyncState:
    """What a connector remembers between syncs of one calendar. Opaque to the core.

    ``token``: a provider sync token or delta link; ``etag`` / ``last_modified``: HTTP
    validators; ``fingerprint``: a digest of local files; ``window``: the range the
    events were read for (a new window means a new expansion of recurring series).
    """

    token: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fingerprint: str | None = None
    window: TimeRange | None = None


@dataclass(frozen=True, slots=True)
class ReadNote:
    """Something a sync read around, for the person who reads its report.

    ``text`` is what the sync table and ``doctor`` show (``1 event skipped (ends before
    it starts)``, ``6 events in an unknown zone ('X'): read as Europe/Berlin``);
    ``count`` how many events it concerns and ``events`` the first few of them, each
    named by its file and UID (``cal.ics: UID abc``), for the log and ``doctor``."""

    text: str
    count: int = 0
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    """``full``: ``events`` is the whole calendar for the window (replace what you had).
    Otherwise ``events`` are new or changed and ``removed`` lists deleted event ids.
    ``unchanged``: nothing was read again (a 304 or the same file)."""

    events: tuple[Event, ...]
    removed: tuple[str, ...]
    state: SyncState
    full: bool
    unchanged: bool = False
    #: Why not everything was read (a series cut at ``SyncLimits.max_events``, a time
    #: budget spent); None when the calendar was read whole.
    truncated: str | None = None
    #: What was read around (an unknown zone, a malformed event skipped or repaired).
    notes: tuple[ReadNote, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncLimits:
    """How much work one calendar may cost a sync (docs/limits.md; ``sync:`` in the YAML)."""

    max_events: int = 50_000
    max_bytes: int = 25 * 1024 * 1024
    feed_timeout: float = 60.0  # seconds for a feed's whole download, not per read
    max_redirects: int = 5
    expand_seconds: float = 10.0  # time budget for expanding one calendar's series


class ChangeKind(StrEnum):
    CREATE = "create"
    MOVE = "move"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Block:
    """Time steadyhand wants on a calendar, and why."""

    id: str
    owner: str
    rule: str
    start: datetime
    end: datetime
    title: str
    transparency: Transparency = Transparency.BUSY
    reason: str = ""

    def __post_init__(self) -> None:
        _require_aware("Block.start", self.start)
        _require_aware("Block.end", self.end)


@dataclass(frozen=True, slots=True)
class BlockChange:
    """One write a plan asks for. ``event_id``/``etag`` name the existing event for
    move and delete; they are None for create. ``key`` is the write's idempotency key
    (unique per write, the same for a retry of it): a provider's own token derives from it."""

    kind: ChangeKind
    block: Block
    reason: str
    event_id: str | None = None
    etag: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    change: BlockChange
    event_id: str
    etag: str | None = None
