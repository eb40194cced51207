"""Calendar load: events + policy -> per-day metrics (docs/metrics.md).

Pure: imports only the standard library and :mod:`worker.core`; no I/O, no clock, no
configuration dicts (the ``overload:`` section arrives as a typed :class:`Policy`).

The parts: :mod:`worker.core.intervals` (interval arithmetic on absolute instants, day
boundaries; how local days and instants are counted), :mod:`worker.core.classify` (which
events are busy, meetings, and whether attendee data is there), this module (the per-day
metrics and away days) and :mod:`worker.core.rollup` (the week roll-up and team spread).
The names callers use (``__all__``) stay importable from here.

Speed: one pass over the events cuts them into per-day pieces (integer spans), then each
day works on its own few pieces; day boundaries and working hours are read from the
zone's offsets without building aware datetimes. ``bench/analysis.py`` measures it
(docs/benchmarks.md).

Decisions where the definitions of docs/metrics.md are silent (the contract for every caller)
-------------------------------------------------------------------
Attendees and missing attendee data: see :mod:`worker.core.classify`; team spread: see
:mod:`worker.core.rollup`.

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
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from worker.core.classify import (
    MEETINGS_FROM,
    MeetingsFrom,
    MeetingSource,
    all_day_dates,
    is_busy,
    is_meeting,
    meeting_source,
    meeting_test,
    norm_email,
)
from worker.core.intervals import (
    EPOCH,
    US,
    Span,
    at_least_two,
    boundaries,
    covers,
    dates,
    distinct_spans,
    gaps,
    length,
    longest_chain,
    minutes,
    overlap,
    union,
    us_of,
    wall_us,
)
from worker.core.intervals import to_us as _us  # noqa: F401 (tests use the old names)
from worker.core.intervals import wall_us as _wall_us  # noqa: F401
from worker.core.model import (
    Event,
    EventType,
    Person,
    Response,
    Status,
    Transparency,
    WorkingHours,
)
from worker.core.rollup import TeamSpread, WeekMetrics, roll_up, team_spread

__all__ = [
    "MEETINGS_FROM",
    "REASONS",
    "DayMetrics",
    "MeetingSource",
    "MeetingsFrom",
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


# -- per day ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pieces:
    """Every relevant event cut into per-day pieces (index i is ``days[i]``)."""

    busy: list[list[Span]]
    meetings: list[list[tuple[int, int, str]]]  # with the event id, to spot duplicates
    ooo: list[list[Span]]  # timed out-of-office events
    all_day_ooo: set[date]  # the dates all-day out-of-office events cover


def _working(hours: WorkingHours, day: date, tz: ZoneInfo, bounds: Span) -> list[Span]:
    """``hours.ranges_on(day, tz)`` clipped to the day's ``bounds`` and merged."""
    lo, hi = bounds
    spans = []
    for start, end in hours.days.get(day.weekday(), ()):
        s, e = wall_us(day, start, tz), wall_us(day, end, tz)
        if e > s:
            s, e = max(s, lo), min(e, hi)
            if e > s:
                spans.append((s, e))
    return union(spans) if len(spans) > 1 else spans


def _is_away(ooo: list[Span], working: list[Span], bounds: Span, all_day: bool) -> bool:
    if all_day:
        return True
    if not ooo:
        return False
    cover = union(ooo)
    if working:
        return covers(cover, working)
    return bounds[1] > bounds[0] and covers(cover, [bounds])


def _day(
    day: date,
    working: list[Span],
    busy_pieces: list[Span],
    meeting_pieces: list[tuple[int, int, str]],
    away: bool,
    policy: Policy,
    chain_gap: int,
    focus_min: int,
) -> DayMetrics:
    busy = union(busy_pieces) if busy_pieces else []
    if meeting_pieces:
        distinct = distinct_spans(meeting_pieces)
        meetings = union(distinct, presorted=True)
        meeting_us = length(meetings)
        meeting_in_hours = overlap(meetings, working) if working else 0
        # meetings overlap somewhere exactly when their lengths add up to more than the union
        double_booked = at_least_two(distinct) if length(distinct) > meeting_us else 0
        chain = longest_chain(meetings, chain_gap)
    else:
        meeting_us = meeting_in_hours = double_booked = chain = 0
    working_us = length(working)
    focus = fragmented = 0
    for window in working:
        for gap in gaps(window, busy) if busy else (window[1] - window[0],):
            if gap >= focus_min:
                focus += gap
            else:
                fragmented += gap

    load = meeting_in_hours / working_us if working_us else None
    after_hours = minutes(meeting_us - meeting_in_hours)
    chain_minutes = minutes(chain)
    focus_minutes = minutes(focus)
    double_minutes = minutes(double_booked)
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
        working_minutes=minutes(working_us),
        meeting_minutes=minutes(meeting_us),
        busy_minutes=minutes(length(busy)),
        meeting_load=load,
        after_hours_meeting_minutes=after_hours,
        double_booked_minutes=double_minutes,
        longest_chain_minutes=chain_minutes,
        focus_minutes=focus_minutes,
        fragmented_minutes=minutes(fragmented),
        away=away,
        overloaded=bool(reasons),
        reasons=tuple(reasons),
    )


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
    has_other = meeting_test(norm_email(person.email))
    every_busy = meetings_from == "busy"
    wanted = set(days)
    lo, hi = bounds[0], bounds[-1]
    epoch, tick = EPOCH, US
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
                pieces.all_day_ooo.update(d for d in all_day_dates(event) if d in wanted)
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
        bounds = boundaries(run, tz)
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
    days = dates(start, end)
    tz = person.tz
    bounds = boundaries(days, tz)
    pieces = _bucket(events, person, days, bounds, meetings_from)
    hours = person.working_hours
    chain_gap, focus_min = us_of(policy.back_to_back_gap), us_of(policy.focus_min)
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
