"""The contract between steadyhand and the outside world, and its one exception tree.

Every backend (``memory``, ``ics``, ``vdir``, ``google``, ``outlook``, ``caldav``) implements
:class:`CalendarConnector`; every way of sending mail implements :class:`MailTransport`.
The values they exchange live in :mod:`worker.model`, the one module of ``worker`` that
connectors import (it has no imports of its own).

Glossary
--------
calendar ref
    :class:`~worker.model.CalendarRef`: which calendar, whose, and how to read its
    floating times. ``key`` is steadyhand's stable name for it in the store.
event id
    The provider's id of one occurrence, unique within its calendar. For iCalendar
    sources it is the UID, plus ``@`` and the RECURRENCE-ID in UTC for an instance.
etag
    The provider's version of one event (Google ``etag``, Graph ``changeKey``, a vdir
    file's mtime and size). A write that names an etag fails if the event changed.
sync state
    :class:`~worker.model.SyncState`: what the connector needs to read only what
    changed next time (a sync token, a delta link, HTTP validators, a file digest).
window
    The time range steadyhand keeps in its store: ``sync.past`` before now to
    ``sync.future`` after. Recurring series are expanded inside it.
block tag
    How steadyhand marks an event as its own: ``X-STEADYHAND-BLOCK:<block id>`` in
    iCalendar, ``extendedProperties.private.steadyhand`` on Google, a
    ``singleValueExtendedProperty`` named ``steadyhand`` on Graph. A connector only
    ever updates or deletes events that carry it.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

from worker.model import Applied, BlockChange, CalendarRef, SyncResult, SyncState, TimeRange

BLOCK_PROPERTY = "X-STEADYHAND-BLOCK"


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


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """A provider account from ``accounts:`` in the config, typed, paths made absolute.

    Account connectors (google, outlook, caldav) are built as
    ``cls(spec, token_store=…)``; secrets are never here, only the names of the
    environment variables that hold them (``*_env``).
    """

    name: str
    kind: str
    auth: str | None = None
    client_secrets: Path | None = None
    key_file: Path | None = None
    token_env: str | None = None
    api_endpoint: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    graph_endpoint: str | None = None
    url: str | None = None
    username: str | None = None
    password_env: str | None = None


@runtime_checkable
class CalendarConnector(Protocol):
    """Reads a calendar and writes steadyhand's own blocks on it (docs/contract.md)."""

    kind: str
    read_only: bool

    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        """Read what changed in ``window`` since ``state`` (everything when it is None).

        Raises :class:`CalendarUnreadable` for a source the user must fix,
        :class:`TransientError` for one worth retrying.
        """
        ...

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        """Create, move or delete steadyhand-owned blocks. Raises :class:`ReadOnlyCalendar`
        on a read-only calendar and :class:`NotOwned` for a change aimed at an untagged event."""
        ...


class BatchSync(Protocol):
    """Optional: connectors that can sync many calendars in few requests (Google's batch
    endpoint, Graph's ``$batch``) offer this; the caller falls back to :meth:`sync`.
    Each result is a SyncResult or the exception that calendar's sync raised."""

    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]: ...


class ParallelReads(Protocol):
    """Optional: how many of this connector's calendars :func:`worker.syncing.sync` may
    read at once, each on a thread of its own (``sync.concurrency`` bounds all of them
    together). A connector without it has its calls made one at a time: the httplib2
    objects under google-api-python-client are not thread-safe, and Graph allows 4
    requests in flight per mailbox, which :class:`BatchSync` keeps within one call.
    A connector that offers it must be safe to call from several threads at once."""

    parallel_reads: int


@runtime_checkable
class MailTransport(Protocol):
    """Hands one finished message to a mail system."""

    name: str

    def send(self, message: EmailMessage) -> str:
        """Send ``message``; return the provider's id for it (or its Message-ID)."""
        ...
