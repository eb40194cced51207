"""A loopback Google: Calendar events, the batch endpoint, Gmail send and OAuth.

Follows Google's documented behaviour closely enough that the real
google-api-python-client, google-auth and google-auth-oauthlib talk to it unchanged:

- ``/calendar/v3/calendars/{calendarId}/events[/{eventId}]``: list (``timeMin``/
  ``timeMax``, ``showDeleted``, ``maxResults`` at most 2500 and pages that may be shorter,
  ``pageToken``, ``nextSyncToken``/``syncToken`` with 400 for the parameters Google forbids
  beside it and 410 ``fullSyncRequired`` for an invalidated token), get (deleted events
  too), insert (client-chosen ids ``[a-v0-9]{5,1024}``, 409 ``duplicate`` for an id in
  use, deleted or not), patch, update and delete with ``If-Match`` (412
  ``conditionNotMet``), 410 ``deleted`` for deleting a deleted event, 404 ``notFound``;
  ``focusTime`` only on a primary calendar of an account that allows it (else 400).
- ``/batch/calendar/v3``: ``multipart/mixed`` of ``application/http`` parts in and out
  (at most 50 calls; each part answered on its own, ``Content-ID: <response-…>``).
- ``/gmail/v1/users/me/messages/send``: ``{"raw": base64url}``, answers the message id.
- ``/o/oauth2/auth`` (redirects to the loopback ``redirect_uri`` with a code) and
  ``/token`` (authorization code with PKCE, refresh token, JWT bearer for service
  accounts), with Bearer access tokens checked on every API call, with their scopes.
- Faults: ``fault_rate`` (seeded) answers 429 (with ``Retry-After``), 500, 503 or 403
  ``rateLimitExceeded``, some of them *after* doing the work (the answer is lost, as when a
  connection drops), plus scripted failures (:meth:`GoogleFake.fail_next`).

It counts every HTTP request (``http_requests``; a batch is one) and keeps every API
call (``calls``; a batch's parts are calls too).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import itertools
import json
import random
import re
import secrets
import socket
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

CALENDAR_SCOPES = {
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
}
GMAIL_SCOPES = {"https://www.googleapis.com/auth/gmail.send", "https://mail.google.com/"}
FORBIDDEN_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Call:
    """One API call as the fake saw it (a batch part too)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    in_batch: bool = False
    status: int = 0

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Calendar:
    id: str
    timezone: str = "UTC"
    #: event id -> (sequence of its last change, resource)
    events: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)  # deleted through the API or by hand
    generation: int = 0  # bumping it invalidates every sync token of the calendar
    primary_of: str | None = None


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> Answer:
        headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        return cls(status, json.dumps(data).encode(), headers)

    @classmethod
    def error(cls, status: int, reason: str, message: str, **headers: str) -> Answer:
        return cls.json(
            status,
            {
                "error": {
                    "code": status,
                    "message": message,
                    "errors": [{"domain": "global", "reason": reason, "message": message}],
                }
            },
            **headers,
        )


class GoogleFake:
    """The server and its state. Thread-safe: every request holds ``lock``."""

    def __init__(self, *, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self._seq = itertools.count(1)
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body leave in two writes: without this, delayed ACKs cost
                # 40 ms a response on a kept-alive connection
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.http_requests += 1
                try:
                    answer = fake.dispatch(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                except Exception as exc:  # a bug in the fake: say so instead of hanging up
                    answer = Answer.error(500, "fakeBug", f"{type(exc).__name__}: {exc}")
                self.send_response(answer.status, REASONS.get(answer.status))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.calendars: dict[str, Calendar] = {}
            self.http_requests = 0
            self.calls: list[Call] = []
            self.sent: list[bytes] = []
            self.pages: dict[str, tuple[list[dict[str, Any]], str]] = {}
            self.fault_rate = 0.0
            self.faults_injected = 0
            self.scripted: deque[tuple[str | None, str | None, Answer, bool]] = deque()
            self.page_cap: int | None = None  # serve shorter pages than asked
            self.batch_limit = 50
            self.focus_time_allowed = True
            #: access token -> (email, scopes, expires at)
            self.access_tokens: dict[str, tuple[str, set[str], datetime | None]] = {}
            #: refresh token -> (email, scopes)
            self.refresh_tokens: dict[str, tuple[str, set[str]]] = {}
            self.codes: dict[str, dict[str, Any]] = {}
            self.issued_codes: list[str] = []
            self.issued: set[str] = set()  # every access and refresh token, revoked ones too
            self.clients: dict[str, str] = {}  # OAuth client id -> secret
            self.granted_scopes: set[str] | None = None  # None: whatever was asked
            self.testing_app = False  # refresh_token_expires_in: 7 days, as in "Testing"
            self.delegated_scopes: set[str] = set()  # domain-wide delegation grants
            self.auth_requests: list[dict[str, str]] = []
            self.token_requests: list[dict[str, str]] = []
            self.reject_all_tokens = False  # every API call answers 401

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seq(self) -> int:
        return next(self._seq)

    def calendar(self, calendar_id: str, timezone: str = "UTC") -> Calendar:
        """The calendar ``calendar_id``, made empty when new."""
        with self.lock:
            found = self.calendars.get(calendar_id)
            if found is None:
                found = self.calendars[calendar_id] = Calendar(calendar_id, timezone)
                if "@" in calendar_id and not calendar_id.endswith("calendar.google.com"):
                    found.primary_of = calendar_id  # a person's primary calendar: their email
            return found

    def issue_token(
        self, email: str, scopes: set[str] | None = None, expires_in: int | None = 3600
    ) -> str:
        token = "ya29." + secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None
        with self.lock:
            scopes = set(scopes if scopes is not None else CALENDAR_SCOPES | GMAIL_SCOPES)
            self.access_tokens[token] = (email.lower(), scopes, expires)
            self.issued.add(token)
        return token

    def issue_refresh_token(self, email: str, scopes: set[str]) -> str:
        token = "1//" + secrets.token_urlsafe(32)
        with self.lock:
            self.refresh_tokens[token] = (email.lower(), set(scopes))
            self.issued.add(token)
        return token

    def revoke(self, email: str) -> None:
        """The user removes the app's access: every token of ``email`` stops working."""
        with self.lock:
            for store in (self.access_tokens, self.refresh_tokens):
                for token in [t for t, v in store.items() if v[0] == email.lower()]:
                    del store[token]

    def put_event(self, calendar_id: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        """The user (or another program) writes ``resource`` on the calendar directly."""
        with self.lock:
            cal = self.calendar(calendar_id)
            stored = self._stamp(cal, dict(resource), created=resource["id"] not in cal.events)
            cal.deleted.discard(stored["id"])
            return stored

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """The user deletes an event in their calendar app."""
        with self.lock:
            cal = self.calendars[calendar_id]
            _, resource = cal.events[event_id]
            resource = {**resource, "status": "cancelled"}
            self._stamp(cal, resource)
            cal.deleted.add(event_id)

    def replace_events(self, calendar_id: str, resources: list[dict[str, Any]]) -> None:
        """The calendar now holds exactly ``resources``: delete the others, write the
        changed ones, leave the identical ones untouched (no new sequence)."""
        with self.lock:
            cal = self.calendar(calendar_id)
            wanted = {r["id"]: r for r in resources}
            for event_id in list(cal.events):
                if event_id not in wanted and event_id not in cal.deleted:
                    self.delete_event(calendar_id, event_id)
            for event_id, resource in wanted.items():
                current = cal.events.get(event_id)
                if current is None or _content(current[1]) != _content(resource):
                    self.put_event(calendar_id, resource)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        """The calendar's live events (not cancelled)."""
        with self.lock:
            cal = self.calendars.get(calendar_id)
            if cal is None:
                return []
            return [r for _, r in cal.events.values() if r.get("status") != "cancelled"]

    def secrets(self) -> set[str]:
        """Every credential the fake handed out or was given: none may reach a log."""
        with self.lock:
            return {
                *self.issued,
                *self.clients.values(),
                *self.issued_codes,
            }

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        with self.lock:
            self.calendars[calendar_id].generation += 1

    def fail_next(
        self,
        status: int,
        reason: str,
        *,
        path: str | None = None,
        method: str | None = None,
        after: bool = False,
        **headers: str,
    ) -> None:
        """The next API call (whose path contains ``path``) answers ``status``; with
        ``after`` the call is carried out first and its answer lost."""
        message = {
            429: "Rate Limit Exceeded",
            403: "Quota exceeded" if "quota" in reason.lower() else "Rate Limit Exceeded",
        }.get(status, reason)
        with self.lock:
            answer = Answer.error(status, reason, message, **headers)
            self.scripted.append((path, method, answer, after))

    def calls_to(self, fragment: str, method: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.calls
                if fragment in c.path and (method is None or c.method == method)
            ]

    # -- dispatch ----------------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        lower = {k.lower(): v for k, v in headers.items()}
        if path == "/token" and method == "POST":
            return self._token(body)
        if path == "/o/oauth2/auth" and method == "GET":
            return self._authorize(query)
        if path == "/batch/calendar/v3" and method == "POST":
            return self._batch(lower, body)
        return self._api(Call(method, path, query, lower, body))

    def _api(self, call: Call) -> Answer:
        with self.lock:
            self.calls.append(call)
            injected, after = self._fault(call)
            if injected is not None and not after:
                call.status = injected.status
                return injected
            answer = self._route(call)
            if injected is not None:  # done, but the answer never arrives
                call.status = injected.status
                return injected
            call.status = answer.status
            return answer

    def _fault(self, call: Call, envelope: bool = False) -> tuple[Answer | None, bool]:
        for i, (fragment, method, answer, after) in enumerate(self.scripted):
            if method is not None and method != call.method:
                continue
            if (fragment is None and not envelope) or (fragment and fragment in call.path):
                del self.scripted[i]
                return answer, after
        if self.fault_rate and self.rng.random() < self.fault_rate:
            self.faults_injected += 1
            kind = self.rng.choice(["429", "503", "500-after", "403", "503-after"])
            after = kind.endswith("-after")
            if kind == "429":
                return Answer.error(
                    429, "rateLimitExceeded", "Rate Limit Exceeded", **{"Retry-After": "1"}
                ), False
            if kind == "403":
                return Answer.error(403, "rateLimitExceeded", "Rate Limit Exceeded"), False
            status = int(kind[:3])
            return Answer.error(status, "backendError", "Backend Error"), after
        return None, False

    def _whoami(self, call: Call) -> tuple[str, set[str]] | Answer:
        auth = call.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        found = self.access_tokens.get(token)
        if self.reject_all_tokens or found is None:
            return Answer.error(401, "authError", "Invalid Credentials")
        user, scopes, expires = found
        if expires is not None and expires <= datetime.now(UTC):
            return Answer.error(401, "authError", "Invalid Credentials")
        return user, scopes

    def _route(self, call: Call) -> Answer:
        who = self._whoami(call)
        if isinstance(who, Answer):
            return who
        user, scopes = who
        if call.path.startswith("/gmail/v1/"):
            if not scopes & GMAIL_SCOPES:
                return Answer.error(
                    403,
                    "insufficientPermissions",
                    "Request had insufficient authentication scopes.",
                )
            match = re.fullmatch(r"/gmail/v1/users/([^/]+)/messages/send", call.path)
            if match is None or call.method != "POST":
                return Answer.error(404, "notFound", "Not Found")
            return self._send(call)
        match = re.fullmatch(r"/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?", call.path)
        if match is None:
            return Answer.error(404, "notFound", "Not Found")
        if not scopes & CALENDAR_SCOPES:
            return Answer.error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        calendar_id = unquote(match.group(1))
        if calendar_id == "primary":
            calendar_id = user
            cal = self.calendar(user)
            cal.primary_of = user
        cal_or_none = self.calendars.get(calendar_id)
        if cal_or_none is None:
            return Answer.error(404, "notFound", "Not Found")
        cal = cal_or_none
        event_id = unquote(match.group(2)) if match.group(2) else None
        if event_id is None:
            if call.method == "GET":
                return self._list(cal, call)
            if call.method == "POST":
                return self._insert(cal, call)
            return Answer.error(405, "methodNotAllowed", "Method Not Allowed")
        if call.method == "GET":
            return self._get(cal, event_id)
        if call.method in ("PATCH", "PUT"):
            return self._modify(cal, event_id, call)
        if call.method == "DELETE":
            return self._delete(cal, event_id, call)
        return Answer.error(405, "methodNotAllowed", "Method Not Allowed")

    # -- events ------------------------------------------------------------------------
    def _stamp(
        self, cal: Calendar, resource: dict[str, Any], created: bool = False
    ) -> dict[str, Any]:
        seq = self.seq()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        resource["kind"] = "calendar#event"
        resource["etag"] = f'"{3181159875584000 + seq * 2000}"'
        resource.setdefault("status", "confirmed")
        resource["updated"] = now
        if created:
            resource.setdefault("created", now)
        resource.setdefault("iCalUID", f"{resource['id']}@google.com")
        cal.events[resource["id"]] = (seq, resource)
        return resource

    def _range(
        self, cal: Calendar, resource: Mapping[str, Any]
    ) -> tuple[datetime, datetime] | None:
        def when(value: Mapping[str, Any] | None) -> datetime | None:
            if not value:
                return None
            if value.get("dateTime"):
                moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or cal.timezone))
                return moment
            day = date.fromisoformat(str(value["date"]))
            return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(cal.timezone))

        start, end = when(resource.get("start")), when(resource.get("end"))
        if start is None or end is None:
            return None
        return start, end

    def _shown(self, cal: Calendar, event_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        """A deleted event in a list: only what Google guarantees."""
        if event_id in cal.deleted:
            return {
                k: resource[k] for k in ("kind", "etag", "id", "status", "updated") if k in resource
            }
        return resource

    def _list(self, cal: Calendar, call: Call) -> Answer:
        page_token = call.param("pageToken")
        sync_token = call.param("syncToken")
        if sync_token is not None:
            forbidden = [p for p in FORBIDDEN_WITH_SYNC_TOKEN if p in call.query]
            if forbidden:
                return Answer.error(
                    400, "invalid", f"Sync token cannot be used with {', '.join(forbidden)}."
                )
        if page_token is not None:
            found = self.pages.get(page_token)
            if found is None:
                return Answer.error(400, "invalid", "Invalid page token value.")
            remaining, final = found
            return self._page(cal, call, remaining, final)
        show_deleted = call.param("showDeleted") == "true"
        if sync_token is not None:
            decoded = _decode_sync_token(sync_token)
            if decoded is None or decoded[0] != cal.id or decoded[1] != cal.generation:
                return Answer.error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since = decoded[2]
            chosen = [
                self._shown(cal, i, r)
                for i, (s, r) in sorted(cal.events.items(), key=_by_seq)
                if s > since
            ]
        else:
            time_min = _parse(call.param("timeMin"))
            time_max = _parse(call.param("timeMax"))
            chosen = []
            for event_id, (_, resource) in sorted(cal.events.items(), key=_by_seq):
                if resource.get("status") == "cancelled" and not show_deleted:
                    continue
                span = self._range(cal, resource)
                if span is not None:
                    if time_min is not None and span[1] <= time_min:
                        continue
                    if time_max is not None and span[0] >= time_max:
                        continue
                elif (time_min is not None or time_max is not None) and event_id not in cal.deleted:
                    continue
                chosen.append(self._shown(cal, event_id, resource))
        newest = max((s for s, _ in cal.events.values()), default=0)
        final = _encode_sync_token(cal.id, cal.generation, newest)
        return self._page(cal, call, chosen, final)

    def _page(self, cal: Calendar, call: Call, items: list[dict[str, Any]], final: str) -> Answer:
        size = min(int(call.param("maxResults") or 250), 2500)
        if self.page_cap is not None:
            size = min(size, self.page_cap)
        size = max(size, 1)
        page, rest = items[:size], items[size:]
        data: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{self.seq()}"',
            "summary": cal.id,
            "timeZone": cal.timezone,
            "items": [json.loads(json.dumps(r)) for r in page],
        }
        if rest:
            token = secrets.token_urlsafe(12)
            self.pages[token] = (rest, final)
            data["nextPageToken"] = token
        else:
            data["nextSyncToken"] = final
        return Answer.json(200, data)

    def _get(self, cal: Calendar, event_id: str) -> Answer:
        found = cal.events.get(event_id)
        if found is None:
            return Answer.error(404, "notFound", "Not Found")
        return Answer.json(200, found[1], ETag=found[1]["etag"])

    def _insert(self, cal: Calendar, call: Call) -> Answer:
        try:
            resource = json.loads(call.body or b"{}")
        except ValueError:
            return Answer.error(400, "parseError", "Parse Error")
        event_id = resource.get("id")
        if event_id is None:
            event_id = resource["id"] = (
                base64.b32hexencode(secrets.token_bytes(10)).decode().lower()
            )
        if not EVENT_ID.fullmatch(str(event_id)):
            return Answer.error(400, "invalid", "Invalid resource id value.")
        if event_id in cal.events:
            return Answer.error(409, "duplicate", "The requested identifier already exists.")
        if not resource.get("start") or not resource.get("end"):
            return Answer.error(400, "required", "Missing end time.")
        if resource.get("eventType") == "focusTime" and (
            not self.focus_time_allowed or cal.primary_of is None
        ):
            return Answer.error(
                400, "invalid", "Focus time events cannot be created on this calendar."
            )
        owner = cal.primary_of or cal.id
        resource.setdefault("organizer", {"email": owner, "self": True})
        resource.setdefault("creator", {"email": owner, "self": True})
        stored = self._stamp(cal, resource, created=True)
        return Answer.json(200, stored, ETag=stored["etag"])

    def _precondition(self, resource: Mapping[str, Any], call: Call) -> Answer | None:
        wanted = call.headers.get("if-match")
        if wanted is not None and wanted != "*" and wanted != resource["etag"]:
            return Answer.error(412, "conditionNotMet", "Precondition Failed")
        return None

    def _modify(self, cal: Calendar, event_id: str, call: Call) -> Answer:
        found = cal.events.get(event_id)
        if found is None:
            return Answer.error(404, "notFound", "Not Found")
        current = found[1]
        failed = self._precondition(current, call)
        if failed is not None:
            return failed
        try:
            change = json.loads(call.body or b"{}")
        except ValueError:
            return Answer.error(400, "parseError", "Parse Error")
        if "eventType" in change and change["eventType"] != current.get("eventType", "default"):
            return Answer.error(400, "eventTypeRestriction", "The event type cannot be changed.")
        if call.method == "PATCH":
            resource = _merge(json.loads(json.dumps(current)), change)
        else:
            keep = {
                k: current[k]
                for k in ("organizer", "creator", "created", "iCalUID", "eventType")
                if k in current
            }
            resource = {**keep, **change}
        resource["id"] = event_id
        if resource.get("status", "confirmed") != "cancelled":
            cal.deleted.discard(event_id)
        stored = self._stamp(cal, resource)
        return Answer.json(200, stored, ETag=stored["etag"])

    def _delete(self, cal: Calendar, event_id: str, call: Call) -> Answer:
        found = cal.events.get(event_id)
        if found is None:
            return Answer.error(404, "notFound", "Not Found")
        if event_id in cal.deleted or found[1].get("status") == "cancelled":
            return Answer.error(410, "deleted", "Resource has been deleted")
        failed = self._precondition(found[1], call)
        if failed is not None:
            return failed
        self._stamp(cal, {**found[1], "status": "cancelled"})
        cal.deleted.add(event_id)
        return Answer(204)

    # -- gmail -------------------------------------------------------------------------
    def _send(self, call: Call) -> Answer:
        try:
            raw = json.loads(call.body)["raw"]
            message = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (ValueError, KeyError):
            return Answer.error(
                400, "invalidArgument", "'raw' RFC822 payload message string required"
            )
        self.sent.append(message)
        message_id = hashlib.sha256(message).hexdigest()[:16]
        return Answer.json(200, {"id": message_id, "threadId": message_id, "labelIds": ["SENT"]})

    # -- batch -------------------------------------------------------------------------
    def _batch(self, headers: dict[str, str], body: bytes) -> Answer:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/mixed"):
            return Answer.error(400, "badContent", "Batch requests must be multipart/mixed.")
        envelope = Call("POST", "/batch/calendar/v3", {}, headers, b"")
        with self.lock:
            injected, after = self._fault(envelope, envelope=True)
        if injected is not None and not after:
            return injected
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        parts = message.get_payload()
        if not isinstance(parts, list):
            return Answer.error(400, "badContent", "No parts.")
        if len(parts) > self.batch_limit:
            return Answer.error(
                400, "badRequest", f"Too many requests in a batch (limit {self.batch_limit})."
            )
        boundary = "batch_" + secrets.token_hex(8)
        out: list[bytes] = []
        for part in parts:
            content_id = part.get("Content-ID", "")
            payload = part.get_payload(decode=False)
            inner = _parse_http(payload if isinstance(payload, str) else str(payload))
            inner_headers = inner[2]
            if "authorization" not in inner_headers and "authorization" in headers:
                inner_headers["authorization"] = headers["authorization"]
            target = urlsplit(inner[1])
            call = Call(
                inner[0],
                target.path,
                parse_qs(target.query, keep_blank_values=True),
                inner_headers,
                inner[3],
                in_batch=True,
            )
            answer = self._api(call)
            lines = [
                f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'OK' if answer.status < 300 else 'Error')}"
            ]
            for name, value in answer.headers.items():
                lines.append(f"{name}: {value}")
            lines.append(f"Content-Length: {len(answer.body)}")
            response_id = content_id.replace("<", "<response-", 1) if content_id else ""
            out.append(
                (
                    f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {response_id}\r\n\r\n"
                    + "\r\n".join(lines)
                    + "\r\n\r\n"
                ).encode()
                + answer.body
                + b"\r\n"
            )
        out.append(f"--{boundary}--\r\n".encode())
        if injected is not None:  # the parts were carried out, the answer is lost
            return injected
        return Answer(200, b"".join(out), {"Content-Type": f"multipart/mixed; boundary={boundary}"})

    # -- OAuth -------------------------------------------------------------------------
    def _authorize(self, query: dict[str, list[str]]) -> Answer:
        params = {k: v[0] for k, v in query.items()}
        with self.lock:
            self.auth_requests.append(params)
        redirect = params.get("redirect_uri", "")
        if params.get("client_id") not in self.clients:
            return Answer(400, b"invalid_client", {"Content-Type": "text/plain"})
        if not re.match(r"http://(localhost|127\.0\.0\.1)(:\d+)?/", redirect):
            return Answer(400, b"redirect_uri_mismatch", {"Content-Type": "text/plain"})
        asked = set(params.get("scope", "").split())
        granted = asked if self.granted_scopes is None else asked & self.granted_scopes
        code = "4/" + secrets.token_urlsafe(24)
        with self.lock:
            self.issued_codes.append(code)
            self.codes[code] = {
                "email": params.get("login_hint", "someone@example.com"),
                "scopes": granted,
                "challenge": params.get("code_challenge"),
                "redirect_uri": redirect,
                "client_id": params["client_id"],
                "offline": params.get("access_type") == "offline",
            }
        back = {"state": params.get("state", ""), "code": code, "scope": " ".join(sorted(granted))}
        return Answer(302, b"", {"Location": f"{redirect}?{urlencode(back)}"})

    def _token(self, body: bytes) -> Answer:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.lock:
            self.token_requests.append(
                {k: v for k, v in form.items() if k in ("grant_type", "client_id", "scope")}
            )
            grant = form.get("grant_type")
            if grant == "authorization_code":
                return self._exchange_code(form)
            if grant == "refresh_token":
                found = self.refresh_tokens.get(form.get("refresh_token", ""))
                if found is None:
                    return Answer.json(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "Token has been expired or revoked.",
                        },
                    )
                user, scopes = found
                token = self.issue_token(user, scopes)
                return Answer.json(
                    200,
                    {
                        "access_token": token,
                        "expires_in": 3599,
                        "scope": " ".join(sorted(scopes)),
                        "token_type": "Bearer",
                    },
                )
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                claims = _jwt_claims(form.get("assertion", ""))
                asked = set(str(claims.get("scope", "")).split())
                if not asked or not asked <= self.delegated_scopes:
                    return Answer.json(
                        401,
                        {
                            "error": "unauthorized_client",
                            "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
                        },
                    )
                token = self.issue_token(str(claims.get("sub", "")), asked)
                return Answer.json(
                    200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                )
        return Answer.json(400, {"error": "unsupported_grant_type"})

    def _exchange_code(self, form: dict[str, str]) -> Answer:
        found = self.codes.pop(form.get("code", ""), None)
        if found is None:
            return Answer.json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return Answer.json(
                401, {"error": "invalid_client", "error_description": "Unauthorized"}
            )
        if form.get("redirect_uri") != found["redirect_uri"]:
            return Answer.json(400, {"error": "redirect_uri_mismatch"})
        if found["challenge"]:
            verifier = form.get("code_verifier", "")
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if digest != found["challenge"]:
                return Answer.json(
                    400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
                )
        scopes = found["scopes"]
        data: dict[str, Any] = {
            "access_token": self.issue_token(found["email"], scopes),
            "expires_in": 3599,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }
        if found["offline"]:
            data["refresh_token"] = self.issue_refresh_token(found["email"], scopes)
            if self.testing_app:
                data["refresh_token_expires_in"] = 604799
        return Answer.json(200, data)


# -- helpers ---------------------------------------------------------------------------
def _by_seq(item: tuple[str, tuple[int, dict[str, Any]]]) -> int:
    return item[1][0]


def _content(resource: Mapping[str, Any]) -> dict[str, Any]:
    skip = {"etag", "updated", "created", "kind", "iCalUID"}
    return {k: v for k, v in resource.items() if k not in skip}


def _merge(base: dict[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """PATCH semantics: objects merge field by field, everything else is replaced."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base


def _parse(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _encode_sync_token(calendar_id: str, generation: int, seq: int) -> str:
    raw = json.dumps([calendar_id, generation, seq]).encode()
    return "CP" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_sync_token(token: str) -> tuple[str, int, int] | None:
    if not token.startswith("CP"):
        return None
    try:
        raw = token[2:]
        calendar_id, generation, seq = json.loads(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
    except ValueError:
        return None
    return str(calendar_id), int(generation), int(seq)


def _parse_http(text: str) -> tuple[str, str, dict[str, str], bytes]:
    """An ``application/http`` part: method, target, headers (lower-case), body."""
    text = text.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers, body.encode()


def _jwt_claims(assertion: str) -> dict[str, Any]:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def client_secrets(
    fake: GoogleFake,
    client_id: str = "123-abc.apps.googleusercontent.com",
    secret: str = "GOCSPX-fake-secret",
) -> dict[str, Any]:
    """An installed-app OAuth client whose endpoints are the fake's (registered with it)."""
    fake.clients[client_id] = secret
    return {
        "installed": {
            "client_id": client_id,
            "project_id": "steadyhand-tests",
            "auth_uri": f"{fake.url}o/oauth2/auth",
            "token_uri": f"{fake.url}token",
            "client_secret": secret,
            "redirect_uris": ["http://localhost"],
        }
    }
