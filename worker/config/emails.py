"""The ``emails:`` section: one settings model per program, parsed times included."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any, Literal

from pydantic import (
    Field,
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


class CheckinSettings(_Section):
    """The morning check-in: priorities, a concern, a blocker (each optional)."""

    to: Audience = "everyone"
    at: Clock = time(9, 15)
    days: Days = frozenset(range(5))
    within: SendWindow = timedelta(hours=4)


class CheckinDigestSettings(_Section):
    """The async stand-up: the team's shared check-ins, to each member who shared."""

    at: Clock = time(10, 30)
    days: Days = frozenset(range(5))
    within: SendWindow = timedelta(hours=4)


#: A pulse question's id: what its answers are stored under (``workload``).
_QUESTION_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")


class PulseQuestion(_Section):
    id: str
    text: str = Field(min_length=1, max_length=300)
    scale: Literal["1-5", "0-10"] = "1-5"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _QUESTION_ID.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a question id — write lower-case letters, digits and _, "
                "starting with a letter (at most 32), like workload"
            )
        return value

    @property
    def low(self) -> int:
        return int(self.scale.split("-")[0])

    @property
    def high(self) -> int:
        return int(self.scale.split("-")[1])


class PulseSettings(WeeklySettings):
    """The pulse check: 1-3 questions each ``every`` week or two, anonymous to leaders."""

    to: Audience = "everyone"
    at: str = "fri 14:00"
    every: Literal["1w", "2w"] = "1w"
    questions: tuple[PulseQuestion, ...]

    @field_validator("questions")
    @classmethod
    def _unique(cls, value: tuple[PulseQuestion, ...]) -> tuple[PulseQuestion, ...]:
        if not 1 <= len(value) <= 3:
            raise ValueError(
                f"{len(value)} questions — a pulse asks one to three (keep it quick to answer)"
            )
        ids = [q.id for q in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"question id {twice[0]!r} is used twice — give each its own id")
        return value

    @property
    def weeks(self) -> int:
        """How many weeks apart the pulses are (1 or 2)."""
        return int(self.every[0])


class PartnersSettings(WeeklySettings):
    """Accountability partners in ``team``: pairs (a trio when odd), or ``pairs`` as given;
    weekly, each gets the commitments their partner chose to share."""

    to: Audience = "everyone"
    at: str = "mon 10:00"
    team: str = Field(min_length=1)
    rotate: Literal["weekly", "monthly", "never"] = "monthly"
    pairs: tuple[tuple[str, ...], ...] = ()

    @field_validator("pairs")
    @classmethod
    def _sizes(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for group in value:
            if not 2 <= len(group) <= 3:
                raise ValueError(
                    f"{list(group)} is not a pair — list two people (or three, a trio)"
                )
        return value


class EmailsSettings(_Section):
    """A program runs only when it has a section here."""

    reflection: ReflectionSettings | None = None
    recognition: WeeklySettings | None = None
    followup: FollowupSettings | None = None
    overload: OverloadMailSettings | None = None
    digest: WeeklySettings | None = None
    checkin: CheckinSettings | None = None
    checkin_digest: CheckinDigestSettings | None = None
    pulse: PulseSettings | None = None
    partners: PartnersSettings | None = None
