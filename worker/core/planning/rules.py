"""The typed values of planning and their defaults: :class:`Rule` (one ``protect:`` rule),
what :func:`~worker.core.planning.plan` returns (:class:`Plan`, :class:`Unprotectable`),
the block ids, and how rules, durations, days and dates are put into the words of reasons."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from worker.core.model import WEEKDAYS, Block, Transparency

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


_MINUTE = 60_000_000  # µs


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
