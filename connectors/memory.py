"""In-memory calendar and mail transport: real backends, shipped, used by tests and the demo.

:class:`MemoryCalendar` keeps calendars as dicts of events and honours the whole
contract (sync tokens, etags, block tags), so a test that passes against it says
something about the code under test, not about a mock.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from email.message import EmailMessage

from worker.core.errors import NotOwned
from worker.core.model import (
    Applied,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    SyncResult,
    SyncState,
    TimeRange,
)

logger = logging.getLogger(__name__)


class MemoryCalendar:
    """Calendars held in memory, keyed by ``CalendarRef.location``.

    Every change bumps a global version; the sync token is the version last seen, so
    an incremental sync returns exactly what changed since.
    """

    kind = "memory"
    read_only = False

    def __init__(self, calendars: dict[str, Iterable[Event]] | None = None) -> None:
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._version = 0
        self._events: dict[str, dict[str, tuple[int, Event]]] = {}
        self._removed: dict[str, dict[str, int]] = {}
        for location, events in (calendars or {}).items():
            for event in events:
                self.put(location, event)

    # -- direct manipulation (what a user does in their calendar app) --------------
    def put(self, location: str, event: Event) -> Event:
        with self._lock:
            self._version = next(self._clock)
            stored = replace(event, calendar_id=location, etag=f'"{self._version}"')
            self._events.setdefault(location, {})[event.id] = (self._version, stored)
            self._removed.setdefault(location, {}).pop(event.id, None)
            return stored

    def remove(self, location: str, event_id: str) -> None:
        with self._lock:
            self._version = next(self._clock)
            self._events.get(location, {}).pop(event_id, None)
            self._removed.setdefault(location, {})[event_id] = self._version

    def events(self, location: str) -> list[Event]:
        with self._lock:
            return [e for _, e in self._events.get(location, {}).values()]

    # -- the contract --------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        with self._lock:
            since = int(state.token) if state and state.token and state.window == window else 0
            events = self._events.get(cal.location, {})
            changed = tuple(e for v, e in events.values() if v > since and e.range.overlaps(window))
            removed = tuple(
                i for i, v in self._removed.get(cal.location, {}).items() if since and v > since
            )
            new_state = SyncState(token=str(self._version), window=window)
        logger.info("memory sync %s: %d changed, %d removed", cal.key, len(changed), len(removed))
        return SyncResult(
            events=changed,
            removed=removed,
            state=new_state,
            full=since == 0,
            unchanged=since > 0 and not changed and not removed,
        )

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        done = []
        for change in changes:
            current = self._owned(cal.location, change)
            block = change.block
            if change.kind is ChangeKind.DELETE:
                if current is not None:
                    self.remove(cal.location, current.id)
                done.append(Applied(change, change.event_id or block.id))
                continue
            event_id = change.event_id or f"steadyhand-{block.id}"
            stored = self.put(
                cal.location,
                Event(
                    id=event_id,
                    calendar_id=cal.location,
                    start=block.start,
                    end=block.end,
                    transparency=block.transparency,
                    owned_block_id=block.id,
                    title=block.title,
                ),
            )
            done.append(Applied(change, stored.id, stored.etag))
        return done

    def _owned(self, location: str, change: BlockChange) -> Event | None:
        if change.event_id is None:
            return None
        with self._lock:
            found = self._events.get(location, {}).get(change.event_id)
        if found is None:
            return None
        event = found[1]
        if event.owned_block_id is None:
            raise NotOwned(f"event {change.event_id} on {location} is not steadyhand's")
        return event


class RecordingTransport:
    """A mail transport that keeps what it was given, in order."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> str:
        self.sent.append(message)
        return str(message.get("Message-ID", f"<memory-{len(self.sent)}>"))
