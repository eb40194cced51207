"""The contract between steadyhand and the outside world, and its one exception tree.

Every backend (``memory``, ``ics``, ``vdir``, ``google``, ``outlook``, ``caldav``) implements
:class:`CalendarConnector`; every way of sending mail implements :class:`MailTransport`.
What a backend may offer beyond that is a Protocol of its own (:class:`BatchSync`,
:class:`ParallelReads`, :class:`Describes`, :class:`DeclinesConflicts`,
:class:`HasTokenHealth`, :class:`Closes`), asked with ``isinstance``.
The values they exchange live in :mod:`worker.core.model`, the one module of ``worker`` that
connectors import (it has no imports of its own).

Glossary
--------
calendar ref
    :class:`~worker.core.model.CalendarRef`: which calendar, whose, and how to read its
    floating times. ``key`` is steadyhand's stable name for it in the store.
event id
    The provider's id of one occurrence, unique within its calendar. For iCalendar
    sources it is the UID, plus ``@`` and the RECURRENCE-ID in UTC for an instance.
etag
    The provider's version of one event (Google ``etag``, Graph ``changeKey``, a vdir
    file's mtime and size). A write that names an etag fails if the event changed.
sync state
    :class:`~worker.core.model.SyncState`: what the connector needs to read only what
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
The one exception tree lives in :mod:`worker.core.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

from worker.core.model import (
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    SyncResult,
    SyncState,
    TimeRange,
)

BLOCK_PROPERTY = "X-STEADYHAND-BLOCK"


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


# -- optional capabilities ------------------------------------------------------------------
# A connector offers one by having the method; callers ask with ``isinstance(x, Protocol)``
# and fall back to the plain calls of CalendarConnector when it is absent.


@runtime_checkable
class BatchSync(Protocol):
    """Optional: connectors that can sync many calendars in few requests (Google's batch
    endpoint, Graph's ``$batch``) offer this; the caller falls back to :meth:`sync`.
    Each result is a SyncResult or the exception that calendar's sync raised."""

    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]: ...


@runtime_checkable
class ParallelReads(Protocol):
    """Optional: how many of this connector's calendars :func:`worker.cycle.sync.sync` may
    read at once, each on a thread of its own (``sync.concurrency`` bounds all of them
    together). A connector without it has its calls made one at a time: the httplib2
    objects under google-api-python-client are not thread-safe, and Graph allows 4
    requests in flight per mailbox, which :class:`BatchSync` keeps within one call.
    A connector that offers it must be safe to call from several threads at once."""

    parallel_reads: int


@runtime_checkable
class Describes(Protocol):
    """Optional: read one event's description now, without keeping it (ics, vdir). The
    follow-up email lists the commitments written in a 1:1's description; without it
    the list is empty for the person to fill in."""

    def describe(self, cal: CalendarRef, event_id: str) -> str | None: ...


@runtime_checkable
class DeclinesConflicts(Protocol):
    """Optional: decline the invitations that land inside ``protected`` blocks, with
    ``message``, for a provider that cannot auto-decline (Graph). Returns the declined
    event ids. Without it, ``defend: decline`` leaves invitations alone."""

    def decline_conflicts(
        self, cal: CalendarRef, protected: Sequence[Block], message: str
    ) -> list[str]: ...


@runtime_checkable
class HasTokenHealth(Protocol):
    """Optional: an account connector's ``(status, detail)`` for ``email``'s token, for
    ``steadyhand doctor`` (status ``ok``, ``expired``, ``revoked``, ``missing``,
    ``missing_scopes``, …; detail says what to do). Without it doctor lists no token."""

    def token_health(self, email: str) -> tuple[str, str]: ...


@runtime_checkable
class Closes(Protocol):
    """Optional: hang up the connections a connector or a transport holds; called when
    a cycle's batch is over and when the runtime closes."""

    def close(self) -> None: ...


@runtime_checkable
class MailTransport(Protocol):
    """Hands one finished message to a mail system."""

    name: str

    def send(self, message: EmailMessage) -> str:
        """Send ``message``; return the provider's id for it (or its Message-ID)."""
        ...
