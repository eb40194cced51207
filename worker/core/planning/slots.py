"""Time as planning sees it: instants as integer microseconds, spans and the timeline of
time already taken, the horizon days with their working hours, a rule's window on a day,
and which events block time or make meeting chains."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from worker.core.analysis import DayMetrics, is_busy
from worker.core.model import (
    Event,
    EventType,
    Person,
    Response,
    Status,
    Transparency,
    local_day_range,
    wall_time,
)
from worker.core.planning.rules import Rule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_NEVER = -(2**62)
_FOREVER = 2**62

_Span = tuple[int, int]  # [start, end) in microseconds since the epoch


def horizon_end(person: Person, now: datetime, horizon: timedelta) -> datetime:
    """The instant the last horizon day ends (local midnight after it): pass it to
    :func:`reconcile` as ``until``."""
    last = (now.astimezone(UTC) + horizon).astimezone(person.tz).date()
    return local_day_range(last, person.tz).end.astimezone(person.tz)


# -- instants and spans -------------------------------------------------------------------


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _TICK


def _at(us: int, tz: tzinfo | None) -> datetime:
    moment = _EPOCH + timedelta(microseconds=us)
    return moment if tz is None else moment.astimezone(tz)


def _union(spans: Iterable[_Span]) -> list[_Span]:
    out: list[_Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _clip(spans: Iterable[_Span], lo: int, hi: int) -> list[_Span]:
    out = []
    for start, end in spans:
        s, e = max(start, lo), min(end, hi)
        if e > s:
            out.append((s, e))
    return out


class _Timeline:
    """Sorted, merged spans that new blocks must not overlap."""

    __slots__ = ("ends", "starts")

    def __init__(self, spans: Iterable[_Span]) -> None:
        merged = _union(spans)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def add(self, s: int, e: int) -> None:
        i = bisect_left(self.ends, s)  # first span ending at or after s (touching merges)
        j = bisect_right(self.starts, e)  # spans starting at or before e
        if i < j:
            s = min(s, self.starts[i])
            e = max(e, self.ends[j - 1])
        self.starts[i:j] = [s]
        self.ends[i:j] = [e]

    def is_free(self, s: int, e: int) -> bool:
        i = bisect_right(self.ends, s)  # first span ending after s
        return i == len(self.starts) or self.starts[i] >= e

    def free(self, a: int, b: int) -> list[_Span]:
        out: list[_Span] = []
        i = bisect_right(self.ends, a)
        cursor = a
        n = len(self.starts)
        while i < n and self.starts[i] < b:
            if self.starts[i] > cursor:
                out.append((cursor, self.starts[i]))
            cursor = max(cursor, self.ends[i])
            i += 1
        if cursor < b:
            out.append((cursor, b))
        return out


# -- days and windows ---------------------------------------------------------------------


@dataclass(slots=True)
class _Day:
    date: date
    bounds: _Span
    working: list[_Span]
    away: bool
    meeting_minutes: float
    overloaded: bool
    reasons: tuple[str, ...]


def _days_of(person: Person, metrics: Sequence[DayMetrics]) -> list[_Day]:
    """Each analysed day with its bounds and its merged working ranges, as spans."""
    tz = person.tz
    out: list[_Day] = []
    for m in metrics:
        bounds_range = local_day_range(m.date, tz)
        bounds = (_us(bounds_range.start), _us(bounds_range.end))
        working = _union(
            _clip(
                ((_us(r.start), _us(r.end)) for r in person.working_hours.ranges_on(m.date, tz)),
                *bounds,
            )
        )
        out.append(
            _Day(m.date, bounds, working, m.away, m.meeting_minutes, m.overloaded, m.reasons)
        )
    return out


@dataclass(slots=True)
class _Windows:
    """Each rule's window on each day, worked out once."""

    tz: ZoneInfo
    found: dict[tuple[Rule, date, bool], list[_Span]] = field(default_factory=dict)

    def window(self, rule: Rule, day: _Day, ignore_away: bool = False) -> list[_Span]:
        """Working hours ∩ the rule's days, window, earliest and latest on ``day``."""
        key = (rule, day.date, ignore_away)
        found = self.found.get(key)
        if found is not None:
            return found
        spans: list[_Span] = []
        if (
            (ignore_away or not day.away)
            and day.working
            and (rule.days is None or day.date.weekday() in rule.days)
        ):
            lo, hi = day.bounds
            if rule.window is not None:
                lo = max(lo, _us(wall_time(day.date, rule.window[0], self.tz)))
                hi = min(hi, _us(wall_time(day.date, rule.window[1], self.tz)))
            if rule.earliest is not None:
                lo = max(lo, _us(wall_time(day.date, rule.earliest, self.tz)))
            if rule.latest is not None:
                hi = min(hi, _us(wall_time(day.date, rule.latest, self.tz)))
            spans = _clip(day.working, lo, hi)
        self.found[key] = spans
        return spans


# -- events -------------------------------------------------------------------------------


def _blocks_time(event: Event, person: Person) -> bool:
    """Busy events, plus timed out-of-office and the user's own busy focus events."""
    return is_busy(event, person) or _blocking(event)


def _blocking(event: Event) -> bool:
    """Whether a user's event keeps blocks out (``is_busy`` plus the extras of the package
    docs, *Blocking events*)."""
    return (
        not event.all_day
        and event.owned_block_id is None
        and event.status != Status.CANCELLED
        and event.response != Response.DECLINED
        and (
            event.event_type == EventType.OUT_OF_OFFICE
            or (
                event.transparency == Transparency.BUSY
                and event.event_type in (EventType.DEFAULT, EventType.FOCUS)
            )
        )
    )


def _event_key(event: Event) -> tuple[int, int, str, str]:
    return (_us(event.start), _us(event.end), event.id, event.calendar_id)


def _span_of(event: Event) -> _Span:
    s, e = _us(event.start), _us(event.end)
    return (s, max(s, e))


def _chains(meetings: list[_Span], day: _Day, gap: int) -> list[_Span]:
    lo, hi = day.bounds
    merged = _union(_clip(meetings, lo, hi))
    out: list[_Span] = []
    for s, e in merged:
        if out and s - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out
