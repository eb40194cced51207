"""What each rule asks for: one :class:`_Task` per period (an ISO week, a date, a meeting
chain, an overloaded day) with its count or focus goal, the days it may use, and the
words of its reason."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from worker.core.analysis import Policy
from worker.core.model import Person
from worker.core.planning.rules import (
    DEFAULT_AFTER_CHAIN,
    DEFAULT_MIN_BLOCK,
    RECOVERY_REACH,
    Rule,
    _fmt_date,
    _fmt_dur,
    _fmt_range,
    _fmt_us,
    _where,
)
from worker.core.planning.slots import (
    _FOREVER,
    _NEVER,
    _TICK,
    _at,
    _chains,
    _Day,
    _Span,
    _Windows,
)


def _week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


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


def _lookup_for_goal(goal: int, min_length: int) -> int:
    return 2 * max(1, math.ceil(goal / max(min_length, 1))) + 4


def _tasks(
    person: Person,
    windows: _Windows,
    rule: Rule,
    horizon: list[_Day],
    past: list[_Day],
    meetings: list[_Span],
    policy: Policy,
) -> list[_Task]:
    tz = person.tz
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
                and not person.working_hours.is_day_off(monday + timedelta(days=i))
            ]
            final = usable[-1] if usable else monday + timedelta(days=6)
            result.append((period, days, final <= last, bool(usable) and usable[0] < first))
        return result

    def daily_days() -> list[_Day]:
        return [d for d in horizon if windows.window(rule, d)]

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
                target = next((d for d in later if windows.window(rule, d)), None)
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
