"""Delta sync: one calendar's round through ``calendarView/delta``, driven alone or in ``$batch``.

``calendarView/delta`` for the window with ``Prefer: odata.maxpagesize=N,
outlook.timezone="UTC"``, following ``@odata.nextLink`` to the ``@odata.deltaLink``, which is
kept as :attr:`SyncState.token` (with the window: a new window starts a new round). Later
syncs start from the delta link; ``@removed`` rows become removed ids; an expired round
(410, ``syncStateNotFound``, ``resyncRequired``) restarts a full sync (``full=True``).
A link that does not point into ``graph_endpoint`` is never followed (the bearer token goes
only to Graph).

**The block tag.** Delta cannot ``$expand`` steadyhand's extended property, so a round keeps
a map *event id → block id* in :attr:`SyncState.fingerprint` (JSON). An event whose id is
not in the map but which is in the ``steadyhand`` category (all our blocks are) is read once
with ``GET /events/{id}?$expand=singleValueExtendedProperties(...)``: the property, not the
category, decides ownership. User events therefore never cost an extra request.

:func:`sync` drives one :class:`Round` request by request; :func:`sync_many` drives many
through ``$batch``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.outlook.graph import MAILBOX_CODES, MAX_BATCH, Graph, Reply
from connectors.outlook.mapping import CATEGORY, categories_of, event_from_graph, tag_of
from worker.core.errors import ConnectorError, PermanentError, TransientError
from worker.core.model import CalendarRef, Event, SyncResult, SyncState, TimeRange

logger = logging.getLogger(__name__)

RESTART_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


class Reader(Protocol):
    """What a round needs of the connector: its Graph client, its ``Prefer`` header and
    its paths (:class:`~connectors.outlook.calendar.OutlookCalendar` is one)."""

    graph: Graph
    prefer: dict[str, str]

    def first_delta(self, cal: CalendarRef, window: TimeRange) -> str: ...

    def event_path(self, cal: CalendarRef, event_id: str, *, tag: bool = False) -> str: ...


def load_blocks(state: SyncState | None) -> dict[str, str]:
    """The map *event id → block id* kept in ``state``'s fingerprint."""
    if state is None or not state.fingerprint:
        return {}
    try:
        data = json.loads(state.fingerprint)
        blocks = data.get("blocks", {}) if isinstance(data, dict) else {}
        return {str(k): str(v) for k, v in blocks.items()}
    except (ValueError, AttributeError):
        return {}


def dump_blocks(blocks: Mapping[str, str]) -> str:
    """The fingerprint that keeps ``blocks`` (sorted, so it is stable)."""
    return json.dumps({"v": 1, "blocks": dict(sorted(blocks.items()))}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a sync round, relative to the Graph root."""

    key: str  # "delta" or the event id to read
    method: str
    path: str  # relative to the Graph root
    headers: Mapping[str, str]


@dataclass
class Round:
    """A calendar's sync: delta pages until the deltaLink, then GETs of the events whose
    tag must be read. Driven request by request (``sync``) or in batches (``sync_many``)."""

    conn: Reader
    cal: CalendarRef
    window: TimeRange
    blocks: dict[str, str]
    path: str
    full: bool
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    fetch: list[str] = field(default_factory=list)
    delta_link: str | None = None
    restarts: int = 0
    result: SyncResult | None = None

    @classmethod
    def start(
        cls, conn: Reader, cal: CalendarRef, window: TimeRange, state: SyncState | None
    ) -> Round:
        blocks = load_blocks(state)
        link = state.token if state is not None and state.window == window else None
        path = conn.graph.relative(link) if link else None
        if link and path is None:
            logger.warning("outlook sync %s: stored delta link is not under Graph", cal.key)
        return cls(conn, cal, window, blocks, path or conn.first_delta(cal, window), path is None)

    @property
    def mailbox(self) -> str:
        return self.cal.owner.strip().lower()

    @property
    def what(self) -> str:
        return f"sync of {self.cal.key}"

    def pending(self) -> list[Request]:
        if self.result is not None:
            return []
        if self.delta_link is None:
            return [Request("delta", "GET", self.path, self.conn.prefer)]
        return [
            Request(i, "GET", self.conn.event_path(self.cal, i, tag=True), self.conn.prefer)
            for i in self.fetch
        ]

    def take(self, request: Request, reply: Reply) -> None:
        if request.key == "delta":
            self._take_page(reply)
        else:
            self._take_event(request.key, reply)
        if self.delta_link is not None and not self.fetch and self.result is None:
            self._finish()

    def _take_page(self, reply: Reply) -> None:
        if reply.status == 410 or reply.error_code.casefold() in RESTART_CODES:
            if self.restarts >= 2:
                raise TransientError(
                    f"{self.conn.graph.auth.prefix()}: {self.what}: the delta round expired "
                    "again right after a restart"
                )
            logger.info(
                "outlook sync %s: delta expired (%s); full sync", self.cal.key, reply.status
            )
            self.restarts += 1
            self.full = True
            self.raw.clear()
            self.removed.clear()
            self.path = self.conn.first_delta(self.cal, self.window)
            return
        if reply.status == 404 and reply.error_code.casefold() not in MAILBOX_CODES:
            raise PermanentError(
                f"{self.conn.graph.auth.prefix()}: {self.what}: {self.mailbox} has no calendar "
                f"{self.cal.location!r} (HTTP 404 {reply.error_code}) — use `primary` or the "
                "calendar's id from Graph (GET /me/calendars)"
            )
        if reply.status != 200 or not isinstance(reply.body, Mapping):
            raise self.conn.graph.error(reply, self.what, self.mailbox)
        for item in reply.body.get("value") or ():
            event_id = str(item.get("id", ""))
            if not event_id:
                continue
            if "@removed" in item:
                self.raw.pop(event_id, None)
                self.removed.add(event_id)
            else:
                merged = dict(self.raw.get(event_id, {}))
                merged.update(item)
                self.raw[event_id] = merged
                self.removed.discard(event_id)
        next_link = reply.body.get("@odata.nextLink")
        delta_link = reply.body.get("@odata.deltaLink")
        link = next_link or delta_link
        path = self.conn.graph.relative(str(link)) if link else None
        if path is None:
            raise PermanentError(
                f"{self.conn.graph.auth.prefix()}: {self.what}: Graph sent no usable "
                "nextLink or deltaLink (is graph_endpoint right?)"
            )
        if next_link:
            self.path = path
            return
        self.delta_link = str(delta_link)
        self.fetch = [
            i
            for i, raw in self.raw.items()
            if raw.get("type") != "seriesMaster"
            and (
                "start" not in raw
                or "end" not in raw
                or (i not in self.blocks and CATEGORY in categories_of(raw))
            )
        ]

    def _take_event(self, event_id: str, reply: Reply) -> None:
        if reply.status == 404:
            self.raw.pop(event_id, None)
            self.removed.add(event_id)
        elif reply.status == 200 and isinstance(reply.body, Mapping):
            self.raw[event_id] = dict(reply.body)
            tag = tag_of(reply.body)
            if tag:
                self.blocks[event_id] = tag
            else:
                self.blocks.pop(event_id, None)
        else:
            raise self.conn.graph.error(reply, f"{self.what} (event {event_id})", self.mailbox)
        self.fetch = [i for i in self.fetch if i != event_id]

    def _finish(self) -> None:
        events: list[Event] = []
        for event_id, raw in self.raw.items():
            try:
                event = event_from_graph(raw, self.cal, self.blocks.get(event_id))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("outlook sync %s: event %s skipped: %s", self.cal.key, event_id, exc)
                continue
            if event is None:
                continue
            if not (event.range.overlaps(self.window) or self.window.contains(event.start)):
                self.removed.add(event_id)
                continue
            events.append(event)
        seen = {e.id for e in events}
        if self.full:
            removed: tuple[str, ...] = ()
            self.blocks = {k: v for k, v in self.blocks.items() if k in seen}
        else:
            gone = self.removed - seen
            removed = tuple(sorted(gone))
            for event_id in gone:
                self.blocks.pop(event_id, None)
        state = SyncState(
            token=self.delta_link, window=self.window, fingerprint=dump_blocks(self.blocks)
        )
        logger.info(
            "outlook sync %s: %s, %d changed, %d removed",
            self.cal.key,
            "full" if self.full else "delta",
            len(events),
            len(removed),
        )
        self.result = SyncResult(
            events=tuple(events),
            removed=removed,
            state=state,
            full=self.full,
            unchanged=not self.full and not events and not removed,
        )


def sync(conn: Reader, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
    """One calendar's round, request by request."""
    job = Round.start(conn, cal, window, state)
    while job.result is None:
        for request in job.pending():
            reply = conn.graph.call(
                request.method,
                request.path,
                mailbox=job.mailbox,
                what=job.what,
                headers=request.headers,
                allow=(400, 404, 410),
            )
            job.take(request, reply)
    return job.result


def sync_many(
    conn: Reader, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
) -> list[SyncResult | Exception]:
    """Sync many calendars through ``$batch``: every round sends each unfinished
    calendar's next request, at most 20 to a batch (and at most
    ``max_concurrent_per_mailbox`` per mailbox in one batch). An incremental sync of N
    unchanged calendars is ⌈N/20⌉ requests (app-only: one token signs for every
    mailbox; with device_code each person's batch is signed by their own token)."""
    jobs = [Round.start(conn, cal, window, state) for cal, window, state in items]
    results: list[SyncResult | Exception | None] = [None] * len(jobs)
    throttled: dict[int, int] = {}
    while True:
        work = [
            (i, request)
            for i, job in enumerate(jobs)
            if results[i] is None
            for request in job.pending()
        ]
        if not work:
            break
        waits: list[float] = []
        for i, request, outcome in _run(conn, _pack(conn, jobs, work)):
            if results[i] is not None:
                continue
            if isinstance(outcome, Exception):
                results[i] = outcome
                continue
            if outcome.transient:
                count = throttled[i] = throttled.get(i, 0) + 1
                if count >= conn.graph.backoff.attempts:
                    results[i] = conn.graph.error(outcome, jobs[i].what, jobs[i].mailbox)
                else:
                    waits.append(
                        conn.graph.backoff.wait(count - 1, outcome.retry_after, conn.graph.rng)
                    )
                continue
            try:
                jobs[i].take(request, outcome)
            except ConnectorError as exc:
                results[i] = exc
        for i, job in enumerate(jobs):
            if results[i] is None and job.result is not None:
                results[i] = job.result
        if waits:
            wait = max(waits)
            logger.info("outlook batch: %d requests throttled; retry in %.1fs", len(waits), wait)
            conn.graph.sleep(wait)
    return [r if r is not None else TransientError("not synced") for r in results]


def _pack(
    conn: Reader, jobs: Sequence[Round], work: Sequence[tuple[int, Request]]
) -> list[list[tuple[int, Request, str]]]:
    """Batches of at most 20 items that one token signs, with at most
    ``max_concurrent_per_mailbox`` items of one mailbox each (first fit, order kept)."""
    limit = conn.graph.slots.limit
    batches: list[tuple[str, list[tuple[int, Request, str]], dict[str, int]]] = []
    for i, request in work:
        mailbox = jobs[i].mailbox
        identity = conn.graph.auth.identity(mailbox)
        for signer, members, counts in batches:
            if signer == identity and len(members) < MAX_BATCH and counts.get(mailbox, 0) < limit:
                members.append((i, request, mailbox))
                counts[mailbox] = counts.get(mailbox, 0) + 1
                break
        else:
            batches.append((identity, [(i, request, mailbox)], {mailbox: 1}))
    return [members for _, members, _ in batches]


def _run(
    conn: Reader, batches: Sequence[list[tuple[int, Request, str]]]
) -> list[tuple[int, Request, Reply | Exception]]:
    def one(members: list[tuple[int, Request, str]]) -> list[Any]:
        counts: dict[str, int] = {}
        for _, _, mailbox in members:
            counts[mailbox] = counts.get(mailbox, 0) + 1
        items = [
            {"id": str(n), "method": r.method, "url": r.path, "headers": dict(r.headers)}
            for n, (_, r, _) in enumerate(members)
        ]
        try:
            answers = conn.graph.batch(members[0][2], items, counts)
        except ConnectorError as exc:
            return [(i, request, exc) for i, request, _ in members]
        missing = Reply(503, {}, None)  # an item Graph did not answer: try it again
        return [(i, r, answers.get(str(n), missing)) for n, (i, r, _) in enumerate(members)]

    if len(batches) == 1:
        return list(one(batches[0]))
    out: list[tuple[int, Request, Reply | Exception]] = []
    with ThreadPoolExecutor(max_workers=min(4, len(batches))) as pool:
        for done in pool.map(one, batches):
            out.extend(done)
    return out
