"""Placing blocks: :func:`plan` keeps every existing block whose slot is still valid, then
places what each period still misses by its rule (coaching spread over the quietest days,
lunch mid-window, focus in the longest gap, recovery right after the chain) and says why
what cannot be placed is unprotectable (the rules in full: the package docs)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from worker.core.analysis import MeetingsFrom, Policy, analyze_days, is_meeting
from worker.core.model import Block, Event, Person, Status
from worker.core.planning.periods import _Task, _tasks
from worker.core.planning.rules import _MINUTE, Plan, Rule, Unprotectable, _fmt_us, block_id
from worker.core.planning.slots import (
    _FOREVER,
    _NEVER,
    _at,
    _blocks_time,
    _clip,
    _Day,
    _days_of,
    _event_key,
    _Span,
    _span_of,
    _Timeline,
    _union,
    _us,
    _Windows,
)

_DEFAULT_POLICY = Policy()
_LOOKBACK = timedelta(days=14)  # how far back an overloaded day can still ask for today
_PRIORITY = {"recovery": 0, "lunch": 1, "coaching": 2, "focus": 3}
_GRID = 5 * _MINUTE


# -- the planning state ----------------------------------------------------------------


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
    windows: _Windows
    desired: list[Block] = field(default_factory=list)
    unprotectable: list[tuple[tuple[int, int, str], Unprotectable]] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)

    def block_id(self, task: _Task, n: int) -> str:
        found = task.ids.get(n)
        if found is None:
            found = task.ids[n] = block_id(self.owner, task.rule, task.period, n)
        return found

    def window(self, rule: Rule, day: _Day, ignore_away: bool = False) -> list[_Span]:
        return self.windows.window(rule, day, ignore_away)

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
    all_days = _days_of(person, metrics)
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
        windows=_Windows(tz),
    )
    meetings = _union(meetings)
    tasks: list[_Task] = []
    for rule in sorted(rules, key=lambda r: (_PRIORITY[r.kind], r.index)):
        tasks.extend(_tasks(person, ctx.windows, rule, horizon_days, past_days, meetings, policy))
    for task in tasks:
        _keep(ctx, task)
    for task in tasks:
        _place(ctx, task)
        _report(ctx, task)

    desired = tuple(sorted(ctx.desired, key=lambda b: (_us(b.start), _us(b.end), b.id)))
    unprotectable = tuple(u for _, u in sorted(ctx.unprotectable, key=lambda x: x[0]))
    return Plan(desired, unprotectable, {b.id: ctx.rules[b.id] for b in desired})
