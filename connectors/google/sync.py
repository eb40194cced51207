"""One Google calendar's sync in progress (:class:`SyncJob`): which ``events.list`` page to
ask for next, what came so far, and the :class:`~worker.core.model.SyncResult` its pages
make. :class:`~connectors.google.calendar.GoogleCalendar` sends the requests, one at a time
or in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from connectors.google.mapping import inside, rfc3339, to_event
from worker.core.errors import TransientError
from worker.core.model import CalendarRef, Event, SyncResult, SyncState, TimeRange

logger = logging.getLogger(__name__)

PAGE_SIZE = 2500  # Google's largest page


@dataclass
class SyncJob:
    """One calendar's sync in progress: which page to ask for next, what came so far."""

    cal: CalendarRef
    window: TimeRange
    full: bool
    token: str | None
    page: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    restarts: int = 0
    failures: int = 0
    outcome: SyncResult | Exception | None = None

    @classmethod
    def of(cls, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncJob:
        incremental = state is not None and state.token is not None and state.window == window
        return cls(cal, window, full=not incremental, token=state.token if state else None)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "calendarId": self.cal.location,
            "singleEvents": True,
            "showDeleted": True,
            "maxResults": PAGE_SIZE,
        }
        if self.full:
            params["timeMin"] = rfc3339(self.window.start)
            params["timeMax"] = rfc3339(self.window.end)
        else:
            params["syncToken"] = self.token
        if self.page:
            params["pageToken"] = self.page
        return params

    def restart(self, why: str) -> None:
        """The sync token expired (410): read the whole window again."""
        logger.info("google sync %s: %s; full resync", self.cal.key, why)
        self.full, self.token, self.page, self.items = True, None, None, []
        self.restarts += 1
        if self.restarts > 3:
            self.outcome = TransientError(
                f"google sync {self.cal.key}: Google kept asking for a full sync (HTTP 410)"
            )

    def take(self, page: Mapping[str, Any]) -> None:
        """One more page: the next to ask for, or the outcome when it was the last."""
        self.pages += 1
        self.items.extend(page.get("items") or ())
        if page.get("nextPageToken"):
            self.page = str(page["nextPageToken"])
            return
        self.outcome = self._result(page.get("nextSyncToken"))

    def _result(self, sync_token: Any) -> SyncResult:
        cal, window = self.cal, self.window
        tz = ZoneInfo(cal.timezone)
        events: dict[str, Event] = {}
        removed: dict[str, None] = {}
        for item in self.items:
            event_id = item.get("id")
            if not event_id:
                continue
            cancelled = item.get("status") == "cancelled"
            if cancelled and not self.full:
                events.pop(event_id, None)
                removed[event_id] = None
                continue
            if cancelled and not (item.get("start") and item.get("end")):
                events.pop(event_id, None)  # deleted: only its id is guaranteed
                continue
            try:
                event = to_event(item, cal, tz)
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("google sync %s: skipped event %s (%s)", cal.key, event_id, exc)
                continue
            if inside(event, window):
                events[event_id] = event
                removed.pop(event_id, None)
            else:
                events.pop(event_id, None)
                if not self.full:
                    removed[event_id] = None  # moved out of the window
        state = SyncState(token=str(sync_token) if sync_token else None, window=window)
        logger.info(
            "google sync %s: %s, %d events, %d removed, %d pages",
            cal.key,
            "full" if self.full else "incremental",
            len(events),
            len(removed),
            self.pages,
        )
        return SyncResult(
            events=tuple(events.values()),
            removed=tuple(removed),
            state=state,
            full=self.full,
            unchanged=not self.full and not self.items,
        )
