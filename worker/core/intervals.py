"""Interval arithmetic on absolute instants, and the instants where local days start.

Every day is a *local calendar day* in the person's time zone,
``model.local_day_range(day, person.tz)``: 23, 24 or 25 hours on a DST change
(23.5 / 24.5 on Lord Howe), 0 where a zone skipped the day. An event that crosses
midnight is split between the days it touches. All arithmetic is done on absolute
instants (integer microseconds since the epoch), never on wall clocks, so the repeated
hour of a fall-back day counts twice and the skipped hour of a spring-forward day not at
all. (Python compares and subtracts datetimes that share a ``tzinfo`` by wall clock,
ignoring ``fold``; this module never does.) Intervals are half-open; minutes are floats
and are not rounded.

Pure: imports only the standard library and :mod:`worker.core.model`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from worker.core.model import wall_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
US = timedelta(microseconds=1)
US_PER_MINUTE = 60_000_000

Span = tuple[int, int]  # [start, end) in microseconds since the epoch


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // US


@lru_cache(maxsize=1024)
def _second(at: time) -> time:
    """``at`` with ``fold=1``: the second of two equal wall times."""
    return at.replace(fold=1)


def wall_us(day: date, at: time, tz: ZoneInfo) -> int:
    """``to_us(model.wall_time(day, at, tz))``, without building the instant where it can.

    A wall time that both ``fold`` values read with the same offset exists once; in a
    repeated hour ``fold=0`` (the first occurrence, what ``wall_time`` picks) has the
    larger offset. Only a skipped wall time (``fold=0`` reads the smaller offset, the
    one before the jump) needs ``wall_time``'s search. ``ZoneInfo.utcoffset`` reads a
    naive datetime as a wall time in its zone.
    """
    if at.tzinfo is None and not at.fold:
        naive = datetime.combine(day, at)
        first = tz.utcoffset(naive)
        second = tz.utcoffset(datetime.combine(day, _second(at)))
        if first is not None and second is not None and first >= second:
            return (naive - first - _NAIVE_EPOCH) // US
    return to_us(wall_time(day, at, tz))


def union(spans: list[Span], *, presorted: bool = False) -> list[Span]:
    """Merge overlapping or touching spans; returns them sorted."""
    out: list[Span] = []
    last_end = None
    for s, e in spans if presorted else sorted(spans):
        if last_end is not None and s <= last_end:
            if e > last_end:
                out[-1] = (out[-1][0], e)
                last_end = e
        else:
            out.append((s, e))
            last_end = e
    return out


def distinct_spans(pieces: list[tuple[int, int, str]]) -> list[Span]:
    """The spans of the meeting pieces, sorted, one per event (a duplicate event counts once)."""
    pieces.sort()
    out: list[Span] = []
    previous = None
    for piece in pieces:
        if piece != previous:
            out.append((piece[0], piece[1]))
            previous = piece
    return out


def length(spans: Iterable[Span]) -> int:
    total = 0
    for s, e in spans:  # faster than sum() over the few spans of a day
        total += e - s
    return total


def overlap(a: list[Span], b: list[Span]) -> int:
    """Length of the intersection of two sorted, disjoint span lists."""
    i = j = total = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        s = max(a_start, b_start)
        e = min(a_end, b_end)
        if e > s:
            total += e - s
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return total


def gaps(window: Span, busy: list[Span]) -> list[int]:
    """Lengths of the free stretches of ``window`` not covered by sorted, disjoint ``busy``."""
    start, end = window
    out = []
    cursor = start
    for s, e in busy:
        if e <= cursor:
            continue
        if s >= end:
            break
        if s > cursor:
            out.append(s - cursor)
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        out.append(end - cursor)
    return out


def at_least_two(spans: list[Span]) -> int:
    """Length covered by two or more of ``spans`` (sorted by start) at once."""
    starts = [s for s, _ in spans]
    ends = sorted([e for _, e in spans])
    n = len(starts)
    i = j = depth = total = last = 0
    while j < n:
        if i < n and starts[i] < ends[j]:  # at equal instants ends go first: half-open
            at, step = starts[i], 1
            i += 1
        else:
            at, step = ends[j], -1
            j += 1
        if depth >= 2:
            total += at - last
        depth += step
        last = at
    return total


def longest_chain(meetings: list[Span], gap: int) -> int:
    """Longest run of sorted, disjoint meetings whose neighbours are at most ``gap`` apart."""
    best = 0
    run_start: int | None = None
    run_end = 0
    for s, e in meetings:
        if run_start is None or s - run_end > gap:
            run_start = s
        run_end = e
        best = max(best, run_end - run_start)
    return best


def covers(cover: list[Span], need: list[Span]) -> bool:
    return overlap(cover, need) == length(need)


def minutes(us: int) -> float:
    return us / US_PER_MINUTE


def us_of(span: timedelta) -> int:
    return span // US


def dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def boundaries(days: Sequence[date], tz: ZoneInfo) -> list[int]:
    """Instants where each day starts, then where the last one ends (non-decreasing)."""
    midnight = time(0)
    out: list[int] = []
    for day in (*days, days[-1] + timedelta(days=1)):
        at = wall_us(day, midnight, tz)
        out.append(max(at, out[-1]) if out else at)
    return out
