"""Protected blocks: events + rules -> desired blocks; reconcile -> block changes
(docs/architecture.md, *Protected blocks*).

Pure: imports only the standard library, :mod:`worker.core.model` and :mod:`worker.core.analysis`;
no I/O, no clock (``now`` is a parameter), no configuration dicts (``protect:`` rules
arrive as typed :class:`Rule` values).

How a plan is made
------------------
1. **Days.** The horizon is every local day (in the person's zone) from the date of
   ``now`` through the date of ``now + horizon`` (added in UTC), both included.
   :func:`horizon_end` is the instant that last day ends. All arithmetic is done on
   absolute instants (integer microseconds since the epoch), never on wall clocks.
2. **Periods.** Each rule asks for blocks per *period*: an ISO week ``2026-W45``
   (coaching ``per_week``, focus ``goal_per_week``), a date ``2026-11-03`` (lunch,
   focus ``goal_per_day``, coaching ``per_day`` alone), ``2026-11-03 12:15`` (recovery
   after a meeting chain that ends then) or ``after-2026-11-02`` (recovery after an
   overloaded day). The n-th block of a period has the id
   ``block_id(owner, rule, period, n)``.
3. **Keep** (no churn). In priority order, every existing owned block whose id a
   period asks for keeps its exact slot when that slot is still valid. Blocks that
   already started, and ids in ``taken_over``, count as fulfilled and are left alone.
4. **Place.** In the same order, what is still missing is placed in the free time that
   remains. An existing block whose slot is no longer valid keeps its id, so it is
   *moved*, not deleted and re-created. What cannot be placed is reported as an
   :class:`Unprotectable` with the reason.

A slot is valid when it starts at or after ``now``; lies inside one merged working
range of one horizon day (``WorkingHours.ranges_on``, touching ranges merged), on a
day that is not away (``DayMetrics.away``, the same rule as ``analysis.away_dates``);
lies inside the rule's ``days``/``window``/``earliest``/``latest``; overlaps no
blocking event; overlaps no other desired block, no owned block that already started
and no taken-over block of the same person.

Callers
-------
* Pass ``plan`` the events from 14 days before today (at least from the start of the
  current ISO week) through :func:`horizon_end`: blocks of this week that already
  started count only when they are seen, and an overloaded Friday asks for Monday.
* Call ``reconcile(plan.desired, events, taken_over, now=now, until=horizon_end(...))``.
  Without ``now`` a block that already started, and so is not desired, is deleted;
  without ``until`` owned blocks past the horizon are. Passing *all* events (not only
  the owned ones) lets a move name the meeting that took the slot.

Decisions the definitions leave open
-----------------------------------------------
* **Blocking events** are ``analysis.is_busy`` events *plus* timed out-of-office
  events and the user's own busy focus-time events (not cancelled, not declined, not
  steadyhand's): nobody expects coaching booked into a doctor's appointment marked
  out of office, or over focus time they set themselves. Steadyhand's own blocks never
  block each other except through the no-overlap rule above.
* **Priority** between rules: recovery, then lunch, then coaching, then focus (the most
  time-bound first); within a kind, the order of ``protect:`` (``Rule.index``).
  A block kept in step 3 is never displaced by a new one in step 4.
* **Weekly periods** are planned only once the horizon reaches the last day of the week
  the rule could use (e.g. Thursday for tue–thu); until then only their existing
  blocks are kept (nothing new, nothing reported). Planning a week from a fragment
  would crowd its blocks onto the first visible days and, with no churn, keep them
  there. The week of ``now`` uses its remaining days; blocks of it that already
  started count (pass events from the start of the ISO week, so they are seen).
* **Defaults:** ``title`` "" and ``duration`` 0 mean the kind's default
  (:data:`DEFAULT_TITLES`, :data:`DEFAULT_DURATIONS`: coaching 45 min, recovery
  15 min, focus 2 h, lunch 1 h). Coaching with neither ``per_week`` nor ``per_day``
  books one a week; with both, ``per_week`` a week and at most ``per_day`` on any day.
  Focus without a goal uses ``per_day``/``per_week`` × ``duration`` as the goal, else
  one ``duration`` a working day. A recovery rule with neither ``after_chain`` nor
  ``after_overloaded_day`` acts after chains longer than 2 h (docs/architecture.md).
  ``window`` None means working hours; ``earliest`` bounds a block's start, ``latest``
  its end.
* **Placement:** new blocks start on a 5-minute grid after ``now`` (``now`` rounded
  up), or where a meeting or window ends. Coaching: the day with the fewest of the
  rule's blocks, then the fewest meeting minutes (``analysis``), then the earliest
  date; the earliest slot on it. Focus: the longest free gap (a weekly goal first
  spreads over the days with the least focus booked), at its start; a block is
  ``min(gap, duration, max(missing, min_block))`` long, so the last block can
  overshoot the goal by less than ``min_block``. Lunch: the slot whose middle is
  closest to the middle of the allowed window. Recovery: right after the chain, else
  the earliest slot *starting* within 2 h after it; after an overloaded day, the
  earliest slot on the next day the rule can use (working, not away). A block whose
  slot broke only because its length changed keeps its start when it can.
* **Chains** are ``analysis.is_meeting`` events of one local day (with ``meetings_from``:
  ``busy`` makes every busy event a meeting, as in the analysis), merged, joined when
  the gap is at most ``policy.back_to_back_gap``; "longer than" is strict. Chains on
  horizon days and yesterday count (a late chain's 2 h can reach into today).
  An overloaded day asks for its quiet block on the next day the rule can use; that
  day must lie in the horizon, so the overloaded day itself is in the horizon, is
  yesterday, or lies before a weekend, holidays or away days that end today (up to
  14 days back).
* **Unprotectable** is reported for every period that cannot get all it asks for,
  with the count (``1 of 2 booked``) or the focus minutes missing, and why: no free
  time, away, no working hours in the window, or a window shorter than the block.
  Not reported: a period whose room lies entirely before ``now`` (nothing could be
  booked from ``now`` even on an empty calendar: that is history, not a plan, e.g.
  today's lunch at 15:00 or this week's tue–thu coaching on Friday) and a tail week
  not planned yet. Sorted by ``Rule.index``, then time.
* **Blocks** carry their times in the person's zone (``astimezone``; compare them as
  instants). ``Block.rule`` is the rule's kind. ``plan`` raises ``ValueError`` for a
  naive ``now`` and for two rules of one kind sharing an ``index`` (their ids would
  collide).
* **Taken over** ids produce no block and count as fulfilled; a taken-over focus block
  counts its event's length (the rule's ``duration`` when the event is not in
  ``events``). Its event still occupies its time.
* **Cancelled** owned events are ignored (as if absent), in :func:`plan` and
  :func:`reconcile`.
* **reconcile** compares instants (UTC), ``transparency``, and the title only when the
  existing event's title is known (titles may not be stored). With ``now``, an existing
  block that started before ``now`` is never moved or deleted, and no block is
  created that would start before ``now``. With ``until`` (pass :func:`horizon_end`),
  existing blocks starting at or after it lie outside the plan and are left alone.
  Two existing events with the same block id (a user's copy of a block): none of them is
  moved or deleted, and no other is created; the caller treats the block as taken over
  (deleting one could delete the original, and the copy is the user's). Untagged events in
  ``existing`` are never targeted; they only explain a move ("'Design review' now
  takes 14:00–14:45").
* ``Block`` has no field for ``Rule.defend``: ``Plan.rules`` maps each desired block id
  to the rule that asked for it.
"""

from __future__ import annotations

import base64
import hashlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from worker.core.analysis import MeetingsFrom, Policy, analyze_days, is_busy, is_meeting
from worker.core.model import (
    WEEKDAYS,
    Block,
    BlockChange,
    ChangeKind,
    Event,
    EventType,
    Person,
    Response,
    Status,
    Transparency,
    local_day_range,
    wall_time,
)

__all__ = [
    "DEFAULT_DURATIONS",
    "DEFAULT_MIN_BLOCK",
    "DEFAULT_TITLES",
    "KINDS",
    "RECOVERY_REACH",
    "Plan",
    "Rule",
    "Unprotectable",
    "block_id",
    "horizon_end",
    "plan",
    "reconcile",
]

KINDS = ("coaching", "recovery", "focus", "lunch")
DEFAULT_TITLES = {
    "coaching": "Coaching",
    "recovery": "Recovery",
    "focus": "Focus time",
    "lunch": "Lunch",
}
DEFAULT_DURATIONS = {
    "coaching": timedelta(minutes=45),
    "recovery": timedelta(minutes=15),
    "focus": timedelta(hours=2),
    "lunch": timedelta(hours=1),
}
DEFAULT_MIN_BLOCK = timedelta(minutes=30)
DEFAULT_AFTER_CHAIN = timedelta(hours=2)
RECOVERY_REACH = timedelta(hours=2)
"""A recovery block starts at most this long after the chain it follows ends."""

_DEFAULT_POLICY = Policy()
_LOOKBACK = timedelta(days=14)  # how far back an overloaded day can still ask for today
_PRIORITY = {"recovery": 0, "lunch": 1, "coaching": 2, "focus": 3}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_MINUTE = 60_000_000
_GRID = 5 * _MINUTE
_NEVER = -(2**62)
_FOREVER = 2**62

_Span = tuple[int, int]  # [start, end) in microseconds since the epoch


# -- public values ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``protect:`` rule for one person, typed (docs/configuration.md, protect).

    ``duration`` 0 and ``title`` "" mean the kind's default.
    """

    kind: str
    index: int
    duration: timedelta = timedelta(0)
    title: str = ""
    transparency: Transparency = Transparency.BUSY
    defend: str = "hold"
    per_week: int | None = None
    per_day: int | None = None
    goal_per_day: timedelta | None = None
    goal_per_week: timedelta | None = None
    min_block: timedelta | None = None
    days: frozenset[int] | None = None
    window: tuple[time, time] | None = None
    earliest: time | None = None
    latest: time | None = None
    after_chain: timedelta | None = None
    after_overloaded_day: timedelta | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown rule kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.duration < timedelta(0):
            raise ValueError(f"duration must be positive, got {self.duration}")
        if not self.duration:
            object.__setattr__(self, "duration", DEFAULT_DURATIONS[self.kind])
        if not self.title:
            object.__setattr__(self, "title", DEFAULT_TITLES[self.kind])
        if self.days is not None:
            days = frozenset(self.days)
            if not days <= frozenset(range(7)):
                raise ValueError(f"days must be weekdays 0 (mon) .. 6 (sun), got {sorted(days)}")
            object.__setattr__(self, "days", days)
        for name in ("per_week", "per_day"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        for name in ("goal_per_day", "goal_per_week", "min_block", "after_overloaded_day"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {value}")
        if self.after_chain is not None and self.after_chain < timedelta(0):
            raise ValueError(f"after_chain must not be negative, got {self.after_chain}")
        if self.window is not None and self.window[1] <= self.window[0]:
            raise ValueError(f"window must end after it starts, got {self.window}")
        if self.kind == "focus" and self.min_block is not None and self.min_block > self.duration:
            raise ValueError(
                f"focus min_block {_fmt_dur(self.min_block)} is longer than its duration "
                f"{_fmt_dur(self.duration)}"
            )


@dataclass(frozen=True, slots=True)
class Unprotectable:
    """A period a rule could not fully protect, and why."""

    owner: str
    rule: str
    period: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """``desired``: sorted by start, each ``Block.reason`` says why it exists.
    ``rules``: the rule behind each desired block, by block id (e.g. for ``defend``)."""

    desired: tuple[Block, ...]
    unprotectable: tuple[Unprotectable, ...]
    rules: Mapping[str, Rule] = field(default_factory=dict, hash=False)


def block_id(owner: str, rule: Rule, period: str, n: int) -> str:
    """A deterministic block id: 26 characters of ``0-9a-v`` (base32hex of 128 bits of
    sha256), valid as a Google event id and a file name."""
    key = "\x1f".join((owner.strip().casefold(), rule.kind, str(rule.index), period, str(n)))
    digest = hashlib.sha256(key.encode("utf-8")).digest()[:16]
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


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


# -- formatting ---------------------------------------------------------------------------


def _fmt_dur(span: timedelta) -> str:
    return _fmt_minutes(math.ceil(span / timedelta(minutes=1) - 1e-9))


def _fmt_minutes(minutes: int) -> str:
    hours, mins = divmod(max(minutes, 0), 60)
    if hours and mins:
        return f"{hours}h{mins:02d}"
    if hours:
        return f"{hours}h"
    return f"{mins} min"


def _fmt_us(us: int) -> str:
    return _fmt_minutes(math.ceil(us / _MINUTE - 1e-9))


def _fmt_clock(at: time) -> str:
    return f"{at:%H:%M}"


def _fmt_days(days: Iterable[int]) -> str:
    ordered = sorted(set(days))
    runs: list[list[int]] = []
    for d in ordered:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}–{WEEKDAYS[run[-1]]}")
        else:
            parts.extend(WEEKDAYS[d] for d in run)
    return ", ".join(parts)


def _fmt_date(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()].capitalize()} {day.isoformat()}"


def _fmt_range(start: datetime, end: datetime) -> str:
    return f"{start:%H:%M}–{end:%H:%M}"


def _where(rule: Rule) -> str:
    parts = []
    if rule.days is not None:
        parts.append(_fmt_days(rule.days))
    if rule.window is not None:
        parts.append(f"{_fmt_clock(rule.window[0])}–{_fmt_clock(rule.window[1])}")
    else:
        parts.append("working hours")
    if rule.earliest is not None:
        parts.append(f"from {_fmt_clock(rule.earliest)}")
    if rule.latest is not None:
        parts.append(f"until {_fmt_clock(rule.latest)}")
    return " ".join(parts)


def _week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# -- the planning state ----------------------------------------------------------------


@dataclass(slots=True)
class _Day:
    date: date
    bounds: _Span
    working: list[_Span]
    away: bool
    meeting_minutes: float
    overloaded: bool
    reasons: tuple[str, ...]


@dataclass(slots=True)
class _Task:
    """One period of one rule: what it asks for and what it got."""

    rule: Rule
    period: str
    days: list[_Day]
    length: int  # µs: the block length (focus: the longest block)
    min_length: int  # µs: focus only
    count: int  # fixed-length blocks wanted (0 for a focus goal)
    goal: int  # µs of focus wanted (0 for a count)
    reason: str  # Block.reason
    where: str  # "inside tue–thu 13:00–17:00"
    when: str  # "in 2026-W45"
    deadline: int  # the latest instant a block of this period could end
    lo: int = _NEVER  # bounds on a block's start
    hi: int = _FOREVER
    cap: int | None = None  # blocks per day
    place: bool = True
    began_before_today: bool = False  # the period has usable days before the horizon
    lookup: int = 1  # ids n < lookup are looked up among existing blocks
    ids: dict[int, str] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    pending: list[int] = field(default_factory=list)
    done_count: int = 0
    done_amount: int = 0
    day_count: dict[date, int] = field(default_factory=dict)
    day_amount: dict[date, int] = field(default_factory=dict)

    @property
    def focus(self) -> bool:
        return self.count == 0

    def missing(self) -> int:
        if self.focus:
            return max(self.goal - self.done_amount, 0)
        return max(self.count - self.done_count, 0)


@dataclass(slots=True)
class _Ctx:
    person: Person
    tz: ZoneInfo
    owner: str
    now: int
    floor: int
    days: dict[date, _Day]
    timeline: _Timeline
    owned: dict[str, Event]
    taken_over: frozenset[str]
    desired: list[Block] = field(default_factory=list)
    unprotectable: list[tuple[tuple[int, int, str], Unprotectable]] = field(default_factory=list)
    windows: dict[tuple[Rule, date, bool], list[_Span]] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)

    def block_id(self, task: _Task, n: int) -> str:
        found = task.ids.get(n)
        if found is None:
            found = task.ids[n] = block_id(self.owner, task.rule, task.period, n)
        return found

    def window(self, rule: Rule, day: _Day, ignore_away: bool = False) -> list[_Span]:
        """Working hours ∩ the rule's days, window, earliest and latest on ``day``."""
        key = (rule, day.date, ignore_away)
        found = self.windows.get(key)
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
        self.windows[key] = spans
        return spans

    def allowed(self, task: _Task, day: _Day, floor: int, ignore_away: bool = False) -> list[_Span]:
        hi = task.hi + task.length if task.hi < _FOREVER else _FOREVER
        return _clip(self.window(task.rule, day, ignore_away), max(floor, task.lo), hi)

    def free(self, task: _Task, day: _Day, floor: int) -> list[_Span]:
        out: list[_Span] = []
        for a, b in self.allowed(task, day, floor):
            out.extend(self.timeline.free(a, b))
        return out

    def day_of(self, us: int) -> _Day | None:
        return self.days.get(_at(us, self.tz).date())

    def valid(self, task: _Task, s: int, e: int) -> bool:
        """Whether ``[s, e)`` is a slot ``task`` may hold (not counting preferences)."""
        if s < self.now or e <= s:
            return False
        if task.focus:
            if not task.min_length <= e - s <= task.length:
                return False
        elif e - s != task.length:
            return False
        day = self.day_of(s)
        if day is None or all(d.date != day.date for d in task.days):
            return False
        if task.cap is not None and task.day_count.get(day.date, 0) >= task.cap:
            return False
        if not any(a <= s and e <= b for a, b in self.allowed(task, day, self.now)):
            return False
        return self.timeline.is_free(s, e)

    def credit(self, task: _Task, n: int, span: _Span | None) -> None:
        task.used.add(n)
        task.done_count += 1
        amount = task.length if span is None else max(span[1] - span[0], 0)
        task.done_amount += amount
        if span is not None:
            day = _at(span[0], self.tz).date()
            task.day_count[day] = task.day_count.get(day, 0) + 1
            task.day_amount[day] = task.day_amount.get(day, 0) + amount

    def book(self, task: _Task, n: int, s: int, e: int) -> None:
        self.credit(task, n, (s, e))
        self.timeline.add(s, e)
        rule = task.rule
        bid = self.block_id(task, n)
        self.rules[bid] = rule
        self.desired.append(
            Block(
                id=bid,
                owner=self.owner,
                rule=rule.kind,
                start=_at(s, self.tz),
                end=_at(e, self.tz),
                title=rule.title,
                transparency=rule.transparency,
                reason=task.reason,
            )
        )

    def next_n(self, task: _Task) -> int:
        """The id to give a new block: an existing block's that lost its slot (a move),
        else the first id no event holds."""
        while task.pending:
            n = task.pending.pop(0)
            if n not in task.used:
                return n
        n = 0
        while True:
            if n not in task.used:
                bid = self.block_id(task, n)
                if bid not in self.owned and bid not in self.taken_over:
                    return n
            n += 1


# -- events -------------------------------------------------------------------------------


def _blocks_time(event: Event, person: Person) -> bool:
    """Busy events, plus timed out-of-office and the user's own busy focus events."""
    return is_busy(event, person) or _blocking(event)


def _blocking(event: Event) -> bool:
    """Whether a user's event keeps blocks out (``is_busy`` plus the extras above)."""
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


# -- tasks ----------------------------------------------------------------------------------


def _lookup_for_goal(goal: int, min_length: int) -> int:
    return 2 * max(1, math.ceil(goal / max(min_length, 1))) + 4


def _tasks(
    ctx: _Ctx,
    rule: Rule,
    horizon: list[_Day],
    past: list[_Day],
    meetings: list[_Span],
    policy: Policy,
) -> list[_Task]:
    tz = ctx.tz
    length = rule.duration // _TICK
    where = f"inside {_where(rule)}"
    first, last = horizon[0].date, horizon[-1].date
    out: list[_Task] = []

    def deadline(days: Sequence[_Day]) -> int:
        return max((d.bounds[1] for d in days), default=_NEVER)

    def weeks() -> list[tuple[str, list[_Day], bool, bool]]:
        """(period, its horizon days, whether to place, whether it began before the
        horizon) for every week the horizon touches."""
        by_week: dict[str, list[_Day]] = {}
        for day in horizon:
            by_week.setdefault(_week_of(day.date), []).append(day)
        result = []
        for period, days in by_week.items():
            monday = days[0].date - timedelta(days=days[0].date.weekday())
            usable = [
                monday + timedelta(days=i)
                for i in range(7)
                if (rule.days is None or i in rule.days)
                and not ctx.person.working_hours.is_day_off(monday + timedelta(days=i))
            ]
            final = usable[-1] if usable else monday + timedelta(days=6)
            result.append((period, days, final <= last, bool(usable) and usable[0] < first))
        return result

    def daily_days() -> list[_Day]:
        return [d for d in horizon if ctx.window(rule, d)]

    if rule.kind == "coaching":
        per_week = rule.per_week
        if per_week is None and rule.per_day is None:
            per_week = 1
        if per_week is not None:
            for period, days, place, began in weeks():
                if per_week == 0:
                    continue
                out.append(
                    _Task(
                        rule=rule,
                        period=period,
                        days=days,
                        length=length,
                        min_length=length,
                        count=per_week,
                        goal=0,
                        reason=f"{_count(per_week)}{_fmt_dur(rule.duration)} coaching a week "
                        f"({_where(rule)})",
                        where=where,
                        when=f"in {period}",
                        deadline=deadline(days),
                        cap=rule.per_day,
                        place=place,
                        began_before_today=began,
                        lookup=per_week,
                    )
                )
        elif rule.per_day:
            for day in daily_days():
                out.append(
                    _Task(
                        rule=rule,
                        period=day.date.isoformat(),
                        days=[day],
                        length=length,
                        min_length=length,
                        count=rule.per_day,
                        goal=0,
                        reason=f"{_count(rule.per_day)}{_fmt_dur(rule.duration)} coaching a day "
                        f"({_where(rule)})",
                        where=where,
                        when=f"on {_fmt_date(day.date)}",
                        deadline=deadline([day]),
                        lookup=rule.per_day,
                    )
                )
    elif rule.kind == "lunch":
        for day in daily_days():
            out.append(
                _Task(
                    rule=rule,
                    period=day.date.isoformat(),
                    days=[day],
                    length=length,
                    min_length=length,
                    count=1,
                    goal=0,
                    reason=f"{_fmt_dur(rule.duration)} lunch a day ({_where(rule)})",
                    where=where,
                    when=f"on {_fmt_date(day.date)}",
                    deadline=deadline([day]),
                )
            )
    elif rule.kind == "focus":
        min_length = (rule.min_block or min(DEFAULT_MIN_BLOCK, rule.duration)) // _TICK
        weekly = rule.goal_per_week
        daily = rule.goal_per_day
        if weekly is None and daily is None:
            if rule.per_week:
                weekly = rule.per_week * rule.duration
            elif rule.per_day:
                daily = rule.per_day * rule.duration
            else:
                daily = rule.duration
        if weekly is not None:
            goal = weekly // _TICK
            for period, days, place, began in weeks():
                out.append(
                    _Task(
                        rule=rule,
                        period=period,
                        days=days,
                        length=length,
                        min_length=min_length,
                        count=0,
                        goal=goal,
                        reason=f"focus goal {_fmt_dur(weekly)} a week ({_where(rule)})",
                        where=where,
                        when=f"in {period}",
                        deadline=deadline(days),
                        place=place,
                        began_before_today=began,
                        lookup=_lookup_for_goal(goal, min_length),
                    )
                )
        if daily is not None:
            goal = daily // _TICK
            for day in daily_days():
                out.append(
                    _Task(
                        rule=rule,
                        period=day.date.isoformat(),
                        days=[day],
                        length=length,
                        min_length=min_length,
                        count=0,
                        goal=goal,
                        reason=f"focus goal {_fmt_dur(daily)} a day ({_where(rule)})",
                        where=where,
                        when=f"on {_fmt_date(day.date)}",
                        deadline=deadline([day]),
                        lookup=_lookup_for_goal(goal, min_length),
                    )
                )
    else:  # recovery
        after_chain = rule.after_chain
        if after_chain is None and rule.after_overloaded_day is None:
            after_chain = DEFAULT_AFTER_CHAIN
        if after_chain is not None:
            longer = after_chain // _TICK
            gap = policy.back_to_back_gap // _TICK
            reach = RECOVERY_REACH // _TICK
            chain_days = past[-1:] + horizon
            for i, day in enumerate(chain_days):
                seen: set[str] = set()
                for s, e in _chains(meetings, day, gap):
                    if e - s <= longer:
                        continue
                    end_local = _at(e, tz)
                    period = f"{day.date.isoformat()} {end_local:%H:%M}"
                    k = 2
                    while period in seen:
                        period = f"{day.date.isoformat()} {end_local:%H:%M} #{k}"
                        k += 1
                    seen.add(period)
                    days = [d for d in chain_days[i : i + 2] if d.date >= first]
                    chain = _fmt_range(_at(s, tz), end_local)
                    out.append(
                        _Task(
                            rule=rule,
                            period=period,
                            days=days,
                            length=length,
                            min_length=length,
                            count=1,
                            goal=0,
                            reason=f"{_fmt_dur(rule.duration)} recovery after the "
                            f"{_fmt_us(e - s)} meeting chain {chain}",
                            where=f"within {_fmt_dur(RECOVERY_REACH)} after the meeting "
                            f"chain {chain}",
                            when=f"on {_fmt_date(day.date)}",
                            deadline=e + reach + length,
                            lo=e,
                            hi=e + reach,
                        )
                    )
        quiet = rule.after_overloaded_day
        if quiet is not None:
            quiet_length = quiet // _TICK
            candidates = past + horizon
            for j, bad in enumerate(candidates):
                if not bad.overloaded:
                    continue
                later = candidates[j + 1 :]
                target = next((d for d in later if ctx.window(rule, d)), None)
                if target is None or target.date < first:
                    continue  # that day has passed, or lies past the horizon
                why = ", ".join(bad.reasons)
                out.append(
                    _Task(
                        rule=rule,
                        period=f"after-{bad.date.isoformat()}",
                        days=[target],
                        length=quiet_length,
                        min_length=quiet_length,
                        count=1,
                        goal=0,
                        reason=f"{_fmt_dur(quiet)} recovery after overloaded "
                        f"{_fmt_date(bad.date)} ({why})",
                        where=where,
                        when=f"on {_fmt_date(target.date)}, the next working day after "
                        f"overloaded {_fmt_date(bad.date)}",
                        deadline=deadline([target]),
                    )
                )
    return out


def _count(n: int) -> str:
    return f"{n} × " if n != 1 else ""


# -- keep, place, report ----------------------------------------------------------------


def _keep(ctx: _Ctx, task: _Task) -> None:
    """Credit taken-over and started blocks; keep existing blocks whose slot is valid."""
    existing: list[tuple[int, Event]] = []
    for n in range(task.lookup):
        bid = ctx.block_id(task, n)
        event = ctx.owned.get(bid)
        if bid in ctx.taken_over:
            ctx.credit(task, n, None if event is None else _span_of(event))
        elif event is not None:
            if _us(event.start) < ctx.now:
                ctx.credit(task, n, _span_of(event))
            else:
                existing.append((n, event))
    for n, event in existing:
        s, e = _span_of(event)
        if task.missing() > 0 and ctx.valid(task, s, e):
            ctx.book(task, n, s, e)
        else:
            task.pending.append(n)


def _place(ctx: _Ctx, task: _Task) -> None:
    if not task.place:
        return
    kind = task.rule.kind
    while task.missing() > 0:
        slot = _old_start(ctx, task)
        if slot is None:
            if kind == "coaching":
                slot = _spread_slot(ctx, task)
            elif kind == "lunch":
                slot = _middle_slot(ctx, task)
            elif kind == "focus":
                slot = _focus_slot(ctx, task)
            else:
                slot = _earliest_slot(ctx, task)
        if slot is None:
            break
        ctx.book(task, ctx.next_n(task), *slot)


def _old_start(ctx: _Ctx, task: _Task) -> _Span | None:
    """A moved fixed-length block keeps its start when only its length broke it."""
    if task.focus:
        return None
    n = next((n for n in task.pending if n not in task.used), None)
    event = None if n is None else ctx.owned.get(ctx.block_id(task, n))
    if event is None:
        return None
    s = _us(event.start)
    return (s, s + task.length) if ctx.valid(task, s, s + task.length) else None


def _first_fit(spans: Iterable[_Span], length: int) -> _Span | None:
    for a, b in spans:
        if b - a >= length:
            return (a, a + length)
    return None


def _earliest_slot(ctx: _Ctx, task: _Task) -> _Span | None:
    for day in task.days:
        slot = _first_fit(ctx.free(task, day, ctx.floor), task.length)
        if slot is not None:
            return slot
    return None


def _spread_slot(ctx: _Ctx, task: _Task) -> _Span | None:
    best: tuple[tuple[int, float, date], _Span] | None = None
    for day in task.days:
        if task.cap is not None and task.day_count.get(day.date, 0) >= task.cap:
            continue
        slot = _first_fit(ctx.free(task, day, ctx.floor), task.length)
        if slot is None:
            continue
        key = (task.day_count.get(day.date, 0), day.meeting_minutes, day.date)
        if best is None or key < best[0]:
            best = (key, slot)
    return None if best is None else best[1]


def _middle_slot(ctx: _Ctx, task: _Task) -> _Span | None:
    best: tuple[tuple[int, int], _Span] | None = None
    length = task.length
    for day in task.days:
        window = ctx.allowed(task, day, _NEVER)
        if not window:
            continue
        middle = (window[0][0] + window[-1][1]) // 2
        for a, b in ctx.free(task, day, ctx.floor):
            if b - a < length:
                continue
            s = min(max(middle - length // 2, a), b - length)
            key = (abs(s + length // 2 - middle), s)
            if best is None or key < best[0]:
                best = (key, (s, s + length))
    return None if best is None else best[1]


def _focus_slot(ctx: _Ctx, task: _Task) -> _Span | None:
    weekly = "-W" in task.period
    best: tuple[tuple[int, int, int], _Span] | None = None
    for day in task.days:
        booked = task.day_amount.get(day.date, 0) if weekly else 0
        for a, b in ctx.free(task, day, ctx.floor):
            if b - a < task.min_length:
                continue
            key = (booked, a - b, a)
            if best is None or key < best[0]:
                best = (key, (a, b))
    if best is None:
        return None
    a, b = best[1]
    length = min(b - a, task.length, max(task.missing(), task.min_length))
    return (a, a + length)


def _fits(spans: Iterable[_Span], length: int) -> bool:
    return any(b - a >= length for a, b in spans)


def _report(ctx: _Ctx, task: _Task) -> None:
    """Say why ``task`` is short, unless its time has passed (history is not a plan)."""
    if task.missing() <= 0 or not task.place or task.deadline <= ctx.now:
        return
    rule = task.rule
    need = task.min_length
    ever = [s for d in task.days for s in ctx.allowed(task, d, _NEVER, ignore_away=True)]
    future = [s for d in task.days for s in ctx.allowed(task, d, ctx.now, ignore_away=True)]
    present = [s for d in task.days for s in ctx.allowed(task, d, ctx.now)]
    if not _fits(future, need) and (_fits(ever, need) or task.began_before_today):
        return  # there was room, but it lies before now
    if task.focus:
        suffix = f" ({_fmt_us(task.missing())} missing)"
    else:
        suffix = f" ({task.done_count} of {task.count} booked)" if task.count > 1 else ""
    if not ever:
        reason = f"no working hours {task.where} {task.when}{suffix}"
    elif not _fits(ever, need):
        reason = f"{_fmt_us(need)} does not fit {task.where} {task.when}{suffix}"
    elif not _fits(present, need):
        reason = f"away {task.when}{suffix}"
    elif task.focus:
        reason = (
            f"only {_fmt_us(task.done_amount)} of {_fmt_us(task.goal)} focus time fits "
            f"{task.where} {task.when}{suffix}"
        )
    else:
        reason = f"no free {_fmt_us(task.length)} {task.where} {task.when}{suffix}"
    start = min((d.bounds[0] for d in task.days), default=0)
    key = (rule.index, start, task.period)
    ctx.unprotectable.append((key, Unprotectable(ctx.owner, rule.kind, task.period, reason)))


# -- the public entry points -----------------------------------------------------------


def plan(
    person: Person,
    events: Sequence[Event],
    rules: Sequence[Rule],
    now: datetime,
    horizon: timedelta,
    policy: Policy = _DEFAULT_POLICY,
    taken_over: Collection[str] = (),
    *,
    meetings_from: MeetingsFrom = "attendees",
) -> Plan:
    """The blocks ``rules`` want on ``person``'s calendar from ``now`` for ``horizon``,
    and what they cannot get (see the module docs for every rule). ``meetings_from`` is
    the calendar's ``meetings:`` (what counts as a meeting, as in :mod:`worker.core.analysis`)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be time-zone aware, got naive {now.isoformat()}")
    seen: set[tuple[str, int]] = set()
    for rule in rules:
        if (rule.kind, rule.index) in seen:
            raise ValueError(f"two {rule.kind} rules share index {rule.index}")
        seen.add((rule.kind, rule.index))
    tz = person.tz
    now_us = _us(now)
    today = now.astimezone(tz).date()
    last = (now.astimezone(UTC) + horizon).astimezone(tz).date()
    if last < today or not rules:
        return Plan((), ())

    ordered = sorted(events, key=_event_key)
    metrics = analyze_days(
        person, ordered, today - _LOOKBACK, last, policy, meetings_from=meetings_from
    )
    all_days: list[_Day] = []
    for m in metrics:
        bounds_range = local_day_range(m.date, tz)
        bounds = (_us(bounds_range.start), _us(bounds_range.end))
        working = _union(
            _clip(
                ((_us(r.start), _us(r.end)) for r in person.working_hours.ranges_on(m.date, tz)),
                *bounds,
            )
        )
        all_days.append(
            _Day(m.date, bounds, working, m.away, m.meeting_minutes, m.overloaded, m.reasons)
        )
    past_days, horizon_days = all_days[: _LOOKBACK.days], all_days[_LOOKBACK.days :]

    owned: dict[str, Event] = {}
    occupied: list[_Span] = []
    taken = frozenset(taken_over)
    blocking: list[_Span] = []
    meetings: list[_Span] = []
    for event in ordered:
        if event.owned_block_id is not None:
            if event.status == Status.CANCELLED:
                continue
            owned.setdefault(event.owned_block_id, event)
            if event.owned_block_id in taken or _us(event.start) < now_us:
                occupied.append(_span_of(event))
            continue
        if _blocks_time(event, person):
            blocking.append(_span_of(event))
            if is_meeting(event, person, meetings_from):
                meetings.append(_span_of(event))

    ctx = _Ctx(
        person=person,
        tz=tz,
        owner=person.email,
        now=now_us,
        floor=-(-now_us // _GRID) * _GRID,
        days={d.date: d for d in horizon_days},
        timeline=_Timeline(blocking + occupied),
        owned=owned,
        taken_over=taken,
    )
    meetings = _union(meetings)
    tasks: list[_Task] = []
    for rule in sorted(rules, key=lambda r: (_PRIORITY[r.kind], r.index)):
        tasks.extend(_tasks(ctx, rule, horizon_days, past_days, meetings, policy))
    for task in tasks:
        _keep(ctx, task)
    for task in tasks:
        _place(ctx, task)
        _report(ctx, task)

    desired = tuple(sorted(ctx.desired, key=lambda b: (_us(b.start), _us(b.end), b.id)))
    unprotectable = tuple(u for _, u in sorted(ctx.unprotectable, key=lambda x: x[0]))
    return Plan(desired, unprotectable, {b.id: ctx.rules[b.id] for b in desired})


def reconcile(
    desired: Sequence[Block],
    existing: Sequence[Event],
    taken_over: Collection[str] = (),
    *,
    now: datetime | None = None,
    until: datetime | None = None,
) -> list[BlockChange]:
    """The writes that turn the owned blocks among ``existing`` into ``desired``.

    Only events carrying ``owned_block_id`` are ever targeted; ids in ``taken_over``
    are never touched; with ``now``, blocks that already started are left alone; with
    ``until``, existing blocks starting at or after it are outside the plan.
    """
    taken = frozenset(taken_over)
    now_us = None if now is None else _us(now)
    until_us = None if until is None else _us(until)
    wanted: dict[str, Block] = {}
    for block in desired:
        if block.id in wanted:
            raise ValueError(f"two desired blocks share the id {block.id}")
        wanted[block.id] = block

    ordered = sorted(existing, key=_event_key)
    others = [
        e
        for e in ordered
        if e.owned_block_id is None and not e.all_day and e.status != Status.CANCELLED
    ]
    by_id: dict[str, list[Event]] = {}
    for event in ordered:
        if event.owned_block_id is not None and event.status != Status.CANCELLED:
            by_id.setdefault(event.owned_block_id, []).append(event)
    owners = {b.owner for b in desired}
    owner = next(iter(owners)) if len(owners) == 1 else ""

    def started(event: Event) -> bool:
        return now_us is not None and _us(event.start) < now_us

    copied = {bid for bid, found in by_id.items() if len(found) > 1}
    changes: list[BlockChange] = []
    for bid, block in wanted.items():
        if bid in taken or bid in copied:
            continue
        found = by_id.get(bid, [])
        if not found:
            if now_us is None or _us(block.start) >= now_us:
                changes.append(BlockChange(ChangeKind.CREATE, block, f"new: {block.reason}"))
            continue
        (match,) = found
        if (
            not _same(match, block)
            and not started(match)
            and (now_us is None or _us(block.start) >= now_us)
        ):
            reason = _move_reason(match, block, others)
            changes.append(BlockChange(ChangeKind.MOVE, block, reason, match.id, match.etag))
    for bid, found in by_id.items():
        if bid in wanted or bid in taken or bid in copied:
            continue
        for event in found:
            if started(event) or (until_us is not None and _us(event.start) >= until_us):
                continue
            gone = _as_block(event, owner, "no longer needed")
            title = f"{event.title!r} " if event.title else ""
            changes.append(
                BlockChange(
                    ChangeKind.DELETE,
                    gone,
                    f"no longer needed: {title}{_fmt_when(gone.start, gone.end)} — no rule asks "
                    "for it any more (the rule changed, or the chain or day it was for is gone)",
                    event.id,
                    event.etag,
                )
            )
    changes.sort(
        key=lambda c: (
            _us(c.block.start),
            _us(c.block.end),
            c.block.id,
            c.kind.value,
            c.event_id or "",
        )
    )
    return changes


def _same(event: Event, block: Block) -> bool:
    return (
        _us(event.start) == _us(block.start)
        and _us(event.end) == _us(block.end)
        and event.transparency == block.transparency
        and (event.title is None or event.title == block.title)
    )


def _as_block(event: Event, owner: str, reason: str) -> Block:
    start = event.start
    end = event.end if _us(event.end) >= _us(event.start) else event.start
    return Block(
        id=event.owned_block_id or "",
        owner=owner,
        rule="",
        start=start,
        end=end,
        title=event.title or "",
        transparency=event.transparency,
        reason=reason,
    )


def _fmt_when(start: datetime, end: datetime, tz: tzinfo | None = None) -> str:
    if tz is not None:
        start, end = start.astimezone(tz), end.astimezone(tz)
    return f"{_fmt_date(start.date())} {_fmt_range(start, end)}"


def _move_reason(event: Event, block: Block, others: Sequence[Event]) -> str:
    tz = block.start.tzinfo
    old_s, old_e = _span_of(event)
    new_s, new_e = _us(block.start), _us(block.end)
    new = _fmt_when(block.start, block.end)
    old = _fmt_when(event.start, event.end, tz)
    if (old_s, old_e) == (new_s, new_e):
        what = []
        if event.title is not None and event.title != block.title:
            what.append(f"title {event.title!r} → {block.title!r}")
        if event.transparency != block.transparency:
            what.append(f"shown as {block.transparency.value}")
        return f"updated: {', '.join(what) or 'details'} ({new})"
    for other in others:
        s, e = _span_of(other)
        if s < old_e and old_s < e and _blocking(other):
            name = repr(other.title) if other.title else "another event"
            taken = _fmt_range(_at(s, tz), _at(e, tz))
            return f"moved: {name} now takes {taken}; {block.title!r} goes to {new}"
    if old_s == new_s:
        return f"resized: {_fmt_us(old_e - old_s)} → {_fmt_us(new_e - new_s)} ({new})"
    return f"moved: {old} → {new} (its old slot no longer fits the rule)"
