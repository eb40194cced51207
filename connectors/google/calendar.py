"""Google Calendar and Gmail through google-api-python-client (docs/contract.md, docs/google.md).

The only module of steadyhand that imports ``googleapiclient``, ``google.auth`` and
``google_auth_oauthlib``. Discovery documents are the ones bundled with the client
(``static_discovery=True``), so building a service never touches the network.

Credentials, per person (``CalendarRef.owner``) of an ``accounts:`` entry:

``auth: oauth``
    :func:`connect` runs the installed-app flow once per person and keeps the
    credentials, Fernet-encrypted, in the :class:`~connectors.secrets.TokenStore` under
    ``google:<account>:<email>``; they are refreshed when due and saved back.
``auth: service_account``
    ``key_file`` with domain-wide delegation: each person is impersonated (``subject``).
``auth: access_token``
    A bearer token kept fresh by something else, read from the variable ``token_env``.

``api_endpoint`` replaces the API root (``https://www.googleapis.com/``): the calendar is
served under ``<root>calendar/v3/``, its batch endpoint at ``<root>batch/calendar/v3`` and
Gmail under ``<root>gmail/v1/``. (The client's own ``api_endpoint`` option replaces the
root *and* the service path, and its ``new_batch_http_request`` ignores it, so both are
composed here.)

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
create uses the event id :func:`event_id_for` derives from the block id, so a retried
create meets 409 ``duplicate`` and adopts the event it made; moves and deletes read the
event first (untagged: :class:`~connectors.base.NotOwned`) and send ``If-Match`` with the
etag (412: :class:`~connectors.base.TransientError`, read again and plan again).

Errors: 429, 5xx and 403 ``rateLimitExceeded``/``userRateLimitExceeded`` are transient and
retried by :func:`connectors.retry.retrying`; ``quotaExceeded``, a 401 after a refresh, a
missing calendar and other refusals raise :class:`~connectors.base.PermanentError` with a
one-line message. Logs carry ids and counts, never a token.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import random
import re
import threading
import time
import webbrowser
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]
from googleapiclient.http import BatchHttpRequest  # type: ignore[import-untyped]

from connectors.base import AccountSpec
from connectors.retry import Backoff, retrying
from connectors.secrets import TokenStore, guard_library_logs, redact
from worker.core.errors import (
    ConfigError,
    ConnectorError,
    NotOwned,
    PermanentError,
    Problem,
    TransientError,
    UserError,
)
from worker.core.model import (
    UTC,
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    EventType,
    Response,
    Status,
    SyncResult,
    SyncState,
    TimeRange,
    Transparency,
    details_digest,
    wall_time,
)

logger = logging.getLogger(__name__)
# google-auth's constructors are untyped: use them through Any.
_UserCredentials: Any = oauth_credentials.Credentials
_ServiceCredentials: Any = service_account.Credentials

#: Read and write events on the calendars the person can reach (not their settings,
#: ACLs or calendar list): sync, book and defend blocks.
SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar.events"
#: Send mail as the person, nothing else (no reading, no drafts): the gmail transport.
SCOPE_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SCOPES = (SCOPE_CALENDAR, SCOPE_GMAIL_SEND)

DEFAULT_ROOT = "https://www.googleapis.com/"
DEFAULT_BACKOFF = Backoff()
TAG = "steadyhand"
PAGE_SIZE = 2500  # Google's largest page
BATCH_LIMIT = 50  # Google Calendar's limit of calls in one batch request
FOCUS_TIME_PROPERTIES = {
    "autoDeclineMode": "declineOnlyNewConflictingInvitations",
    "chatStatus": "doNotDisturb",
}
_RATE_LIMITS = {"rateLimitExceeded", "userRateLimitExceeded"}
_QUOTA = {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"}
_EVENT_ID = re.compile(r"[0-9a-v]{5,1024}")
_EVENT_TYPES = {
    "focusTime": EventType.FOCUS,
    "outOfOffice": EventType.OUT_OF_OFFICE,
    "workingLocation": EventType.WORKING_LOCATION,
}
_RESPONSES = {
    "accepted": Response.ACCEPTED,
    "tentative": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "needsAction": Response.NEEDS_ACTION,
}
_STATUSES = {"confirmed": Status.CONFIRMED, "tentative": Status.TENTATIVE}

# The libraries this module drives log request lines, bodies and token responses at DEBUG
# (the OAuth redirect carries the one-time code, requests-oauthlib logs the PKCE verifier
# and the token it got): their own loggers redact, whatever handler the application installs.
guard_library_logs()


def event_id_for(block_id: str) -> str:
    """The Google event id of a block: the block id itself when Google accepts it (26
    characters of base32hex, as :func:`worker.core.planning.block_id` makes them), else
    ``sh`` + the base32hex of its UTF-8 (Google takes ``[a-v0-9]{5,1024}``)."""
    if _EVENT_ID.fullmatch(block_id):
        return block_id
    return "sh" + base64.b32hexencode(block_id.encode("utf-8")).decode("ascii").rstrip("=").lower()


def token_name(spec: AccountSpec, email: str) -> str:
    """Where the OAuth credentials of ``email`` live in the token store."""
    return f"google:{spec.name}:{email.strip().lower()}"


# -- errors ----------------------------------------------------------------------------
class _Answer(Exception):
    """Google answered with an error the caller may want to handle (409, 410, 412, …).

    Never escapes this module: :meth:`_Api._run` turns the ones the caller did not ask
    for into :class:`PermanentError`."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def _retry_after(value: Any) -> float | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _answer(status: int, content: Any, headers: Mapping[str, Any]) -> _Answer:
    reason, message = "", ""
    try:
        raw = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        data = json.loads(raw)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            errors = error.get("errors") or []
            if errors and isinstance(errors[0], dict):
                reason = str(errors[0].get("reason") or "")
            reason = reason or str(error.get("status") or "")
        elif isinstance(error, str):  # OAuth style: {"error": "invalid_grant"}
            reason = error
            message = str(data.get("error_description") or "")
    except (ValueError, AttributeError):
        pass
    message = " ".join(redact(message).split())[:300]
    return _Answer(status, reason, message, _retry_after(headers.get("retry-after")))


def _from_http_error(exc: Any) -> _Answer:
    return _answer(int(exc.resp.status), exc.content, exc.resp)


def _is_transient(answer: _Answer) -> bool:
    return (
        answer.status in (408, 429)
        or answer.status >= 500
        or (answer.status == 403 and answer.reason in _RATE_LIMITS)
    )


def _transient(answer: _Answer, what: str) -> TransientError:
    return TransientError(
        f"{what}: Google answered HTTP {answer.status} {answer.reason}".rstrip(),
        retry_after=answer.retry_after,
    )


def _permanent(answer: _Answer, what: str, email: str, calendar: str | None) -> PermanentError:
    detail = f"HTTP {answer.status} {answer.reason}".rstrip()
    if answer.status == 401:
        return PermanentError(
            f"{what}: Google rejected the credentials of {email} even after a refresh "
            f"({detail}) — connect again: steadyhand connect google --person {email}"
        )
    if answer.status == 403 and answer.reason in _QUOTA:
        return PermanentError(
            f"{what}: the Google Cloud project's Calendar API quota is used up ({detail}) — "
            "wait for the daily reset or ask for more quota in the Google Cloud console"
        )
    if answer.status == 403:
        return PermanentError(
            f"{what}: Google refused access for {email} ({detail}: {answer.message}) — check "
            "the calendar is shared with them with rights to make changes, and the scopes"
        )
    if answer.status == 404 and calendar is not None:
        return PermanentError(
            f"{what}: Google has no calendar {calendar!r} that {email} can reach ({detail}) — "
            "fix the calendar id in steadyhand.yaml (primary, or the id from the calendar's "
            "settings) or share the calendar with them"
        )
    text = f": {answer.message}" if answer.message else ""
    return PermanentError(f"{what}: Google answered {detail}{text}")


def _with_token_uri(creds: Any, token_uri: str) -> Any:
    """``creds`` refreshing at ``token_uri`` (the library's copy forgets the expiry)."""
    copy = creds.with_token_uri(token_uri)
    copy.expiry = creds.expiry
    return copy


def _auth_error(exc: Exception, what: str, email: str) -> ConnectorError:
    if isinstance(exc, TransportError) or getattr(exc, "retryable", False):
        return TransientError(f"{what}: Google's token endpoint failed ({_short(exc)})")
    return PermanentError(
        f"{what}: Google refused to refresh the credentials of {email} ({_short(exc)}) — "
        f"connect again: steadyhand connect google --person {email}"
    )


def _short(exc: BaseException) -> str:
    """One line about ``exc`` with anything secret-looking redacted."""
    first = exc.args[0] if exc.args else exc
    text = " ".join(redact(str(first)).split())
    return text[:200] or type(exc).__name__


# -- credentials -----------------------------------------------------------------------
def _http_factory(http: Any) -> Callable[[], Any]:
    """``http`` may be None (a new ``httplib2.Http`` per thread), an ``httplib2.Http``
    (used as is) or a callable returning one (called once per thread)."""
    if http is None:
        return lambda: httplib2.Http(timeout=60)
    if isinstance(http, httplib2.Http):
        return lambda: http
    if callable(http):
        return http  # type: ignore[no-any-return]
    raise TypeError(f"http must be an httplib2.Http or a callable making one, not {http!r}")


@dataclass
class _Session:
    """One person's credentials and built services, for one thread."""

    email: str
    credentials: Any
    http: Any  # the unauthorized httplib2.Http underneath
    authed: Any  # google_auth_httplib2.AuthorizedHttp
    service: Any
    saved_token: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class _Api:
    """What the calendar and Gmail clients share: credentials, sessions, calls."""

    api = ("calendar", "v3", "calendar/v3/")
    scopes: tuple[str, ...] = (SCOPE_CALENDAR,)

    def __init__(
        self,
        spec: AccountSpec,
        token_store: TokenStore | None,
        http: Any,
        sleep: Callable[[float], None],
        backoff: Backoff,
    ) -> None:
        if spec.auth not in (None, "oauth", "service_account", "access_token"):
            raise ConfigError(
                Problem(
                    f"account {spec.name}: auth {spec.auth!r} is not one Google takes",
                    "use auth: oauth, service_account or access_token",
                )
            )
        self.spec = spec
        self.auth = spec.auth or "oauth"
        self.token_store = token_store
        self.sleep = sleep
        self.backoff = backoff
        self._make_http = _http_factory(http)
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()
        self._local = threading.local()
        self.root = spec.api_endpoint.rstrip("/") + "/" if spec.api_endpoint else None

    def _new_http(self) -> Any:
        http = self._make_http()
        with self._opened_lock:
            self._opened.append(http)
        return http

    def close(self) -> None:
        """Close the connections this client opened (every thread's)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for http in opened:
            http.close()
        self._local = threading.local()

    # -- credentials ---------------------------------------------------------------
    def _credentials(self, email: str, http: Any) -> tuple[Any, dict[str, Any], str | None]:
        """Fresh credentials for ``email`` (refreshed when due), their stored metadata and
        the access token as stored (to know whether to save them back)."""
        what = f"google {self.spec.name}: credentials of {email}"
        meta: dict[str, Any] = {}
        if self.auth == "access_token":
            name = self.spec.token_env or ""
            token = os.environ.get(name, "") if name else ""
            if not token:
                raise PermanentError(
                    f"{what}: the variable {name or '(token_env unset)'} holding the access "
                    "token is not set — export it, or set token_env: in the account"
                )
            return _UserCredentials(token=token), meta, None
        if self.auth == "service_account":
            key = self.spec.key_file
            if key is None or not Path(key).is_file():
                raise PermanentError(
                    f"{what}: the service account key file {key} does not exist — set "
                    "key_file: to the JSON key downloaded from the Google Cloud console"
                )
            try:
                creds: Any = _ServiceCredentials.from_service_account_file(
                    str(key), scopes=list(self.scopes), subject=email
                )
            except (ValueError, KeyError) as exc:
                raise PermanentError(
                    f"{what}: {key} is not a service account key ({_short(exc)})"
                ) from None
        else:
            creds, meta = self._stored(email, what)
        loaded = creds.token
        if not creds.valid:
            try:
                creds.refresh(google_auth_httplib2.Request(http))
            except (GoogleAuthError, OSError, httplib2.HttpLib2Error) as exc:
                if isinstance(exc, RefreshError):
                    raise _auth_error(exc, what, email) from None
                raise TransientError(f"{what}: cannot reach Google ({_short(exc)})") from None
        return creds, meta, loaded

    def _stored(self, email: str, what: str) -> tuple[Any, dict[str, Any]]:
        if self.token_store is None:
            raise PermanentError(f"{what}: no token store to read the OAuth token from")
        data = self.token_store.load(token_name(self.spec, email))
        if data is None:
            raise PermanentError(
                f"{what}: not connected yet — run: steadyhand connect google --person {email}"
            )
        try:
            info = json.loads(data)
            creds = _UserCredentials.from_authorized_user_info(info)
        except (ValueError, TypeError) as exc:
            raise PermanentError(
                f"{what}: the stored token is damaged ({_short(exc)}) — connect again: "
                f"steadyhand connect google --person {email}"
            ) from None
        # from_authorized_user_info always points refreshes at Google's public endpoint;
        # the stored (encrypted, authenticated) token_uri is the one connect() was given.
        if info.get("token_uri"):
            creds = _with_token_uri(creds, info["token_uri"])
        meta = info.get("steadyhand") or {}
        return creds, meta if isinstance(meta, dict) else {}

    def _save(self, session: _Session) -> None:
        """Write refreshed OAuth credentials back (encrypted), keeping their metadata."""
        if self.auth != "oauth" or self.token_store is None:
            return
        token = session.credentials.token
        if token == session.saved_token:
            return
        info = json.loads(session.credentials.to_json())
        info["steadyhand"] = session.meta
        self.token_store.save(token_name(self.spec, session.email), json.dumps(info).encode())
        session.saved_token = token
        logger.info("google %s: saved refreshed credentials of %s", self.spec.name, session.email)

    # -- sessions --------------------------------------------------------------------
    def _base_url(self) -> str | None:
        return f"{self.root}{self.api[2]}" if self.root else None

    def _session(self, email: str) -> _Session:
        sessions: dict[str, _Session] | None = getattr(self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        key = email.strip().lower()
        found = sessions.get(key)
        if found is not None:
            if not found.credentials.valid:  # expired since: refresh before use
                try:
                    found.credentials.refresh(google_auth_httplib2.Request(found.http))
                except (GoogleAuthError, OSError, httplib2.HttpLib2Error) as exc:
                    what = f"google {self.spec.name}: credentials of {key}"
                    if isinstance(exc, RefreshError):
                        raise _auth_error(exc, what, key) from None
                    raise TransientError(f"{what}: cannot reach Google ({_short(exc)})") from None
                self._save(found)
            return found
        http = self._new_http()
        creds, meta, loaded = self._credentials(key, http)
        authed = google_auth_httplib2.AuthorizedHttp(creds, http=http, max_refresh_attempts=1)
        options = {"api_endpoint": self._base_url()} if self.root else None
        service = build(
            self.api[0],
            self.api[1],
            http=authed,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )
        session = _Session(key, creds, http, authed, service, saved_token=loaded, meta=meta)
        self._save(session)  # refreshed on load: keep the new access token
        sessions[key] = session
        return session

    def _run(
        self,
        request: Callable[[], Any],
        what: str,
        session: _Session,
        expect: Iterable[int] = (),
        calendar: str | None = None,
    ) -> Any:
        """Execute the request ``request()`` builds, retrying transient failures.

        Statuses in ``expect`` raise :class:`_Answer` for the caller; other errors raise
        :class:`PermanentError` (or the last :class:`TransientError`)."""
        expected = frozenset(expect)

        def once() -> Any:
            try:
                return request().execute(num_retries=0)
            except HttpError as exc:
                answer = _from_http_error(exc)
                if _is_transient(answer):
                    raise _transient(answer, what) from None
                raise answer from None
            except RefreshError as exc:
                raise _auth_error(exc, what, session.email) from None
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                raise TransientError(f"{what}: cannot reach Google ({_short(exc)})") from None

        try:
            return retrying(once, what, self.backoff, self.sleep)
        except _Answer as answer:
            if answer.status in expected:
                raise
            if _is_transient(answer):
                raise _transient(answer, what) from None
            raise _permanent(answer, what, session.email, calendar) from None
        finally:
            self._save(session)


# -- the calendar ----------------------------------------------------------------------
@dataclass
class _Job:
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
    def of(cls, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> _Job:
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
            params["timeMin"] = _rfc3339(self.window.start)
            params["timeMax"] = _rfc3339(self.window.end)
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


class GoogleCalendar(_Api):
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
        job = _Job.of(cal, window, state)
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
            except _Answer as answer:
                job.restart(f"HTTP 410 {answer.reason}")
                continue
            self._take(job, page)
        if isinstance(job.outcome, Exception):
            raise job.outcome
        return job.outcome

    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]:
        """Sync many calendars through Google's batch endpoint: each round sends every
        unfinished calendar's next page, at most 50 calls per HTTP request. An error of
        one calendar is its result; the others go on."""
        jobs = [_Job.of(cal, window, state) for cal, window, state in items]
        sessions: dict[str, _Session] = {}
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

    def _batch_round(self, chunk: list[_Job], sessions: dict[str, _Session]) -> float:
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
                answer = _from_http_error(exc)
                if _is_transient(answer):
                    raise _transient(answer, what) from None
                raise answer from None
            except RefreshError as exc:
                raise _auth_error(exc, what, chunk[0].cal.owner) from None
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                raise TransientError(f"{what}: cannot reach Google ({_short(exc)})") from None

        try:
            retrying(send, what, self.backoff, self.sleep)
        except (_Answer, ConnectorError) as exc:
            error: Exception = exc
            if isinstance(exc, _Answer):
                error = _permanent(exc, what, chunk[0].cal.owner, None)
            for job in chunk:
                job.outcome = error
            return 0.0
        wait = 0.0
        for i, job in enumerate(chunk):
            page, failed = answers.get(str(i), (None, None))
            if failed is None and page is not None:
                job.failures = 0
                self._take(job, page)
                continue
            answer = (
                _from_http_error(failed)
                if failed is not None
                else _Answer(500, "noAnswer", "", None)
            )
            job_what = f"google sync {job.cal.key}: events.list"
            if answer.status == 410:
                job.restart(f"HTTP 410 {answer.reason}")
            elif _is_transient(answer):
                job.failures += 1
                if job.failures >= self.backoff.attempts:
                    job.outcome = _transient(answer, job_what)
                else:
                    wait = max(
                        wait, self.backoff.wait(job.failures - 1, answer.retry_after, random.random)
                    )
            else:
                job.outcome = _permanent(answer, job_what, job.cal.owner, job.cal.location)
        return wait

    def _take(self, job: _Job, page: Mapping[str, Any]) -> None:
        job.pages += 1
        job.items.extend(page.get("items") or ())
        if page.get("nextPageToken"):
            job.page = str(page["nextPageToken"])
            return
        job.outcome = self._result(job, page.get("nextSyncToken"))

    def _result(self, job: _Job, sync_token: Any) -> SyncResult:
        cal, window = job.cal, job.window
        tz = ZoneInfo(cal.timezone)
        events: dict[str, Event] = {}
        removed: dict[str, None] = {}
        for item in job.items:
            event_id = item.get("id")
            if not event_id:
                continue
            cancelled = item.get("status") == "cancelled"
            if cancelled and not job.full:
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
            if _inside(event, window):
                events[event_id] = event
                removed.pop(event_id, None)
            else:
                events.pop(event_id, None)
                if not job.full:
                    removed[event_id] = None  # moved out of the window
        state = SyncState(token=str(sync_token) if sync_token else None, window=window)
        logger.info(
            "google sync %s: %s, %d events, %d removed, %d pages",
            cal.key,
            "full" if job.full else "incremental",
            len(events),
            len(removed),
            job.pages,
        )
        return SyncResult(
            events=tuple(events.values()),
            removed=tuple(removed),
            state=state,
            full=job.full,
            unchanged=not job.full and not job.items,
        )

    # -- writes ----------------------------------------------------------------------
    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        session = self._session(cal.owner)
        done = []
        for change in changes:
            if change.kind is ChangeKind.CREATE:
                applied = self._create(session, cal, change)
            elif change.kind is ChangeKind.MOVE:
                applied = self._move(session, cal, change)
            else:
                applied = self._delete(session, cal, change)
            logger.info(
                "google apply %s: %s block %s (event %s)",
                cal.key,
                change.kind.value,
                change.block.id,
                applied.event_id,
            )
            done.append(applied)
        return done

    def wants_focus_time(self, cal: CalendarRef, block: Block) -> bool:
        """A focus block on the person's primary calendar becomes a ``focusTime`` event
        that declines new conflicting invitations, unless their account refused one."""
        primary = cal.location == "primary" or cal.location.lower() == cal.owner.lower()
        return (
            block.rule == "focus"
            and primary
            and cal.owner.strip().lower() not in self.focus_time_refused
        )

    def _create(self, session: _Session, cal: CalendarRef, change: BlockChange) -> Applied:
        block = change.block
        event_id = event_id_for(block.id)
        focus = self.wants_focus_time(cal, block)
        body = {"id": event_id, **_body(block, cal, focus)}
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
        except _Answer as answer:
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
        self, session: _Session, cal: CalendarRef, change: BlockChange, event_id: str, focus: bool
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
        tag = _tag(current)
        if tag != block.id and not (cancelled and tag is None):
            raise NotOwned(
                f"{cal.location}: event {event_id} exists and is not steadyhand's block "
                f"{block.id}; steadyhand changes only its own blocks"
            )
        if not cancelled and _matches(current, block, cal):
            return Applied(change, event_id, current.get("etag"))
        body = _body(block, cal, focus and current.get("eventType") == "focusTime")
        body.pop("eventType", None)  # an event's type cannot change
        body["status"] = "confirmed"  # undeletes an event deleted by hand
        item = self._write(session, cal, event_id, body, current.get("etag"), "patch")
        return Applied(change, event_id, item.get("etag"))

    def _move(self, session: _Session, cal: CalendarRef, change: BlockChange) -> Applied:
        event_id = change.event_id or event_id_for(change.block.id)
        current = self._owned(session, cal, event_id)
        if current is None or current.get("status") == "cancelled":
            raise TransientError(
                f"google apply {cal.key}: event {event_id} no longer exists (changed since it "
                "was read); read the calendar again and plan again"
            )
        body = _body(change.block, cal, current.get("eventType") == "focusTime")
        body.pop("eventType", None)
        etag = change.etag or current.get("etag")
        item = self._write(session, cal, event_id, body, etag, "patch")
        return Applied(change, event_id, item.get("etag"))

    def _delete(self, session: _Session, cal: CalendarRef, change: BlockChange) -> Applied:
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
        except _Answer as answer:
            if answer.status == 412:
                raise _stale(cal, event_id) from None
        return Applied(change, event_id)

    def _get(self, session: _Session, cal: CalendarRef, event_id: str) -> dict[str, Any] | None:
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
        except _Answer:
            return None
        return item

    def _owned(self, session: _Session, cal: CalendarRef, event_id: str) -> dict[str, Any] | None:
        current = self._get(session, cal, event_id)
        if current is not None and _tag(current) is None and current.get("status") != "cancelled":
            raise NotOwned(
                f"{cal.location}: event {event_id} does not carry "
                f"extendedProperties.private.{TAG}; steadyhand changes only its own blocks"
            )
        return current

    def _write(
        self,
        session: _Session,
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
        except _Answer:
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
            return _health(self, email.strip().lower(), tuple(scopes))
        except UserError as exc:
            return "error", str(exc).splitlines()[0]
        except (ValueError, TypeError, KeyError) as exc:
            return "error", (
                f"the stored token is damaged ({_short(exc)}): "
                f"run: steadyhand connect google --person {email.strip().lower()}"
            )
        except (ConnectorError, GoogleAuthError, OSError, httplib2.HttpLib2Error) as exc:
            return "error", _short(exc)


def _never() -> Exception:  # pragma: no cover - every job ends with an outcome
    return TransientError("google sync_many: a calendar got no answer")


def _stale(cal: CalendarRef, event_id: str) -> TransientError:
    return TransientError(
        f"google apply {cal.key}: event {event_id} changed since it was read (HTTP 412); "
        "read the calendar again and plan again"
    )


def _health(api: GoogleCalendar, email: str, scopes: tuple[str, ...]) -> tuple[str, str]:
    http = api._new_http()
    try:
        return _check(api, email, scopes, http)
    finally:
        http.close()


def _check(api: GoogleCalendar, email: str, scopes: tuple[str, ...], http: Any) -> tuple[str, str]:
    connect_again = f"run: steadyhand connect google --person {email}"
    if api.auth == "access_token":
        name = api.spec.token_env or ""
        if not name or not os.environ.get(name):
            return "missing", f"the variable {name or '(token_env)'} holding the token is not set"
        session = api._session(email)
        try:
            session.service.events().list(calendarId="primary", maxResults=1).execute()
        except RefreshError:  # a 401, and a bare token cannot be refreshed
            return "expired", f"Google rejects the token in {name}: renew it where it is made"
        except HttpError as exc:
            answer = _from_http_error(exc)
            if answer.status == 401:
                return "expired", f"Google rejects the token in {name}: renew it where it is made"
            if answer.status == 403 and answer.reason in ("insufficientPermissions", "forbidden"):
                return "missing_scopes", f"the token in {name} lacks {', '.join(scopes)}"
            return "error", f"Google answered HTTP {answer.status} {answer.reason}"
        return "ok", f"the token in {name} works"
    if api.auth == "service_account":
        key = api.spec.key_file
        if key is None or not Path(key).is_file():
            return "missing", f"the service account key file {key} does not exist"
        creds: Any = _ServiceCredentials.from_service_account_file(
            str(key), scopes=list(scopes), subject=email
        )
        try:
            creds.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            text = _short(exc)
            if "unauthorized_client" in text:
                return "missing_scopes", (
                    f"domain-wide delegation does not grant {', '.join(scopes)} to client "
                    f"{creds.service_account_email}: add them in the Admin console"
                )
            return "error", text
        return "ok", f"impersonating {email} as {creds.service_account_email}"
    # oauth
    if api.token_store is None:
        return "missing", "no token store"
    data = api.token_store.load(token_name(api.spec, email))
    if data is None:
        return "missing", f"not connected: {connect_again}"
    info = json.loads(data)
    meta = info.get("steadyhand") or {}
    creds = _UserCredentials.from_authorized_user_info(info)
    if info.get("token_uri"):
        creds = _with_token_uri(creds, info["token_uri"])
    expires = meta.get("refresh_token_expires_at")
    limit = datetime.fromisoformat(expires) if expires else None
    if not creds.refresh_token:
        if creds.expired:
            return (
                "expired",
                f"the access token expired and there is no refresh token: {connect_again}",
            )
    else:
        try:
            creds.refresh(google_auth_httplib2.Request(http))
        except RefreshError as exc:
            if limit is not None and datetime.now(UTC) >= limit - timedelta(hours=1):
                return "testing_app_7_day_expiry", (
                    f"the refresh token expired on {limit:%Y-%m-%d}: the OAuth app is in "
                    f"Testing, where Google ends consent after 7 days — publish it, then "
                    f"{connect_again}"
                )
            if "invalid_grant" in _short(exc):
                return "revoked", f"Google says the token was expired or revoked: {connect_again}"
            return "error", _short(exc)
        granted = creds.granted_scopes or meta.get("granted_scopes")
        info = json.loads(creds.to_json())
        info["steadyhand"] = meta
        api.token_store.save(token_name(api.spec, email), json.dumps(info).encode())
        if granted:
            missing = [s for s in scopes if s not in set(granted)]
            if missing:
                return "missing_scopes", (
                    f"Google did not grant {', '.join(missing)}: {connect_again} and allow "
                    "every permission on the consent screen"
                )
    if limit is not None:
        return "testing_app_7_day_expiry", (
            f"works, but the refresh token ends on {limit:%Y-%m-%d %H:%M} UTC: the OAuth app "
            "is in Testing (7-day consent) — publish it to stop weekly reconnects"
        )
    return "ok", "refreshed just now" if creds.refresh_token else "token valid"


# -- mapping ---------------------------------------------------------------------------
def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Mapping[str, Any], tz: ZoneInfo) -> tuple[datetime, bool]:
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            zone = value.get("timeZone")
            moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else tz)
        return moment, False
    day = date.fromisoformat(str(value["date"]))
    return wall_time(day, clock_time(0), tz), True


def _tag(item: Mapping[str, Any]) -> str | None:
    private = (item.get("extendedProperties") or {}).get("private") or {}
    value = private.get(TAG)
    return str(value) if value else None


def to_event(item: Mapping[str, Any], cal: CalendarRef, tz: ZoneInfo | None = None) -> Event:
    """A Google event resource as steadyhand's :class:`~worker.core.model.Event`."""
    tz = tz or ZoneInfo(cal.timezone)
    start, all_day = _when(item["start"], tz)
    end, _ = _when(item["end"], tz)
    owner = cal.owner.strip().lower()
    organizer_field = item.get("organizer") or {}
    organizer = str(organizer_field.get("email") or "").lower() or None
    people = [a for a in item.get("attendees") or () if a.get("email") and not a.get("resource")]
    response = Response.ORGANIZER
    if not (organizer_field.get("self") or organizer == owner):
        mine = next((a for a in people if a.get("self") or str(a["email"]).lower() == owner), None)
        if mine is not None:
            response = _RESPONSES.get(str(mine.get("responseStatus")), Response.NEEDS_ACTION)
    status = item.get("status")
    return Event(
        id=str(item["id"]),
        calendar_id=cal.location,
        start=start,
        end=end,
        all_day=all_day,
        status=Status.CANCELLED
        if status == "cancelled"
        else _STATUSES.get(str(status), Status.CONFIRMED),
        response=response,
        transparency=Transparency.FREE
        if item.get("transparency") == "transparent"
        else Transparency.BUSY,
        event_type=_EVENT_TYPES.get(str(item.get("eventType")), EventType.DEFAULT),
        attendees=tuple(str(a["email"]).lower() for a in people),
        organizer=organizer,
        series_id=item.get("recurringEventId"),
        etag=item.get("etag"),
        owned_block_id=_tag(item),
        title=item.get("summary"),
        details=details_digest(item.get("description"), item.get("location"))
        if _tag(item)
        else None,
    )


def _inside(event: Event, window: TimeRange) -> bool:
    start, end = event.range.start, event.range.end
    if start == end:
        return window.contains(start)
    return start < window.end and window.start < end


def _body(block: Block, cal: CalendarRef, focus: bool) -> dict[str, Any]:
    """The Google event resource of ``block`` (without its id)."""
    body: dict[str, Any] = {
        "summary": block.title,
        "start": {"dateTime": block.start.isoformat(), "timeZone": cal.timezone},
        "end": {"dateTime": block.end.isoformat(), "timeZone": cal.timezone},
        "transparency": "transparent" if block.transparency is Transparency.FREE else "opaque",
        "extendedProperties": {"private": {TAG: block.id}},
    }
    if focus:
        body["eventType"] = "focusTime"
        body["focusTimeProperties"] = dict(FOCUS_TIME_PROPERTIES)
    return body


def _matches(item: Mapping[str, Any], block: Block, cal: CalendarRef) -> bool:
    try:
        event = to_event(item, cal)
    except (KeyError, ValueError, TypeError):
        return False
    return (
        event.start == block.start
        and event.end == block.end
        and event.transparency is block.transparency
        and (event.title or "") == block.title
    )


# -- Gmail -----------------------------------------------------------------------------
class GmailTransport(_Api):
    """Sends steadyhand's emails through Gmail's ``users.messages.send`` as ``sender``
    (the address in ``mail.from``), with that person's credentials of the account."""

    name = "gmail"
    api = ("gmail", "v1", "")
    scopes = (SCOPE_GMAIL_SEND,)

    def __init__(
        self,
        spec: AccountSpec,
        sender: str,
        *,
        token_store: TokenStore | None = None,
        http: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(spec, token_store, http, sleep, backoff)
        self.sender = (parseaddr(sender)[1] or sender).strip().lower()

    def send(self, message: EmailMessage) -> str:
        session = self._session(self.sender)
        raw = base64.urlsafe_b64encode(message.as_bytes()).decode("ascii")
        what = f"gmail send as {self.sender}"
        service = session.service
        result = self._run(
            lambda: service.users().messages().send(userId="me", body={"raw": raw}),
            what,
            session,
        )
        message_id = str(result["id"])
        logger.info("gmail: sent message %s as %s", message_id, self.sender)
        return message_id


# -- connecting ------------------------------------------------------------------------
def connect(
    spec: AccountSpec,
    email: str,
    token_store: TokenStore,
    *,
    open_browser: bool = True,
    port: int = 0,
    print_url: Callable[[str], None] = print,
) -> None:
    """Run Google's installed-app OAuth flow for ``email`` and store the credentials.

    Asks for offline access (a refresh token) and :data:`SCOPES` only, with
    ``prompt=consent`` so Google always returns a refresh token. A loopback server on
    ``port`` (0: any free port) receives the redirect. ``print_url`` gets the consent
    address (always: a browser that did not open can be replaced by hand).
    """
    from google_auth_oauthlib.flow import InstalledAppFlow  # type: ignore[import-untyped]
    from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]

    email = email.strip().lower()
    where = f"accounts[{spec.name}]"
    if spec.client_secrets is None:
        raise ConfigError(
            Problem(
                "auth: oauth needs client_secrets:",
                "download an OAuth client of type 'Desktop app' from the Google Cloud console "
                "(APIs & Services > Credentials) and point client_secrets: at the JSON file",
                path=where,
            )
        )
    secrets = Path(spec.client_secrets)
    if not secrets.is_file():
        raise ConfigError(
            Problem(
                f"client_secrets file {secrets} does not exist",
                "download the 'Desktop app' OAuth client JSON from the Google Cloud console",
                path=where,
            )
        )
    token_store._require()  # no key: fail before the user goes through consent

    class _Flow(InstalledAppFlow):  # type: ignore[misc]
        def authorization_url(self, **kwargs: Any) -> Any:
            url, state = super().authorization_url(**kwargs)
            print_url(url)
            return url, state

    def run(browser: bool) -> Any:
        flow = _Flow.from_client_secrets_file(str(secrets), scopes=list(SCOPES))
        creds = flow.run_local_server(
            host="localhost",
            port=port,
            open_browser=browser,
            authorization_prompt_message=None,
            success_message=(
                "steadyhand is connected to your Google account. You may close this window."
            ),
            access_type="offline",
            prompt="consent",
            login_hint=email,
        )
        return flow, creds

    if open_browser:
        try:
            webbrowser.get()
        except webbrowser.Error:
            logger.info("no browser to open here; the consent address is printed instead")
            open_browser = False
    try:
        flow, creds = run(open_browser)
    except Warning as exc:  # oauthlib: the user did not grant every scope
        granted = getattr(exc, "new_scope", None) or []
        missing = [s for s in SCOPES if s not in set(granted)]
        raise UserError(
            Problem(
                f"Google granted {email} only {', '.join(granted) or 'nothing'}; "
                f"steadyhand also needs {', '.join(missing)}",
                "connect again and leave every permission ticked on the consent screen",
            )
        ) from None
    except OAuth2Error as exc:
        raise UserError(
            Problem(
                f"Google did not grant access for {email} ({exc.error})",
                "connect again and allow access on the consent screen",
            )
        ) from None
    if not creds.refresh_token:
        raise UserError(
            Problem(
                f"Google returned no refresh token for {email}",
                "remove steadyhand at https://myaccount.google.com/permissions and connect again",
            )
        )
    token = dict(getattr(flow.oauth2session, "token", None) or {})
    granted = token.get("scope") or list(SCOPES)
    if isinstance(granted, str):
        granted = granted.split()
    now = datetime.now(UTC).replace(microsecond=0)
    lifetime = token.get("refresh_token_expires_in")
    meta: dict[str, Any] = {
        "email": email,
        "connected_at": now.isoformat(),
        "granted_scopes": sorted(granted),
        "refresh_token_expires_at": (
            (now + timedelta(seconds=int(lifetime))).isoformat() if lifetime else None
        ),
    }
    info = json.loads(creds.to_json())
    info["steadyhand"] = meta
    token_store.save(token_name(spec, email), json.dumps(info).encode())
    logger.info("google %s: connected %s", spec.name, email)
