"""The ``emails:`` section: one settings model per program, parsed times included."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any, Literal

from pydantic import (
    PrivateAttr,
    field_validator,
)

from worker.config.values import (
    Audience,
    Clock,
    Days,
    SendWindow,
    WeekDuration,
    _Section,
    parse_clock,
    parse_days,
)

#: What makes a busy event a meeting (docs/metrics.md); unset means ``attendees``.
Meetings = Literal["attendees", "busy"]


class ReflectionSettings(_Section):
    to: Audience = "leaders"
    at: Clock = time(16, 30)
    days: Days = frozenset(range(5))
    within: SendWindow = timedelta(hours=4)


def _weekly_at(value: str) -> tuple[int, time]:
    """``"fri 10:00"`` -> ``(4, time(10))``; a ValueError saying how to write it."""
    day, _, clock = value.strip().partition(" ")
    days = parse_days(day)
    if len(days) != 1:
        raise ValueError(f'{value!r} — write one day and a time, e.g. "fri 10:00"')
    return next(iter(days)), parse_clock(clock)


class WeeklySettings(_Section):
    """A weekly send: ``at`` as written (``"fri 10:00"``), parsed into :attr:`weekday`
    (0 = Monday) and :attr:`clock` when the settings are read."""

    to: Audience = "leaders"
    at: str = "fri 10:00"
    _when: tuple[int, time] = PrivateAttr(default=(4, time(10)))

    @field_validator("at")
    @classmethod
    def _weekly(cls, value: str) -> str:
        _weekly_at(value)
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._when = _weekly_at(self.at)

    @property
    def weekday(self) -> int:
        """The day of ``at`` (0 = Monday)."""
        return self._when[0]

    @property
    def clock(self) -> time:
        """The time of day of ``at``."""
        return self._when[1]


class FollowupSettings(_Section):
    after: Literal["one_on_one"] = "one_on_one"
    delay: WeekDuration = timedelta(minutes=30)


class OverloadMailSettings(_Section):
    to: Literal["person"] = "person"
    notify_leader: bool = False
    lookahead: WeekDuration = timedelta(days=1)


class EmailsSettings(_Section):
    """A program runs only when it has a section here."""

    reflection: ReflectionSettings | None = None
    recognition: WeeklySettings | None = None
    followup: FollowupSettings | None = None
    overload: OverloadMailSettings | None = None
    digest: WeeklySettings | None = None
