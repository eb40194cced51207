"""The Outlook calendar connector: sync (through :mod:`connectors.outlook.delta`) and writes.

Writes
------
Create with a ``transactionId`` derived from the block id and slot (a retried create makes
one event: Graph answers the retry with the event it already made), move after comparing
``changeKey`` (a different one is a :class:`TransientError`: re-read and re-plan), delete
(404 counts as done). Only events that carry the tag are ever changed (:class:`NotOwned`).
:meth:`OutlookCalendar.decline_conflicts` defends focus blocks (Graph has no auto-decline).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import requests

from connectors._apply import apply_each
from connectors.base import AccountSpec
from connectors.outlook import delta
from connectors.outlook.auth import Auth
from connectors.outlook.graph import DEFAULT_BACKOFF, Graph
from connectors.outlook.mapping import (
    BLOCK_BODY,
    PENDING,
    TAG_PROPERTY,
    MailboxSettings,
    block_json,
    event_from_graph,
    mailbox_settings_from,
    tag_of,
    transaction_id,
)
from connectors.outlook.zones import iso_z
from connectors.retry import Backoff
from connectors.secrets import TokenStore
from worker.core.errors import NotOwned, TransientError
from worker.core.model import (
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    Event,
    SyncResult,
    SyncState,
    TimeRange,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # Prefer: odata.maxpagesize
DEFAULT_DECLINE_MESSAGE = (
    "This time is protected focus time. Could we find another slot? (declined by steadyhand)"
)


class OutlookCalendar:
    """Outlook / Microsoft 365 calendars through Microsoft Graph (docs/outlook.md)."""

    kind = "outlook"
    read_only = False

    def __init__(
        self,
        spec: AccountSpec,
        *,
        token_store: TokenStore | None = None,
        session: requests.Session | None = None,
        msal_http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_concurrent_per_mailbox: int = 4,
        authority: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.spec = spec
        self.auth = Auth(spec, token_store, msal_http_client, authority)
        self.graph = Graph(spec, self.auth, session, sleep, backoff, max_concurrent_per_mailbox)
        self.prefer = {"Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC"'}

    # -- paths ------------------------------------------------------------------------
    def _calendar(self, cal: CalendarRef) -> str:
        base = self.auth.base(cal.owner)
        if cal.location in ("", "primary"):
            return base
        return f"{base}/calendars/{quote(cal.location, safe='')}"

    def first_delta(self, cal: CalendarRef, window: TimeRange) -> str:
        query = urlencode({"startDateTime": iso_z(window.start), "endDateTime": iso_z(window.end)})
        return f"{self._calendar(cal)}/calendarView/delta?{query}"

    def event_path(self, cal: CalendarRef, event_id: str, *, tag: bool = False) -> str:
        path = f"{self.auth.base(cal.owner)}/events/{quote(event_id, safe='')}"
        if tag:
            expand = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY}')"
            path += "?" + urlencode({"$expand": expand}, quote_via=quote)
        return path

    # -- sync -------------------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        return delta.sync(self, cal, window, state)

    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]:
        """Sync many calendars through ``$batch`` (:func:`connectors.outlook.delta.sync_many`):
        an incremental sync of N unchanged calendars is ⌈N/20⌉ requests."""
        return delta.sync_many(self, items)

    # -- writes -----------------------------------------------------------------------
    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        return apply_each(
            changes,
            create=lambda change: self._create(cal, change),
            move=lambda change: self._move(cal, change),
            delete=lambda change: self._delete(cal, change),
            what=f"outlook apply {cal.key}",
            log=logger,
        )

    def _create(self, cal: CalendarRef, change: BlockChange) -> Applied:
        block = change.block
        body = block_json(block)
        body["transactionId"] = transaction_id(block, change.key)
        body["body"] = {"contentType": "text", "content": BLOCK_BODY.format(rule=block.rule)}
        reply = self.graph.call(
            "POST",
            f"{self._calendar(cal)}/events",
            mailbox=cal.owner,
            what=f"create of block {block.id} on {cal.key}",
            json=body,
        )
        event = reply.body if isinstance(reply.body, Mapping) else {}
        if not event.get("id"):
            raise TransientError(f"{self.auth.prefix()}: create of block {block.id}: no event id")
        return Applied(change, str(event["id"]), event.get("changeKey"))

    def _owned(self, cal: CalendarRef, change: BlockChange) -> dict[str, Any] | None:
        """The event ``change`` aims at, after checking our tag and its changeKey;
        None when it is gone."""
        event_id = change.event_id or self._find(cal, change.block.id)
        if event_id is None:
            return None
        reply = self.graph.call(
            "GET",
            self.event_path(cal, event_id, tag=True),
            mailbox=cal.owner,
            what=f"read of event {event_id} on {cal.key}",
            headers=self.prefer,
            allow=(404,),
        )
        if reply.status == 404 or not isinstance(reply.body, Mapping):
            return None
        if tag_of(reply.body) is None:
            raise NotOwned(
                f"{cal.key}: event {event_id} does not carry steadyhand's tag "
                f"(extended property {TAG_PROPERTY!r}); steadyhand changes only its own blocks"
            )
        current = reply.body.get("changeKey")
        if change.etag is not None and current is not None and current != change.etag:
            raise TransientError(
                f"{cal.key}: event {event_id} changed since it was read (changeKey differs); "
                "sync and plan again"
            )
        return dict(reply.body)

    def _find(self, cal: CalendarRef, block_id: str) -> str | None:
        """The event carrying block ``block_id`` (for a change without an event id)."""
        escaped = block_id.replace("'", "''")
        query = urlencode(
            {
                "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_PROPERTY}' "
                f"and ep/value eq '{escaped}')",
                "$select": "id",
            },
            quote_via=quote,
        )
        reply = self.graph.call(
            "GET",
            f"{self._calendar(cal)}/events?{query}",
            mailbox=cal.owner,
            what=f"lookup of block {block_id} on {cal.key}",
        )
        found = reply.body.get("value") if isinstance(reply.body, Mapping) else None
        return str(found[0]["id"]) if found else None

    def _move(self, cal: CalendarRef, change: BlockChange) -> Applied:
        current = self._owned(cal, change)
        if current is None:
            raise TransientError(
                f"{cal.key}: the event of block {change.block.id} no longer exists "
                "(changed since it was read); sync and plan again"
            )
        event_id = str(current["id"])
        reply = self.graph.call(
            "PATCH",
            self.event_path(cal, event_id),
            mailbox=cal.owner,
            what=f"move of block {change.block.id} on {cal.key}",
            json=block_json(change.block, current.get("categories") or ()),
        )
        event = reply.body if isinstance(reply.body, Mapping) else {}
        return Applied(change, event_id, event.get("changeKey"))

    def _delete(self, cal: CalendarRef, change: BlockChange) -> Applied:
        current = self._owned(cal, change)
        if current is None:
            return Applied(change, change.event_id or change.block.id)  # already gone: done
        event_id = str(current["id"])
        self.graph.call(
            "DELETE",
            self.event_path(cal, event_id),
            mailbox=cal.owner,
            what=f"delete of block {change.block.id} on {cal.key}",
            allow=(404,),
        )
        return Applied(change, event_id)

    # -- defending focus blocks ---------------------------------------------------------
    def decline_conflicts(
        self, cal: CalendarRef, protected: Sequence[Block], message: str = DEFAULT_DECLINE_MESSAGE
    ) -> list[str]:
        """Decline the invitations that land in a protected block (Graph has no
        auto-decline). Only events the owner did not organize and has not answered
        (``none``/``notResponded``) are declined, with ``message``; free, all-day and
        cancelled events are left alone. Returns the declined event ids."""
        if not protected:
            return []
        ranges = [TimeRange(b.start, b.end) for b in protected]
        span = TimeRange(min(r.start for r in ranges), max(r.end for r in ranges))
        query = urlencode({"startDateTime": iso_z(span.start), "endDateTime": iso_z(span.end)})
        path: str | None = f"{self._calendar(cal)}/calendarView?{query}"
        declined: list[str] = []
        candidates: list[Event] = []
        while path is not None:
            reply = self.graph.call(
                "GET", path, mailbox=cal.owner, what=f"read of {cal.key}", headers=self.prefer
            )
            body = reply.body if isinstance(reply.body, Mapping) else {}
            for raw in body.get("value") or ():
                answer = str((raw.get("responseStatus") or {}).get("response") or "").casefold()
                if raw.get("isOrganizer") or answer not in PENDING or raw.get("isAllDay"):
                    continue
                if raw.get("isCancelled") or str(raw.get("showAs", "")).casefold() == "free":
                    continue
                try:
                    event = event_from_graph(raw, cal)
                except (ValueError, KeyError, TypeError):
                    continue
                if event is not None and any(event.range.overlaps(r) for r in ranges):
                    candidates.append(event)
            link = body.get("@odata.nextLink")
            path = self.graph.relative(str(link)) if link else None
        for event in candidates:
            reply = self.graph.call(
                "POST",
                f"{self.event_path(cal, event.id)}/decline",
                mailbox=cal.owner,
                what=f"decline of event {event.id} on {cal.key}",
                json={"comment": message, "sendResponse": True},
                allow=(404,),
            )
            if reply.status != 404:
                declined.append(event.id)
                logger.info("outlook %s: declined event %s in a protected block", cal.key, event.id)
        return declined

    # -- the person's Outlook settings ------------------------------------------------
    def mailbox_settings(self, email: str) -> MailboxSettings:
        """The mailbox's time zone and working hours (what ``MailboxSettings.Read`` is
        for): ``doctor`` and ``config check`` compare them with steadyhand.yaml."""
        reply = self.graph.call(
            "GET",
            f"{self.auth.base(email)}/mailboxSettings",
            mailbox=email,
            what=f"read of {email}'s mailbox settings",
        )
        return mailbox_settings_from(reply.body if isinstance(reply.body, Mapping) else {})

    # -- doctor -----------------------------------------------------------------------
    def token_health(self, email: str) -> tuple[str, str]:
        """``(status, detail)`` for ``steadyhand doctor``: status is one of ok, expired,
        revoked, missing, missing_scopes, error. It refreshes the token to find out."""
        return self.auth.health(email)
