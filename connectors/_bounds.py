"""Bounds on how much work expanding one calendar's recurring series may cost.

A recurrence rule can describe billions of instances (``FREQ=SECONDLY;COUNT=1000000000``)
or start centuries before the window (``DTSTART:19000101T090000Z`` with
``FREQ=MINUTELY``): dateutil, under recurring_ical_events, walks every period from
DTSTART and lists every instance in the window. Before a series is expanded,
:func:`bound_series` rewrites its rule so that the walk is short and the list small:

- *compute ahead*: a rule stepping by a fixed amount (SECONDLY to WEEKLY) whose
  DTSTART is long before the window starts at the last step before it instead (a COUNT
  becomes the UNTIL it implies), so the walk begins just before the window;
- *cut*: a rule with more instances in the window than the calendar has left of
  ``SyncLimits.max_events`` gets an UNTIL where they run out;
- *refuse*: a rule that would still walk more than :data:`MAX_WALK` periods (COUNT with
  BY-parts far in the past, several RRULEs) loses its RRULE, said in one line.

:class:`Budget` carries what is left for one calendar (instances and time) across all
its files, and why it was cut (``SyncResult.truncated``).
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from worker.core.model import UTC, SyncLimits, TimeRange

#: Periods of a rule dateutil may step through for one series (about 0.5 s).
MAX_WALK = 200_000
_FIXED = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
_SHORTEST = {**_FIXED, "MONTHLY": timedelta(days=28), "YEARLY": timedelta(days=365)}
_ORDER = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
#: BY-part -> the coarsest FREQ below which it only limits (RFC 5545 §3.3.10 table).
_EXPANDS_ABOVE = {
    "BYSECOND": "SECONDLY",
    "BYMINUTE": "MINUTELY",
    "BYHOUR": "HOURLY",
    "BYDAY": "DAILY",
    "BYMONTHDAY": "WEEKLY",
    "BYYEARDAY": "MONTHLY",
    "BYWEEKNO": "MONTHLY",
    "BYMONTH": "MONTHLY",
}
_LONGEST_SHIFTED = timedelta(days=366)  # longer events are not computed ahead
#: The limits a connector built without any uses (the ``sync:`` defaults).
DEFAULT_LIMITS = SyncLimits()


class Budget:
    """What one calendar's sync may still spend on expansion, and why it was cut."""

    def __init__(self, limits: SyncLimits | None = None, sources: int = 1) -> None:
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.left = self.limits.max_events
        #: Sources (a vdir's files) not yet read, each kept a place of ``left`` so that
        #: a series cut at the cap in one file does not crowd out the files after it.
        self.sources = sources
        self._deadline = time.perf_counter() + self.limits.expand_seconds
        self._reasons: dict[str, None] = {}

    def cut(self, why: str) -> None:
        self._reasons.setdefault(why, None)

    def out_of_time(self) -> bool:
        if time.perf_counter() <= self._deadline:
            return False
        self.cut(f"expanding took over {self.limits.expand_seconds:g} s, the rest was left out")
        return True

    def full(self) -> bool:
        if self.left > 0:
            return False
        self.cut(f"more than {self.limits.max_events} events (sync.max_events)")
        return True

    @property
    def truncated(self) -> str | None:
        return "; ".join(self._reasons) or None


def bound_series(
    component: Any, window: TimeRange, tz: ZoneInfo, budget: Budget, reserve: int = 0
) -> None:
    """Rewrite ``component``'s RRULE in place so its expansion in ``window`` is bounded,
    leaving ``reserve`` places of the budget to the calendar's other events."""
    rules = component.get("RRULE")
    if not rules:
        return
    rules = rules if isinstance(rules, list) else [rules]
    start = getattr(component.get("DTSTART"), "dt", None)
    if not isinstance(start, date):
        return  # none, or several: recurring_ical_events refuses the series
    frame = _Frame(start, tz)
    try:
        duration = max(timedelta(0), frame.naive(_end(component, start)) - frame.naive(start))
        ws, we = frame.naive(window.start), frame.naive(window.end)
    except (TypeError, ValueError, OverflowError):
        return  # mixed or odd values: recurring_ical_events judges them
    if len(rules) == 1:
        _compute_ahead(component, rules[0], frame, ws - duration, duration)
        start = component["DTSTART"].dt
    s1 = frame.naive(start)
    for rule in rules:
        if not _bound_rule(rule, frame, s1, ws - duration, we, budget, reserve):
            del component["RRULE"]
            budget.cut(f"a {_freq(rule).lower()} series from {s1:%Y} was skipped (too long)")
            return


class _Frame:
    """The naive wall-clock frame dateutil steps a series in: DTSTART's own zone."""

    def __init__(self, start: date | datetime, tz: ZoneInfo) -> None:
        self.dates = not isinstance(start, datetime)
        self.zone = start.tzinfo if isinstance(start, datetime) and start.tzinfo else None
        self.tz = tz

    def naive(self, value: date | datetime) -> datetime:
        if not isinstance(value, datetime):
            return datetime.combine(value, datetime.min.time())
        if value.tzinfo is None:
            return value
        return value.astimezone(self.zone or self.tz).replace(tzinfo=None)

    def value(self, naive: datetime) -> date | datetime:
        """``naive`` back as DTSTART's kind: a date, a zoned time, or a floating time."""
        if self.dates:
            return naive.date()
        return naive.replace(tzinfo=self.zone) if self.zone else naive

    def until(self, naive: datetime) -> date | datetime:
        """An UNTIL value of the kind RFC 5545 wants beside this DTSTART (UTC if zoned)."""
        found = self.value(naive)
        return found.astimezone(UTC) if isinstance(found, datetime) and self.zone else found


def _end(component: Any, start: date | datetime) -> date | datetime:
    if "DTEND" in component:
        end: date | datetime = component["DTEND"].dt
        return end
    if "DURATION" in component and isinstance(component["DURATION"].dt, timedelta):
        return start + component["DURATION"].dt
    return start


def _freq(rule: Any) -> str:
    return str((rule.get("FREQ") or [""])[0]).upper()


def _int(rule: Any, name: str) -> int | None:
    values = rule.get(name)
    if not values:
        return None
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return None


def _parts(rule: Any) -> dict[str, list[Any]]:
    return {str(k).upper(): list(v) for k, v in rule.items() if str(k).upper().startswith("BY")}


def _step(rule: Any, table: dict[str, timedelta]) -> timedelta | None:
    freq = _freq(rule)
    if freq not in table:
        return None
    interval = max(1, _int(rule, "INTERVAL") or 1)
    try:
        return table[freq] * interval
    except OverflowError:  # steps past year 9999: dateutil takes at most one
        return None


def _multiplicity(rule: Any) -> int:
    """At most how many instances one period of the rule yields."""
    freq = _freq(rule)
    rank = _ORDER.index(freq) if freq in _ORDER else 0
    total = 1
    for part, values in _parts(rule).items():
        above = _EXPANDS_ABOVE.get(part)
        if above is None or rank <= _ORDER.index(above):
            continue  # a limit at this FREQ, or BYSETPOS / WKST
        n = max(1, len(values))
        if part == "BYDAY" and freq in ("MONTHLY", "YEARLY"):
            each = 5 if freq == "MONTHLY" else 53
            n = sum(1 if any(c.isdecimal() for c in str(v)) else each for v in values)
        total *= n
    return min(total, 10**9)


def _compute_ahead(
    component: Any, rule: Any, frame: _Frame, target: datetime, duration: timedelta
) -> None:
    """Start a fixed-step series at its last step before ``target`` (DTSTART..window)."""
    step = _step(rule, _FIXED)
    if step is None or duration > _LONGEST_SHIFTED or (frame.dates and step < timedelta(days=1)):
        return
    start = component["DTSTART"].dt
    s0 = frame.naive(start)
    try:
        target -= timedelta(days=1)  # leeway for zones and floating times
    except OverflowError:
        return
    if s0 >= target:
        return
    steps = (target - s0) // step
    count = _int(rule, "COUNT")
    if steps <= 0 or (count is not None and _parts(rule)):
        return  # a COUNT of filtered instances cannot be moved by arithmetic
    try:
        if count is not None:
            last = s0 + step * (max(count, 1) - 1)
            del rule["COUNT"]
            rule["UNTIL"] = [frame.until(last)]
        shift = step * steps
        new_start = frame.value(s0 + shift)
    except OverflowError:
        return
    end = component.get("DTEND")
    component.pop("DTSTART")
    component.add("DTSTART", new_start)
    if end is not None:
        component.pop("DTEND")
        component.add("DTEND", frame.value(frame.naive(new_start) + duration))


def _bound_rule(
    rule: Any,
    frame: _Frame,
    s1: datetime,
    first: datetime,
    we: datetime,
    budget: Budget,
    reserve: int,
) -> bool:
    """Cut ``rule`` to the instances the budget has room for; False: refuse the series."""
    step = _step(rule, _SHORTEST)
    if step is None:
        return True  # recurring_ical_events refuses what dateutil cannot read
    count = _int(rule, "COUNT")
    until_values = rule.get("UNTIL")
    try:
        until = frame.naive(until_values[0]) if until_values else None
    except (TypeError, ValueError, OverflowError, AttributeError):
        until = None
    last = min(we, until) if until is not None else we
    per = _multiplicity(rule)
    begin = max(s1, first)
    inside = max(0.0, (last - begin) / step) * per
    if count is not None:
        inside = min(inside, count)
    room = max(budget.left - reserve, 0)
    cut_here = False
    if inside > room:
        try:
            cut = begin + step * (math.ceil(room / per) + 1)
        except OverflowError:
            cut = last
        before = max(0.0, (cut - s1) / step) * per  # instances up to the cut, at most
        if count is None or count > before:
            if count is not None:
                del rule["COUNT"]
            rule["UNTIL"] = [frame.until(cut)]
            last = min(last, cut)
            cut_here = True
    walk = max(0.0, (last - s1) / step)
    if count is not None and not _parts(rule):
        walk = min(walk, count)
    if walk > MAX_WALK:
        return False
    if cut_here:
        budget.cut(f"more than {budget.limits.max_events} events (sync.max_events)")
    return True
