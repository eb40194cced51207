"""Calendar load: events + policy -> per-day and per-week metrics (docs/metrics.md).

Pure: imports only the standard library and :mod:`worker.core.model`; no I/O, no clock, no
configuration dicts (the ``overload:`` section arrives as a typed :class:`Policy`).

How the metrics are computed
----------------------------
Every day is a *local calendar day* in the person's time zone,
``model.local_day_range(day, person.tz)``: 23, 24 or 25 hours on a DST change
(23.5 / 24.5 on Lord Howe), 0 where a zone skipped the day. An event that crosses
midnight is split between the days it touches. All arithmetic is done on absolute
instants (integer microseconds since the epoch), never on wall clocks, so the repeated
hour of a fall-back day counts twice and the skipped hour of a spring-forward day not at
all. (Python compares and subtracts datetimes that share a ``tzinfo`` by wall clock,
ignoring ``fold``; this module never does.) Intervals are half-open; minutes are floats
and are not rounded.

Speed: one pass over the events cuts them into per-day pieces (integer spans), then each
day works on its own few pieces; day boundaries and working hours are read from the
zone's offsets without building aware datetimes. ``bench/analysis.py`` measures it
(docs/benchmarks.md).

Decisions where the definitions of docs/metrics.md are silent (the contract for every caller)
-------------------------------------------------------------------
* **Attendees.** "An attendee other than the person" counts the organizer as an
  attendee too (as iCalendar does; Microsoft Graph lists the organizer apart from
  ``attendees``). Emails are compared after ``strip()`` and ``casefold()``; blank
  ones are ignored.
* **No attendee data** (:func:`meeting_source`). A calendar is ``attendees: absent`` for a
  period when the period has at least one busy event and none of its events (any kind,
  all-day ones included) names an attendee or an organizer, not even the person;
  otherwise ``present`` (a period without busy events has nothing to miscount). With
  ``meetings_from="busy"`` (``meetings: busy`` in the config) every busy event is a
  meeting, attendee data or not.
* **Duplicates.** The same meeting seen twice (same event id, same start and end, e.g.
  on two of the person's calendars) is one meeting: it is not double-booked with itself.
  Unions (busy, meeting, chains, focus) are unaffected by duplicates anyway.
* **Empty or inverted events** (end <= start) cover nothing and are ignored.
* **Working hours** are ``WorkingHours.ranges_on(day, tz)`` clipped to the local day;
  overlapping or touching ranges are merged first (so ``09:00-12:30, 12:30-17:00`` is
  one range and a free stretch across 12:30 is one gap; a real lunch break outside
  working hours splits it). ``working_minutes`` is their total length in real minutes
  (a range across a DST change is 60 minutes shorter or longer).
* **Away.** A day is away when the person's out-of-office events cover it: an all-day
  OOO event covers the dates ``start.date()`` up to, not including, ``end.date()``
  (read on the event's own wall clock, where connectors put all-day events at
  midnight; at least its start date); timed OOO events (their union) cover a day when
  they cover all of its working hours, or, on a day off, the whole local day.
  Cancelled, declined and steadyhand-owned OOO events are ignored. A zero-hour day is
  away only by an all-day OOO event.
* **Away days** keep every metric, ``working_minutes`` included (the hours were
  configured; the person was just not there), but are **never overloaded**:
  ``overloaded`` is false and ``reasons`` is empty.
* **Days off** (no working range, ``working_minutes == 0``): ``meeting_load`` is None,
  so ``meeting_load`` is not raised; ``no_focus`` is not raised (not a working day);
  every meeting minute is after-hours, so ``after_hours``, ``back_to_back`` and
  ``double_booked`` can still be raised.
* **no_focus** follows the definition literally: on any day with working hours,
  ``focus_minutes < min_focus_minutes`` raises it, even when the working hours are
  shorter than ``focus_min`` and focus time is impossible.
* **Chains** are measured on the day's part of the meetings: a chain over midnight is
  two chains, one per day.
* **Zero-hour days** (Pacific/Apia 2011-12-30) yield all-zero metrics, ``meeting_load``
  None, never overloaded.
* **Team spread.** The median is ``statistics.median`` (mean of the two middle values
  for an even count); with no member it is 0. ``max_over_median`` is None when the
  median is 0. ``above_1_5x_median`` lists members strictly above 1.5 x the median,
  sorted; with a median of 0 that is everyone with any meeting minute.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from worker.core.model import (
    Event,
    EventType,
    Person,
    Response,
    Status,
    Transparency,
    WorkingHours,
    wall_time,
)

__all__ = [
    "MEETINGS_FROM",
    "REASONS",
    "DayMetrics",
    "MeetingSource",
    "Policy",
    "TeamSpread",
    "WeekMetrics",
    "analyze_day",
    "analyze_days",
    "away_dates",
    "is_busy",
    "is_meeting",
    "meeting_source",
    "roll_up",
    "team_spread",
]

REASONS = ("meeting_load", "back_to_back", "no_focus", "after_hours", "double_booked")
"""Every overload reason code, in the order a day lists them."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000

MeetingsFrom = Literal["attendees", "busy"]
MEETINGS_FROM: tuple[MeetingsFrom, ...] = ("attendees", "busy")
"""What makes a busy event a meeting: another person on it (default), or being busy."""

_Span = tuple[int, int]  # [start, end) in microseconds since the epoch
_BUSY, _MEETING, _OOO = "busy", "meeting", "ooo"


@dataclass(frozen=True, slots=True)
class Policy:
    """The ``overload:`` section of the YAML, typed (docs/metrics.md, docs/configuration.md)."""

    max_meeting_load: float = 0.6
    max_chain_minutes: float = 180
    back_to_back_gap: timedelta = timedelta(minutes=5)
    focus_min: timedelta = timedelta(minutes=120)
    min_focus_minutes: float = 60
    max_after_hours_minutes: float = 30


@dataclass(frozen=True, slots=True)
class DayMetrics:
    """One person's local day. Field names are the JSON names of docs/metrics.md."""

    date: date
    working_minutes: float
    meeting_minutes: float
    busy_minutes: float
    meeting_load: float | None
    after_hours_meeting_minutes: float
    double_booked_minutes: float
    longest_chain_minutes: float
    focus_minutes: float
    fragmented_minutes: float
    away: bool
    overloaded: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the date as an ISO string, reasons as a list."""
        return {
            "date": self.date.isoformat(),
            "working_minutes": self.working_minutes,
            "meeting_minutes": self.meeting_minutes,
            "busy_minutes": self.busy_minutes,
            "meeting_load": self.meeting_load,
            "after_hours_meeting_minutes": self.after_hours_meeting_minutes,
            "double_booked_minutes": self.double_booked_minutes,
            "longest_chain_minutes": self.longest_chain_minutes,
            "focus_minutes": self.focus_minutes,
            "fragmented_minutes": self.fragmented_minutes,
            "away": self.away,
            "overloaded": self.overloaded,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class WeekMetrics:
    """Sums over a run of days (usually a week) and how many of them were overloaded."""

    meeting_minutes: float
    busy_minutes: float
    after_hours_meeting_minutes: float
    focus_minutes: float
    overloaded_days: int
    days: tuple[DayMetrics, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready sums and ``overloaded_days`` (the days are listed separately)."""
        return {
            "meeting_minutes": self.meeting_minutes,
            "busy_minutes": self.busy_minutes,
            "after_hours_meeting_minutes": self.after_hours_meeting_minutes,
            "focus_minutes": self.focus_minutes,
            "overloaded_days": self.overloaded_days,
        }


@dataclass(frozen=True, slots=True)
class TeamSpread:
    """How unevenly a team's weekly meeting minutes are spread."""

    name: str
    median_meeting_minutes: float
    max_over_median: float | None
    above_1_5x_median: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "median_meeting_minutes": self.median_meeting_minutes,
            "max_over_median": self.max_over_median,
            "above_1_5x_median": list(self.above_1_5x_median),
        }


@dataclass(frozen=True, slots=True)
class MeetingSource:
    """Whether a person's calendar carries attendee data in a period, and what counted as
    a meeting: ``attendees`` is ``present`` or ``absent``, ``meetings_from`` is one of
    :data:`MEETINGS_FROM`. Meetings go uncounted when attendees are absent and meetings
    come from attendees (:attr:`uncounted`)."""

    attendees: Literal["present", "absent"]
    meetings_from: MeetingsFrom

    @property
    def uncounted(self) -> bool:
        return self.attendees == "absent" and self.meetings_from == "attendees"

    def as_dict(self) -> dict[str, object]:
        return {"attendees": self.attendees, "meetings_from": self.meetings_from}


# -- classification -------------------------------------------------------------------


def _norm(email: str) -> str:
    return email.strip().casefold()


def is_busy(event: Event, person: Person) -> bool:
    """A timed, not cancelled, not declined, busy, user-owned default event (docs/metrics.md).

    ``person`` is part of the signature for symmetry with :func:`is_meeting`; the
    event's ``response`` already is the person's own answer.
    """
    del person
    return (
        not event.all_day
        and event.status != Status.CANCELLED
        and event.response != Response.DECLINED
        and event.transparency == Transparency.BUSY
        and event.owned_block_id is None
        and event.event_type == EventType.DEFAULT
    )


def _has_other(event: Event, me: str) -> bool:
    for attendee in event.attendees:
        other = _norm(attendee)
        if other and other != me:
            return True
    other = _norm(event.organizer or "")
    return bool(other) and other != me


def is_meeting(event: Event, person: Person, meetings_from: MeetingsFrom = "attendees") -> bool:
    """A busy event with at least one attendee (organizer included) other than the person;
    with ``meetings_from="busy"``, any busy event."""
    if meetings_from == "busy":
        return is_busy(event, person)
    return is_busy(event, person) and _has_other(event, _norm(person.email))


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


@lru_cache(maxsize=1024)
def _second(at: time) -> time:
    """``at`` with ``fold=1``: the second of two equal wall times."""
    return at.replace(fold=1)


def _wall_us(day: date, at: time, tz: ZoneInfo) -> int:
    """``_us(model.wall_time(day, at, tz))``, without building the instant where it can.

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
            return (naive - first - _NAIVE_EPOCH) // _US
    return _us(wall_time(day, at, tz))


def _all_day_dates(event: Event) -> Iterable[date]:
    first = event.start.date()
    last = event.end.date()
    yield first
    current = first + timedelta(days=1)
    while current < last:
        yield current
        current += timedelta(days=1)


def _meeting_test(me: str) -> Callable[[Event], bool]:
    """``_has_other(event, me)``, remembering each address as written (series repeat them)."""
    seen: dict[str, bool] = {}

    def other(address: str) -> bool:
        found = seen.get(address)
        if found is None:
            norm = _norm(address)
            found = seen[address] = bool(norm) and norm != me
        return found

    def has_other(event: Event) -> bool:
        organizer = event.organizer
        return any(map(other, event.attendees)) or (organizer is not None and other(organizer))

    return has_other


# -- interval arithmetic on sorted spans ------------------------------------------------


def _union(spans: list[_Span], *, presorted: bool = False) -> list[_Span]:
    """Merge overlapping or touching spans; returns them sorted."""
    out: list[_Span] = []
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


def _distinct(pieces: list[tuple[int, int, str]]) -> list[_Span]:
    """The spans of the meeting pieces, sorted, one per event (a duplicate event counts once)."""
    pieces.sort()
    out: list[_Span] = []
    previous = None
    for piece in pieces:
        if piece != previous:
            out.append((piece[0], piece[1]))
            previous = piece
    return out


def _length(spans: Iterable[_Span]) -> int:
    total = 0
    for s, e in spans:  # faster than sum() over the few spans of a day
        total += e - s
    return total


def _overlap(a: list[_Span], b: list[_Span]) -> int:
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


def _gaps(window: _Span, busy: list[_Span]) -> list[int]:
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


def _at_least_two(spans: list[_Span]) -> int:
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


def _longest_chain(meetings: list[_Span], gap: int) -> int:
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


def _covers(cover: list[_Span], need: list[_Span]) -> bool:
    return _overlap(cover, need) == _length(need)


# -- per day ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pieces:
    """Every relevant event cut into per-day pieces (index i is ``days[i]``)."""

    busy: list[list[_Span]]
    meetings: list[list[tuple[int, int, str]]]  # with the event id, to spot duplicates
    ooo: list[list[_Span]]  # timed out-of-office events
    all_day_ooo: set[date]  # the dates all-day out-of-office events cover


def _minutes(us: int) -> float:
    return us / _US_PER_MINUTE


def _working(hours: WorkingHours, day: date, tz: ZoneInfo, bounds: _Span) -> list[_Span]:
    """``hours.ranges_on(day, tz)`` clipped to the day's ``bounds`` and merged."""
    lo, hi = bounds
    spans = []
    for start, end in hours.days.get(day.weekday(), ()):
        s, e = _wall_us(day, start, tz), _wall_us(day, end, tz)
        if e > s:
            s, e = max(s, lo), min(e, hi)
            if e > s:
                spans.append((s, e))
    return _union(spans) if len(spans) > 1 else spans


def _is_away(ooo: list[_Span], working: list[_Span], bounds: _Span, all_day: bool) -> bool:
    if all_day:
        return True
    if not ooo:
        return False
    cover = _union(ooo)
    if working:
        return _covers(cover, working)
    return bounds[1] > bounds[0] and _covers(cover, [bounds])


def _day(
    day: date,
    working: list[_Span],
    busy_pieces: list[_Span],
    meeting_pieces: list[tuple[int, int, str]],
    away: bool,
    policy: Policy,
    chain_gap: int,
    focus_min: int,
) -> DayMetrics:
    busy = _union(busy_pieces) if busy_pieces else []
    if meeting_pieces:
        distinct = _distinct(meeting_pieces)
        meetings = _union(distinct, presorted=True)
        meeting_us = _length(meetings)
        meeting_in_hours = _overlap(meetings, working) if working else 0
        # meetings overlap somewhere exactly when their lengths add up to more than the union
        double_booked = _at_least_two(distinct) if _length(distinct) > meeting_us else 0
        chain = _longest_chain(meetings, chain_gap)
    else:
        meeting_us = meeting_in_hours = double_booked = chain = 0
    working_us = _length(working)
    focus = fragmented = 0
    for window in working:
        for gap in _gaps(window, busy) if busy else (window[1] - window[0],):
            if gap >= focus_min:
                focus += gap
            else:
                fragmented += gap

    load = meeting_in_hours / working_us if working_us else None
    after_hours = _minutes(meeting_us - meeting_in_hours)
    chain_minutes = _minutes(chain)
    focus_minutes = _minutes(focus)
    double_minutes = _minutes(double_booked)
    reasons: list[str] = []
    if not away:
        if load is not None and load > policy.max_meeting_load:
            reasons.append("meeting_load")
        if chain_minutes > policy.max_chain_minutes:
            reasons.append("back_to_back")
        if working_us and focus_minutes < policy.min_focus_minutes:
            reasons.append("no_focus")
        if after_hours > policy.max_after_hours_minutes:
            reasons.append("after_hours")
        if double_booked > 0:
            reasons.append("double_booked")
    return DayMetrics(
        date=day,
        working_minutes=_minutes(working_us),
        meeting_minutes=_minutes(meeting_us),
        busy_minutes=_minutes(_length(busy)),
        meeting_load=load,
        after_hours_meeting_minutes=after_hours,
        double_booked_minutes=double_minutes,
        longest_chain_minutes=chain_minutes,
        focus_minutes=focus_minutes,
        fragmented_minutes=_minutes(fragmented),
        away=away,
        overloaded=bool(reasons),
        reasons=tuple(reasons),
    )


def _us_of(span: timedelta) -> int:
    return span // _US


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _boundaries(days: Sequence[date], tz: ZoneInfo) -> list[int]:
    """Instants where each day starts, then where the last one ends (non-decreasing)."""
    midnight = time(0)
    out: list[int] = []
    for day in (*days, days[-1] + timedelta(days=1)):
        at = _wall_us(day, midnight, tz)
        out.append(max(at, out[-1]) if out else at)
    return out


def _bucket(
    events: Iterable[Event],
    person: Person,
    days: Sequence[date],
    bounds: list[int],
    meetings_from: MeetingsFrom = "attendees",
) -> _Pieces:
    """Split every relevant event into per-day pieces, in one pass over the events.

    This loop sees every event of the period, so it classifies inline: a busy event and
    a meeting as :func:`is_busy` and :func:`is_meeting` say (a test holds them equal);
    an out-of-office event counts unless it is cancelled, declined or steadyhand's.
    Instants become integer microseconds once, here.
    """
    n = len(days)
    pieces = _Pieces([[] for _ in days], [[] for _ in days], [[] for _ in days], set())
    has_other = _meeting_test(_norm(person.email))
    every_busy = meetings_from == "busy"
    wanted = set(days)
    lo, hi = bounds[0], bounds[-1]
    epoch, tick = _EPOCH, _US
    cancelled, declined = Status.CANCELLED, Response.DECLINED
    default, out_of_office, opaque = EventType.DEFAULT, EventType.OUT_OF_OFFICE, Transparency.BUSY
    for event in events:
        if (
            event.status == cancelled
            or event.response == declined
            or event.owned_block_id is not None
        ):
            continue
        kind = event.event_type
        if event.all_day:
            if kind == out_of_office:
                pieces.all_day_ooo.update(d for d in _all_day_dates(event) if d in wanted)
            continue
        meeting_lists: list[list[tuple[int, int, str]]] | None = None
        if kind == default:
            if event.transparency != opaque:
                continue
            span_lists = pieces.busy
            if every_busy or has_other(event):
                meeting_lists = pieces.meetings
        elif kind == out_of_office:
            span_lists = pieces.ooo
        else:
            continue
        s = (event.start - epoch) // tick
        e = (event.end - epoch) // tick
        if e <= s or e <= lo or s >= hi:
            continue
        i = bisect_right(bounds, s) - 1
        if i >= 0 and e <= bounds[i + 1]:  # the common case: inside one day
            span_lists[i].append((s, e))
            if meeting_lists is not None:
                meeting_lists[i].append((s, e, event.id))
            continue
        i = max(i, 0)
        while i < n and bounds[i] < e:
            ps, pe = max(s, bounds[i]), min(e, bounds[i + 1])
            if pe > ps:
                span_lists[i].append((ps, pe))
                if meeting_lists is not None:
                    meeting_lists[i].append((ps, pe, event.id))
            i += 1
    return pieces


# -- public entry points ------------------------------------------------------------------


def away_dates(events: Iterable[Event], person: Person, days: Iterable[date]) -> set[date]:
    """The dates among ``days`` that out-of-office events cover (see the module docs)."""
    wanted = sorted(set(days))
    if not wanted:
        return set()
    out: set[date] = set()
    # contiguous runs keep one boundary list per run
    runs: list[list[date]] = []
    for day in wanted:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    events = list(events)
    tz = person.tz
    for run in runs:
        bounds = _boundaries(run, tz)
        pieces = _bucket(events, person, run, bounds)
        for i, day in enumerate(run):
            span = (bounds[i], bounds[i + 1])
            working = _working(person.working_hours, day, tz, span)
            if _is_away(pieces.ooo[i], working, span, day in pieces.all_day_ooo):
                out.add(day)
    return out


def analyze_days(
    person: Person,
    events: Iterable[Event],
    start: date,
    end: date,
    policy: Policy = Policy(),
    *,
    meetings_from: MeetingsFrom = "attendees",
) -> list[DayMetrics]:
    """Metrics for every local day from ``start`` to ``end`` inclusive.

    One pass over ``events`` splits them into per-day pieces; each day then only
    looks at its own pieces. ``meetings_from="busy"`` counts every busy event as a
    meeting (``meetings: busy``, for calendars without attendee data).
    """
    if end < start:
        return []
    days = _dates(start, end)
    tz = person.tz
    bounds = _boundaries(days, tz)
    pieces = _bucket(events, person, days, bounds, meetings_from)
    hours = person.working_hours
    chain_gap, focus_min = _us_of(policy.back_to_back_gap), _us_of(policy.focus_min)
    out = []
    for i, day in enumerate(days):
        span = (bounds[i], bounds[i + 1])
        working = _working(hours, day, tz, span)
        away = _is_away(pieces.ooo[i], working, span, day in pieces.all_day_ooo)
        busy, meetings = pieces.busy[i], pieces.meetings[i]
        out.append(_day(day, working, busy, meetings, away, policy, chain_gap, focus_min))
    return out


def analyze_day(
    person: Person,
    events: Sequence[Event],
    day: date,
    policy: Policy = Policy(),
) -> DayMetrics:
    """Metrics for one local day of ``person`` (docs/metrics.md)."""
    return analyze_days(person, events, day, day, policy)[0]


def meeting_source(
    events: Iterable[Event],
    person: Person,
    start: date,
    end: date,
    meetings_from: MeetingsFrom = "attendees",
) -> MeetingSource:
    """Whether the events touching local days ``start``..``end`` carry attendee data:
    ``absent`` when at least one of them is a busy event and none names an attendee or
    an organizer (see the module docs)."""
    if end < start:
        return MeetingSource("present", meetings_from)
    bounds = _boundaries([start, end], person.tz)
    lo, hi = bounds[0], bounds[-1]
    any_busy = False
    for event in events:
        s, e = _us(event.start), _us(event.end)
        if event.all_day:
            first = event.start.date()
            inside = first <= end and max(event.end.date(), first + timedelta(days=1)) > start
        else:
            inside = e > lo and s < hi
        if not inside:
            continue
        if any(a.strip() for a in event.attendees) or (event.organizer or "").strip():
            return MeetingSource("present", meetings_from)
        any_busy = any_busy or (e > s and is_busy(event, person))
    return MeetingSource("absent" if any_busy else "present", meetings_from)


def roll_up(days: Sequence[DayMetrics]) -> WeekMetrics:
    """Sum a run of days; ``overloaded_days`` counts the days with a reason."""
    return WeekMetrics(
        meeting_minutes=sum(d.meeting_minutes for d in days),
        busy_minutes=sum(d.busy_minutes for d in days),
        after_hours_meeting_minutes=sum(d.after_hours_meeting_minutes for d in days),
        focus_minutes=sum(d.focus_minutes for d in days),
        overloaded_days=sum(1 for d in days if d.overloaded),
        days=tuple(days),
    )


def team_spread(name: str, weekly_meeting_minutes: Mapping[str, float]) -> TeamSpread:
    """Median weekly meeting minutes, max / median, and who is above 1.5 x the median."""
    values = list(weekly_meeting_minutes.values())
    median = float(statistics.median(values)) if values else 0.0
    ratio = max(values) / median if median else None
    above = tuple(sorted(m for m, v in weekly_meeting_minutes.items() if v > 1.5 * median))
    return TeamSpread(name, median, ratio, above)
