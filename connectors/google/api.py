"""What Google's calendar and Gmail clients share: one person's session per thread (their
refreshed credentials and the built service), each request run with retries, and Google's
error answers turned into steadyhand's errors.

Discovery documents are the ones bundled with the client (``static_discovery=True``), so
building a service never touches the network. ``api_endpoint`` replaces the API root
(``https://www.googleapis.com/``): the calendar is served under ``<root>calendar/v3/``, its
batch endpoint at ``<root>batch/calendar/v3`` and Gmail under ``<root>gmail/v1/``. (The
client's own ``api_endpoint`` option replaces the root *and* the service path, and its
``new_batch_http_request`` ignores it, so both are composed here.)

Errors: 429, 5xx and 403 ``rateLimitExceeded``/``userRateLimitExceeded`` are transient and
retried by :func:`connectors.retry.retrying`; ``quotaExceeded``, a 401 after a refresh, a
missing calendar and other refusals raise :class:`~connectors.base.PermanentError` with a
one-line message.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from connectors.base import AccountSpec
from connectors.google.auth import (
    SCOPE_CALENDAR,
    auth_error,
    credentials_for,
    refresh,
    short,
    store_credentials,
)
from connectors.retry import Backoff, retry_after_seconds, retrying
from connectors.secrets import TokenStore, redact
from worker.core.errors import ConfigError, PermanentError, Problem, TransientError
from worker.core.model import UTC

logger = logging.getLogger(__name__)

DEFAULT_ROOT = "https://www.googleapis.com/"
DEFAULT_BACKOFF = Backoff()
_RATE_LIMITS = {"rateLimitExceeded", "userRateLimitExceeded"}
_QUOTA = {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"}


# -- errors ----------------------------------------------------------------------------
class Answer(Exception):
    """Google answered with an error the caller may want to handle (409, 410, 412, …).

    Never escapes the package: :meth:`Api._run` turns the ones the caller did not ask
    for into :class:`PermanentError`."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def _answer(status: int, content: Any, headers: Mapping[str, Any]) -> Answer:
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
    return Answer(
        status, reason, message, retry_after_seconds(headers.get("retry-after"), datetime.now(UTC))
    )


def from_http_error(exc: Any) -> Answer:
    return _answer(int(exc.resp.status), exc.content, exc.resp)


def is_transient(answer: Answer) -> bool:
    return (
        answer.status in (408, 429)
        or answer.status >= 500
        or (answer.status == 403 and answer.reason in _RATE_LIMITS)
    )


def transient(answer: Answer, what: str) -> TransientError:
    return TransientError(
        f"{what}: Google answered HTTP {answer.status} {answer.reason}".rstrip(),
        retry_after=answer.retry_after,
    )


def permanent(answer: Answer, what: str, email: str, calendar: str | None) -> PermanentError:
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


# -- sessions --------------------------------------------------------------------------
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
class Session:
    """One person's credentials and built services, for one thread."""

    email: str
    credentials: Any
    http: Any  # the unauthorized httplib2.Http underneath
    authed: Any  # google_auth_httplib2.AuthorizedHttp
    service: Any
    saved_token: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Api:
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
        return credentials_for(self.spec, self.auth, self.token_store, self.scopes, email, http)

    def _save(self, session: Session) -> None:
        """Write refreshed OAuth credentials back (encrypted), keeping their metadata."""
        if self.auth != "oauth" or self.token_store is None:
            return
        token = session.credentials.token
        if token == session.saved_token:
            return
        store_credentials(
            self.token_store, self.spec, session.email, session.credentials, session.meta
        )
        session.saved_token = token
        logger.info("google %s: saved refreshed credentials of %s", self.spec.name, session.email)

    # -- sessions --------------------------------------------------------------------
    def _base_url(self) -> str | None:
        return f"{self.root}{self.api[2]}" if self.root else None

    def _session(self, email: str) -> Session:
        sessions: dict[str, Session] | None = getattr(self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        key = email.strip().lower()
        found = sessions.get(key)
        if found is not None:
            if not found.credentials.valid:  # expired since: refresh before use
                what = f"google {self.spec.name}: credentials of {key}"
                refresh(found.credentials, found.http, what, key)
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
        session = Session(key, creds, http, authed, service, saved_token=loaded, meta=meta)
        self._save(session)  # refreshed on load: keep the new access token
        sessions[key] = session
        return session

    def _run(
        self,
        request: Callable[[], Any],
        what: str,
        session: Session,
        expect: Iterable[int] = (),
        calendar: str | None = None,
    ) -> Any:
        """Execute the request ``request()`` builds, retrying transient failures.

        Statuses in ``expect`` raise :class:`Answer` for the caller; other errors raise
        :class:`PermanentError` (or the last :class:`TransientError`)."""
        expected = frozenset(expect)

        def once() -> Any:
            try:
                return request().execute(num_retries=0)
            except HttpError as exc:
                answer = from_http_error(exc)
                if is_transient(answer):
                    raise transient(answer, what) from None
                raise answer from None
            except RefreshError as exc:
                raise auth_error(exc, what, session.email) from None
            except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
                raise TransientError(f"{what}: cannot reach Google ({short(exc)})") from None

        try:
            return retrying(once, what, self.backoff, self.sleep)
        except Answer as answer:
            if answer.status in expected:
                raise
            if is_transient(answer):
                raise transient(answer, what) from None
            raise permanent(answer, what, session.email, calendar) from None
        finally:
            self._save(session)
