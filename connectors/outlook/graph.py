"""The Graph HTTP client: bearer token, per-mailbox slots, errors mapped, retries, ``$batch``.

:class:`Graph` sends one request (:meth:`Graph.call`, retried with
:func:`connectors.retry.retrying` on 429, 5xx and lost connections) or a ``$batch``
(:meth:`Graph.batch`); :class:`MailboxSlots` keeps at most ``max_concurrent_per_mailbox``
requests in flight per mailbox. ``Retry-After`` is read by
:func:`connectors.retry.retry_after_seconds`, as every connector reads it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from connectors.base import AccountSpec
from connectors.outlook.auth import Auth
from connectors.retry import Backoff, retry_after_seconds, retrying
from worker.core.errors import ConnectorError, PermanentError, TransientError
from worker.core.model import UTC

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
MAX_BATCH = 20  # Graph's JSON batching limit
DEFAULT_BACKOFF = Backoff()
MAILBOX_CODES = frozenset(
    {"errorinvaliduser", "mailboxnotenabledforrestapi", "mailboxnotsupportedforrestapi"}
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer from Graph (or one item of a ``$batch`` answer)."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: Any

    @property
    def error_code(self) -> str:
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        return str(error.get("code") or "") if isinstance(error, Mapping) else ""

    @property
    def error_message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        text = str(error.get("message") or "") if isinstance(error, Mapping) else ""
        return " ".join(text.split())[:200]

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers.get("retry-after"), datetime.now(UTC))

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500


class _ConnectionLost(TransientError):
    """The request may have reached Graph: safe to repeat only when it is idempotent."""


class _Escape(Exception):
    """Carries an error past :func:`retrying` (which retries every TransientError)."""

    def __init__(self, error: ConnectorError) -> None:
        super().__init__(str(error))
        self.error = error


class MailboxSlots:
    """At most ``limit`` requests in flight per mailbox.

    Like one ``threading.BoundedSemaphore`` per mailbox, but a ``$batch`` takes all the
    slots its items need at once (atomically), so two batches never deadlock each holding
    part of what they need.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._used: dict[str, int] = {}
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, counts: Mapping[str, int]) -> Iterator[None]:
        need = {m: min(n, self.limit) for m, n in counts.items() if n > 0}
        with self._cond:
            self._cond.wait_for(
                lambda: all(self._used.get(m, 0) + n <= self.limit for m, n in need.items())
            )
            for m, n in need.items():
                self._used[m] = self._used.get(m, 0) + n
        try:
            yield
        finally:
            with self._cond:
                for m, n in need.items():
                    self._used[m] -= n
                self._cond.notify_all()


class Graph:
    """Requests to Graph: bearer token, per-mailbox slots, errors mapped, retries."""

    def __init__(
        self,
        spec: AccountSpec,
        auth: Auth,
        session: requests.Session | None,
        sleep: Callable[[float], None],
        backoff: Backoff,
        max_concurrent: int,
        timeout: float = 60.0,
    ) -> None:
        self.root = (spec.graph_endpoint or GRAPH_ROOT).rstrip("/")
        self.auth = auth
        self.session = session or requests.Session()
        self.sleep = sleep
        self.backoff = backoff
        self.slots = MailboxSlots(max_concurrent)
        self.timeout = timeout
        self.rng = random.random

    def absolute(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.root + path

    def relative(self, url: str) -> str | None:
        """``url`` as a path under the Graph root, or None when it points elsewhere."""
        if url.startswith(self.root + "/"):
            return url[len(self.root) :]
        return None

    def error(self, reply: Reply, what: str, mailbox: str) -> ConnectorError:
        code = reply.error_code
        head = f"{self.auth.prefix()}: {what}: Graph answered HTTP {reply.status}"
        head += f" {code}" if code else ""
        if reply.transient:
            return TransientError(head, reply.retry_after)
        if reply.status == 401:
            return PermanentError(
                f"{head}: the token was refused after a refresh — {self.auth.fix(mailbox)}"
            )
        if reply.status == 403:
            if self.auth.mode == "client_credentials":
                fix = (
                    "grant the app the Calendars.ReadWrite and Mail.Send application "
                    "permissions with admin consent (and check application access policies)"
                )
            else:
                fix = (
                    f"{mailbox or 'the user'} must allow Calendars.ReadWrite, "
                    f"MailboxSettings.Read and Mail.Send — {self.auth.fix(mailbox)}"
                )
            return PermanentError(f"{head}: access denied to {mailbox or 'Graph'} — {fix}")
        if reply.status == 404 and code.casefold() in MAILBOX_CODES:
            return PermanentError(
                f"{head}: no Exchange Online mailbox for {mailbox} — check the person's "
                "email in steadyhand.yaml"
            )
        message = reply.error_message
        return PermanentError(f"{head}: {message}" if message else head)

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        counts: Mapping[str, int],
        headers: Mapping[str, str] | None,
        body: Any,
        data: bytes | None,
    ) -> Reply:
        sent = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        sent.update(headers or {})
        with self.slots.hold(counts):
            try:
                response = self.session.request(
                    method, url, headers=sent, json=body, data=data, timeout=self.timeout
                )
            except requests.ConnectTimeout:
                raise TransientError(f"{self.auth.prefix()}: Graph did not answer") from None
            except requests.RequestException as exc:
                raise _ConnectionLost(
                    f"{self.auth.prefix()}: the connection to Graph failed ({type(exc).__name__})"
                ) from None
        parsed: Any = None
        if response.content:
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return Reply(response.status_code, lowered, parsed)

    def call(
        self,
        method: str,
        path: str,
        *,
        mailbox: str,
        what: str,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        allow: Sequence[int] = (),
        counts: Mapping[str, int] | None = None,
        replay_safe: bool = True,
    ) -> Reply:
        """One request, retried on transient failures; statuses in ``allow`` are returned
        for the caller to judge, other failures raise."""
        identity = self.auth.identity(mailbox)
        url = self.absolute(path)
        counts = counts if counts is not None else {mailbox.strip().lower(): 1}

        def once() -> Reply:
            refreshed = False
            while True:
                token = self.auth.token(identity, force=refreshed)
                try:
                    reply = self._send(method, url, token, counts, headers, json, data)
                except _ConnectionLost as exc:
                    if replay_safe:
                        raise
                    raise _Escape(exc) from None
                if reply.status == 401 and not refreshed:
                    refreshed = True  # a stale or revoked access token: refresh once
                    continue
                break
            if reply.status < 300 or reply.status in allow:
                return reply
            raise self.error(reply, what, mailbox)

        try:
            return retrying(once, what, self.backoff, self.sleep, self.rng)
        except _Escape as escaped:
            raise escaped.error from None

    def batch(
        self, identity_mailbox: str, items: Sequence[Mapping[str, Any]], counts: Mapping[str, int]
    ) -> dict[str, Reply]:
        """POST ``items`` as one ``$batch``; the answers by item id (in any order)."""
        reply = self.call(
            "POST",
            "/$batch",
            mailbox=identity_mailbox,
            what=f"a batch of {len(items)} requests",
            json={"requests": list(items)},
            counts=counts,
        )
        answers: dict[str, Reply] = {}
        responses = reply.body.get("responses") if isinstance(reply.body, Mapping) else None
        for answer in responses or ():
            headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
            answers[str(answer.get("id"))] = Reply(
                int(answer.get("status", 500)), headers, answer.get("body")
            )
        return answers
