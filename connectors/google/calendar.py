"""Google Calendar (docs/contract.md, docs/google.md): :class:`GoogleCalendar` reads and
writes one person's calendars through their session (:mod:`connectors.google.api`).

Sync: ``events.list`` with ``singleEvents``, ``showDeleted`` and ``maxResults=2500``; a full
sync adds ``timeMin``/``timeMax`` (the window) and pages to ``nextSyncToken``; later syncs
send that ``syncToken`` and none of the parameters Google forbids beside it (``timeMin``,
``timeMax``, ``updatedMin``, ``q``, ``orderBy``, ``iCalUID``, ``*ExtendedProperty``). A 410
``fullSyncRequired`` starts over in full and reports ``full=True`` (the store wipes the
calendar). In an incremental sync every cancelled item is a removed id, and so is an
event that moved out of the window; a full sync skips deleted events and returns the
cancelled events that still carry their times as ``Status.CANCELLED`` (the core ignores
them). :meth:`GoogleCalendar.sync_many` sends the same requests through the batch endpoint,
at most 50 calls per HTTP request.

Writes touch only events tagged ``extendedProperties.private.steadyhand=<block id>``: a
create uses the event id :func:`~connectors.google.mapping.event_id_for` derives from the
block id, so a retried create meets 409 ``duplicate`` and adopts the event it made; moves
and deletes read the event first (untagged: :class:`~connectors.base.NotOwned`) and send
``If-Match`` with the etag (412: :class:`~connectors.base.TransientError`, read again and
plan again). Logs carry ids and counts, never a token.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]
from googleapiclient.http import BatchHttpRequest  # type: ignore[import-untyped]

from connectors._apply import apply_each
from connectors.base import AccountSpec
from connectors.google.api import (
    DEFAULT_BACKOFF,
    DEFAULT_ROOT,
    Answer,
    Api,
    Session,
    from_http_error,
    is_transient,
    permanent,
    transient,
)
from connectors.google.auth import SCOPE_CALENDAR, auth_error, connect, short
from connectors.google.health import token_health
from connectors.google.mapping import (
    TAG,
    event_body,
    event_id_for,
    matches,
    tag_of,
)
from connectors.google.sync import SyncJob
from connectors.retry import Backoff, retrying
from connectors.secrets import TokenStore
from worker.core.errors import ConnectorError, NotOwned, TransientError, UserError
from worker.core.model import (
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    SyncResult,
    SyncState,
    TimeRange,
)

# `steadyhand connect` finds the sign-in flow in the module of the calendar class.
__all__ = ["BATCH_LIMIT", "GoogleCalendar", "connect"]
logger = logging.getLogger(__name__)

BATCH_LIMIT = 50  # Google Calendar's limit of calls in one batch request


class GoogleCalendar(Api):
    """Google Calendar (docs/contract.md): ``cal.location`` is the calendar id (``primary`` or
    an id from the calendar's settings), ``cal.owner`` the person whose credentials read it.
    """

    kind = "google"
    read_only = False

    def __init__(
        self,
        spec: AccountSpec,
        *,
        token_store: TokenStore | None = None,
        http: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(spec, token_store, http, sleep, backoff)
        #: People (emails) whose Google account refused a focusTime event (HTTP 400):
        #: their focus blocks are default tagged events for the rest of the process.
        self.focus_time_refused: set[str] = set()

    @property
    def batch_uri(self) -> str:
        return f"{self.root or DEFAULT_ROOT}batch/calendar/v3"

    # -- sync ------------------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        job = SyncJob.of(cal, window, state)
        session = self._session(cal.owner)
        what = f"google sync {cal.key}: events.list"
        while job.outcome is None:
            request = functools.partial(session.service.events().list, **job.params())
            try:
                page = self._run(
                    request,
                    what,
                    session,
                    expect=(410,),
                    calendar=cal.location,
                )
            except Answer as answer:
                job.restart(f"HTTP 410 {answer.reason}")
                continue
            job.take(page)
        if isinstance(job.outcome, Exception):
            raise job.outcome
        return job.outcome

    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]:
        """Sync many calendars through Google's batch endpoint: each round sends every
        unfinished calendar's next page, at most 50 calls per HTTP request. An error of
        one calendar is its result; the others go on."""
        jobs = [SyncJob.of(cal, window, state) for cal, window, state in items]
        sessions: dict[str, Session] = {}
        for job in jobs:
            owner = job.cal.owner.strip().lower()
            if owner in sessions:
                continue
            try:
                sessions[owner] = self._session(owner)
            except (ConnectorError, UserError) as exc:
                for other in jobs:
                    if other.cal.owner.strip().lower() == owner:
                        other.outcome = exc
        rounds = 0
        while pending := [j for j in jobs if j.outcome is None]:
            rounds += 1
            wait = 0.0
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                wait = max(wait, self._batch_round(chunk, sessions))
            if wait and any(j.outcome is None for j in jobs):
                self.sleep(wait)
        logger.info("google sync_many: %d calendars in %d rounds", len(jobs), rounds)
        for session in sessions.values():
            self._save(session)
        return [j.outcome if j.outcome is not None else _never() for j in jobs]

    def _batch_round(self, chunk: list[SyncJob], sessions: dict[str, Session]) -> float:
        """Send each job's next request in one batch; return how long to wait before the
        next round (0 unless an item failed transiently)."""
        what = f"google sync_many: batch of {len(chunk)}"
        answers: dict[str, tuple[Any, Any]] = {}

        def send() -> None:
            answers.clear()
            batch = BatchHttpRequest(batch_uri=self.batch_uri)
            for i, job in enumerate(chunk):
                service = sessions[job.cal.owner.strip().lower()].service
                batch.add(
                    service.events().list(**job.params()),
                    callback=lambda rid, resp, exc: answers.__setitem__(rid, (resp, exc)),
                    request_id=str(i),
                )
            try:
                batch.execute()
            except HttpError as exc:
                answer = from_http_error(exc)
                if is_transient(answer):
                    raise transient(answer, what) from None
                raise answer from None
            except RefreshError as exc:
                raise auth_error(exc, what, chunk[0].cal.owner) from None
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                raise TransientError(f"{what}: cannot reach Google ({short(exc)})") from None

        try:
            retrying(send, what, self.backoff, self.sleep)
        except (Answer, ConnectorError) as exc:
            error: Exception = exc
            if isinstance(exc, Answer):
                error = permanent(exc, what, chunk[0].cal.owner, None)
            for job in chunk:
                job.outcome = error
            return 0.0
        wait = 0.0
        for i, job in enumerate(chunk):
            page, failed = answers.get(str(i), (None, None))
            if failed is None and page is not None:
                job.failures = 0
                job.take(page)
                continue
            answer = (
                from_http_error(failed) if failed is not None else Answer(500, "noAnswer", "", None)
            )
            job_what = f"google sync {job.cal.key}: events.list"
            if answer.status == 410:
                job.restart(f"HTTP 410 {answer.reason}")
            elif is_transient(answer):
                job.failures += 1
                if job.failures >= self.backoff.attempts:
                    job.outcome = transient(answer, job_what)
                else:
                    wait = max(
                        wait, self.backoff.wait(job.failures - 1, answer.retry_after, random.random)
                    )
            else:
                job.outcome = permanent(answer, job_what, job.cal.owner, job.cal.location)
        return wait

    # -- writes ----------------------------------------------------------------------
    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        session = self._session(cal.owner)
        return apply_each(
            changes,
            create=lambda change: self._create(session, cal, change),
            move=lambda change: self._move(session, cal, change),
            delete=lambda change: self._delete(session, cal, change),
            what=f"google apply {cal.key}",
            log=logger,
        )

    def wants_focus_time(self, cal: CalendarRef, block: Block) -> bool:
        """A focus block on the person's primary calendar becomes a ``focusTime`` event
        that declines new conflicting invitations, unless their account refused one."""
        primary = cal.location == "primary" or cal.location.lower() == cal.owner.lower()
        return (
            block.rule == "focus"
            and primary
            and cal.owner.strip().lower() not in self.focus_time_refused
        )

    def _create(self, session: Session, cal: CalendarRef, change: BlockChange) -> Applied:
        block = change.block
        event_id = event_id_for(block.id)
        focus = self.wants_focus_time(cal, block)
        body = {"id": event_id, **event_body(block, cal, focus)}
        what = f"google apply {cal.key}: events.insert {event_id}"
        service = session.service
        try:
            item = self._run(
                lambda: service.events().insert(calendarId=cal.location, body=body),
                what,
                session,
                expect=(409, 400) if focus else (409,),
                calendar=cal.location,
            )
        except Answer as answer:
            if answer.status == 400:
                self.focus_time_refused.add(cal.owner.strip().lower())
                logger.warning(
                    "google apply %s: focusTime refused (%s); focus blocks of %s are default "
                    "events from now on",
                    cal.key,
                    answer.reason,
                    cal.owner,
                )
                return self._create(session, cal, change)
            return self._adopt(session, cal, change, event_id, focus)
        return Applied(change, str(item["id"]), item.get("etag"))

    def _adopt(
        self, session: Session, cal: CalendarRef, change: BlockChange, event_id: str, focus: bool
    ) -> Applied:
        """A create met 409 ``duplicate``: the event with our id exists, most likely made
        by an earlier attempt whose answer was lost. Ours: bring it to the block, done."""
        block = change.block
        current = self._get(session, cal, event_id)
        if current is None:
            raise TransientError(
                f"google apply {cal.key}: event {event_id} exists and vanished; try again"
            )
        cancelled = current.get("status") == "cancelled"
        tag = tag_of(current)
        if tag != block.id and not (cancelled and tag is None):
            raise NotOwned(
                f"{cal.location}: event {event_id} exists and is not steadyhand's block "
                f"{block.id}; steadyhand changes only its own blocks"
            )
        if not cancelled and matches(current, block, cal):
            return Applied(change, event_id, current.get("etag"))
        body = event_body(block, cal, focus and current.get("eventType") == "focusTime")
        body.pop("eventType", None)  # an event's type cannot change
        body["status"] = "confirmed"  # undeletes an event deleted by hand
        item = self._write(session, cal, event_id, body, current.get("etag"), "patch")
        return Applied(change, event_id, item.get("etag"))

    def _move(self, session: Session, cal: CalendarRef, change: BlockChange) -> Applied:
        event_id = change.event_id or event_id_for(change.block.id)
        current = self._owned(session, cal, event_id)
        if current is None or current.get("status") == "cancelled":
            raise TransientError(
                f"google apply {cal.key}: event {event_id} no longer exists (changed since it "
                "was read); read the calendar again and plan again"
            )
        body = event_body(change.block, cal, current.get("eventType") == "focusTime")
        body.pop("eventType", None)
        etag = change.etag or current.get("etag")
        item = self._write(session, cal, event_id, body, etag, "patch")
        return Applied(change, event_id, item.get("etag"))

    def _delete(self, session: Session, cal: CalendarRef, change: BlockChange) -> Applied:
        event_id = change.event_id or event_id_for(change.block.id)
        current = self._owned(session, cal, event_id)
        if current is None or current.get("status") == "cancelled":
            return Applied(change, event_id)  # already gone: done
        etag = change.etag or current.get("etag")
        what = f"google apply {cal.key}: events.delete {event_id}"
        service = session.service

        def request() -> Any:
            req = service.events().delete(calendarId=cal.location, eventId=event_id)
            if etag:
                req.headers["If-Match"] = etag
            return req

        try:
            self._run(request, what, session, expect=(404, 410, 412), calendar=cal.location)
        except Answer as answer:
            if answer.status == 412:
                raise _stale(cal, event_id) from None
        return Applied(change, event_id)

    def _get(self, session: Session, cal: CalendarRef, event_id: str) -> dict[str, Any] | None:
        """The event ``event_id`` (deleted ones too, as Google returns them), or None."""
        what = f"google apply {cal.key}: events.get {event_id}"
        service = session.service
        try:
            item: dict[str, Any] = self._run(
                lambda: service.events().get(calendarId=cal.location, eventId=event_id),
                what,
                session,
                expect=(404, 410),
                calendar=cal.location,
            )
        except Answer:
            return None
        return item

    def _owned(self, session: Session, cal: CalendarRef, event_id: str) -> dict[str, Any] | None:
        current = self._get(session, cal, event_id)
        if current is not None and tag_of(current) is None and current.get("status") != "cancelled":
            raise NotOwned(
                f"{cal.location}: event {event_id} does not carry "
                f"extendedProperties.private.{TAG}; steadyhand changes only its own blocks"
            )
        return current

    def _write(
        self,
        session: Session,
        cal: CalendarRef,
        event_id: str,
        body: dict[str, Any],
        etag: str | None,
        method: str,
    ) -> dict[str, Any]:
        what = f"google apply {cal.key}: events.{method} {event_id}"
        service = session.service

        def request() -> Any:
            req = getattr(service.events(), method)(
                calendarId=cal.location, eventId=event_id, body=body
            )
            if etag:
                req.headers["If-Match"] = etag
            return req

        try:
            item: dict[str, Any] = self._run(
                request, what, session, expect=(404, 410, 412), calendar=cal.location
            )
        except Answer:
            raise _stale(cal, event_id) from None
        return item

    # -- doctor ----------------------------------------------------------------------
    def token_health(
        self, email: str, scopes: Sequence[str] = (SCOPE_CALENDAR,)
    ) -> tuple[str, str]:
        """The health of ``email``'s credentials for ``steadyhand doctor``: a status in
        ``ok``, ``expired``, ``revoked``, ``missing``, ``missing_scopes``,
        ``testing_app_7_day_expiry``, ``error``, and one line saying what to do."""
        try:
            return token_health(self, email.strip().lower(), tuple(scopes))
        except UserError as exc:
            return "error", str(exc).splitlines()[0]
        except (ValueError, TypeError, KeyError) as exc:
            return "error", (
                f"the stored token is damaged ({short(exc)}): "
                f"run: steadyhand connect google --person {email.strip().lower()}"
            )
        except (ConnectorError, GoogleAuthError, OSError, httplib2.HttpLib2Error) as exc:
            return "error", short(exc)


def _never() -> Exception:  # pragma: no cover - every job ends with an outcome
    return TransientError("google sync_many: a calendar got no answer")


def _stale(cal: CalendarRef, event_id: str) -> TransientError:
    return TransientError(
        f"google apply {cal.key}: event {event_id} changed since it was read (HTTP 412); "
        "read the calendar again and plan again"
    )
