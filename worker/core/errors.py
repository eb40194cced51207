"""The one exception tree of steadyhand, and :class:`Problem` (what, where, the fix).

Exceptions
----------
::

    SteadyhandError
     ├── UserError                 the user can fix it; carries every Problem; exit 2
     │    ├── ConfigError          steadyhand.yaml is wrong
     │    ├── CalendarUnreadable   a calendar file/feed cannot be read or parsed
     │    └── ReadOnlyCalendar     a write was asked of a read-only calendar
     ├── MissingExtra              a backend's optional dependency is not installed
     └── ConnectorError            talking to a provider failed
          ├── TransientError       retry later (429, 5xx, timeouts); may carry retry_after
          ├── PermanentError       retrying will not help (401 after refresh, 403 quota…)
          └── NotOwned             a write aimed at an event without steadyhand's tag

A user-fixable error carries every problem found, each with its place and fix,
not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, where it is, and how to fix it.

    Rendered as ``FILE:LINE: path.to.key: what is wrong — how to fix``; parts that are
    unknown are left out.
    """

    what: str
    fix: str = ""
    file: str | None = None
    line: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}{key}{self.what}{fix}"


class SteadyhandError(Exception):
    """Base of every error steadyhand raises on purpose."""


class UserError(SteadyhandError):
    """Something the user can fix. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(UserError):
    """``steadyhand.yaml`` (or its absence) is wrong."""


class CalendarUnreadable(UserError):
    """A calendar file, folder or feed cannot be read or parsed."""


class ReadOnlyCalendar(UserError):
    """A write was asked of a calendar steadyhand may only read."""


class MissingExtra(SteadyhandError):
    """A backend needs an optional dependency that is not installed."""


class ConnectorError(SteadyhandError):
    """Talking to a calendar or mail provider failed."""


class TransientError(ConnectorError):
    """Worth retrying later; ``retry_after`` is the provider's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying will not help; recorded for ``steadyhand doctor``."""


class NotOwned(ConnectorError):
    """A change aimed at an event that does not carry steadyhand's block tag."""
