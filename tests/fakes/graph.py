"""A loopback Microsoft Graph and Microsoft identity platform, as their documentation says
they behave. Real msal and real requests talk to it; nothing leaves the machine.

Graph (under ``/v1.0``)
    ``calendarView/delta`` (``/me`` or ``/users/{id}``, default or named calendar): pages of
    ``Prefer: odata.maxpagesize``, ``@odata.nextLink`` to ``@odata.deltaLink``, ``@removed``
    rows, state tokens that expire (410 ``syncStateNotFound`` / ``resyncRequired``), no
    ``$expand`` (400). ``calendarView`` (paged). Events: create (``transactionId`` dedupe:
    a repeat answers 201 with the event already made), get (``$expand`` of one
    ``singleValueExtendedProperties`` by id), list filtered on that property, patch, delete,
    decline (202). ``sendMail`` (202; MIME as base64 ``text/plain`` or JSON). ``$batch``
    (JSON, at most 20, answered in shuffled order, per-item 429 with ``Retry-After``).
    Times come back in UTC with seven fraction digits when ``outlook.timezone="UTC"`` is
    preferred. Bearer tokens are checked (401), delegated scopes and app roles enforced
    (403), unknown mailboxes are 404 ``ErrorInvalidUser``, more than 4 concurrent requests
    on one mailbox are 429 ``MailboxConcurrency``.
Identity (``/{tenant}/…``, reached through :class:`LoopbackSession`)
    OpenID configuration, ``devicecode``, and ``token`` for the device-code, refresh-token
    and client-credentials grants; id tokens and ``client_info`` as msal expects them.
    Access tokens are JWT-shaped (unsigned) with ``scp`` or ``roles``.
Faults
    ``fault_rate``: a seeded share of Graph requests answers 429 / 503 (with
    ``Retry-After``), 500, or drops the connection before or *after* doing the work; batch
    items get 429 / 503. :meth:`FakeGraph.fail_next` scripts failures.

Counters: ``graph_requests`` (HTTP requests to Graph, a ``$batch`` counts once),
``batch_items``, ``token_requests``, ``log`` (method, path), ``max_inflight`` per mailbox.
"""

from __future__ import annotations

import base64
import email
import hashlib
import itertools
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import requests

LOGIN_HOST = "login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/"
ALL_DELEGATED = ("Calendars.ReadWrite", "MailboxSettings.Read", "Mail.Send")
ALL_ROLES = ("Calendars.ReadWrite", "Mail.Send", "MailboxSettings.Read")
#: The few Windows zone names the fake itself needs to store and render times.
WINDOWS = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Eastern Standard Time": "America/New_York",
    "India Standard Time": "Asia/Kolkata",
    "Pacific Standard Time": "America/Los_Angeles",
    "Nepal Standard Time": "Asia/Kathmandu",
}


DEFAULT_SETTINGS: dict[str, Any] = {
    "timeZone": "W. Europe Standard Time",
    "workingHours": {
        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "startTime": "08:00:00.0000000",
        "endTime": "17:00:00.0000000",
        "timeZone": {"name": "W. Europe Standard Time"},
    },
}


def _zone(name: str | None) -> ZoneInfo:
    if not name or name.upper() == "UTC":
        return ZoneInfo("UTC")
    return ZoneInfo(WINDOWS.get(name, name))


def _parse(dt: Mapping[str, Any]) -> datetime:
    text = str(dt["dateTime"])
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    naive = datetime.fromisoformat(text.rstrip("Z"))
    return naive.replace(tzinfo=_zone(dt.get("timeZone")))


def _render(moment: datetime, zone_name: str) -> dict[str, str]:
    local = moment.astimezone(_zone(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(claims: Mapping[str, Any]) -> str:
    header = _b64url(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    body = _b64url(json.dumps(dict(claims)).encode())
    return f"{header}.{body}.{_b64url(secrets.token_bytes(24))}"


class Drop(Exception):
    """Close the connection without an answer."""


@dataclass
class Stored:
    id: str
    mailbox: str
    calendar: str
    data: dict[str, Any]  # the Graph resource as written, without server fields
    version: int
    change_key: str
    props: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True)
class Cursor:
    mailbox: str
    calendar: str
    start: datetime
    end: datetime
    generation: int
    since: int  # version the round reads changes after
    rows: tuple[tuple[str, bool], ...] = ()  # (event id, removed?) still to send
    final: bool = False  # a deltaLink (the next round), not a nextLink


@dataclass
class Grant:
    kind: str  # "user" | "app"
    subject: str  # the user's email, or the client id
    scopes: frozenset[str]  # delegated scope names or app roles
    expires: float


@dataclass
class Refresh:
    email: str
    scopes: frozenset[str]
    revoked: bool = False
    expired: bool = False


@dataclass
class Device:
    device_code: str
    user_code: str
    client_id: str
    scopes: frozenset[str]
    email: str | None = None  # set when the user approved
    polls: int = 0


class FakeGraph:
    """The server. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        *,
        seed: int = 7,
        tenant: str = "contoso.onmicrosoft.com",
        client_id: str = "11111111-2222-3333-4444-555555555555",
        client_secret: str = "s3cret-client-value",
        mailbox_timezone: str = "UTC",
    ) -> None:
        self.tenant = tenant
        self.tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        self.client_id = client_id
        self.client_secret = client_secret
        self.mailbox_timezone = mailbox_timezone
        self.lock = threading.RLock()
        self.seed = seed
        self.authority_host = LOGIN_HOST
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.root = f"{self.base}/v1.0"

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.rng = random.Random(self.seed)
            self.versions = itertools.count(1)
            self.version = 0
            self.mailboxes: dict[str, set[str]] = {}  # mailbox -> calendar ids
            self.settings: dict[str, dict[str, Any]] = {}  # mailbox -> mailboxSettings
            self.users: dict[str, set[str]] = {}  # user -> consented delegated scopes
            self.events: dict[str, Stored] = {}
            self.cursors: dict[str, Cursor] = {}
            self.generation = 0
            self.expiry_code = "syncStateNotFound"
            self.access: dict[str, Grant] = {}
            self.refresh: dict[str, Refresh] = {}
            self.devices: dict[str, Device] = {}
            self.app_roles: set[str] = set(ALL_ROLES)
            self.token_lifetime = 3600
            self.pending_polls = 0
            self.default_page = 10
            self.echo_original_timezones = False
            self.fault_rate = 0.0
            self.fault_kinds: tuple[str, ...] = ("429", "503", "500", "drop", "drop_after")
            self.item_fault_rate: float | None = None
            self.scripted: list[dict[str, Any]] = []
            self.delay = 0.0
            self.concurrency_limit = 4
            # counters
            self.graph_requests = 0
            self.batch_items = 0
            self.token_requests = 0
            self.log: list[tuple[str, str]] = []
            self.faults: dict[str, int] = {}
            self.inflight: dict[str, int] = {}
            self.max_inflight: dict[str, int] = {}
            self.concurrency_rejections = 0
            self.batch_sizes: list[int] = []
            self.sent: list[tuple[str, bytes]] = []
            self.declines: list[tuple[str, str, str]] = []  # mailbox, event id, comment
            self.prefer_seen: list[str] = []
            self.issued: list[str] = []  # every secret handed out, to search logs for

    def reset_counters(self) -> None:
        with self.lock:
            self.graph_requests = self.batch_items = self.token_requests = 0
            self.log.clear()
            self.faults.clear()
            self.batch_sizes.clear()
            self.max_inflight.clear()
            self.prefer_seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeGraph:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def http_client(self) -> LoopbackSession:
        """A requests session for msal's ``http_client``: the identity platform is here."""
        return LoopbackSession(self.base, {self.authority_host, LOGIN_HOST})

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        return session

    # -- the directory ------------------------------------------------------------------
    def add_mailbox(self, mailbox: str, *calendars: str) -> None:
        with self.lock:
            self.mailboxes.setdefault(mailbox.lower(), {"primary"}).update(calendars)

    def add_user(self, email_: str, consented: Iterable[str] = ALL_DELEGATED) -> None:
        with self.lock:
            self.add_mailbox(email_)
            self.users[email_.lower()] = set(consented)

    def revoke_consent(self, email_: str, scope: str) -> None:
        with self.lock:
            self.users[email_.lower()].discard(scope)

    def revoke_refresh_tokens(self, email_: str) -> None:
        with self.lock:
            for rt in self.refresh.values():
                if rt.email == email_.lower():
                    rt.revoked = True

    def expire_refresh_tokens(self, email_: str) -> None:
        with self.lock:
            for rt in self.refresh.values():
                if rt.email == email_.lower():
                    rt.expired = True

    def revoke_access_tokens(self) -> None:
        """Every access token handed out so far is refused (401) from now on."""
        with self.lock:
            self.access.clear()

    def approve(self, user_code: str, email_: str) -> None:
        """The user opened the verification page, entered the code and signed in."""
        with self.lock:
            for device in self.devices.values():
                if device.user_code == user_code:
                    device.email = email_.lower()
                    return
        raise KeyError(user_code)

    # -- calendars as the user edits them ---------------------------------------------------
    def put(self, mailbox: str, calendar: str, data: Mapping[str, Any]) -> Stored:
        """Create or replace an event (``data`` is a Graph resource; ``id`` optional)."""
        with self.lock:
            self.add_mailbox(mailbox, calendar)
            resource = {k: v for k, v in data.items() if k != "singleValueExtendedProperties"}
            event_id = str(resource.pop("id", None) or self._new_id())
            props = {
                str(p["id"]).casefold(): str(p["value"])
                for p in data.get("singleValueExtendedProperties") or ()
            }
            stored = self.events.get(event_id)
            if stored is not None and not stored.deleted:
                if stored.data == resource and stored.props == props:
                    return stored
                stored.data, stored.props = resource, props
                self._bump(stored)
                return stored
            version = self._next()
            stored = Stored(event_id, mailbox.lower(), calendar, resource, version, "", props)
            stored.change_key = self._change_key(stored)
            self.events[event_id] = stored
            return stored

    def edit(self, event_id: str, **fields: Any) -> Stored:
        """The user changes some fields of an event in Outlook (its properties stay)."""
        with self.lock:
            stored = self.events[event_id]
            stored.data.update(fields)
            self._bump(stored)
            return stored

    def remove(self, event_id: str) -> None:
        with self.lock:
            stored = self.events.get(event_id)
            if stored is not None and not stored.deleted:
                stored.deleted = True
                self._bump(stored)

    def replace(self, mailbox: str, calendar: str, events: Iterable[Mapping[str, Any]]) -> None:
        """The calendar now holds exactly ``events`` (unchanged ones keep their version)."""
        with self.lock:
            keep = set()
            for data in events:
                keep.add(self.put(mailbox, calendar, data).id)
            for stored in list(self.events.values()):
                if (
                    stored.mailbox == mailbox.lower()
                    and stored.calendar == calendar
                    and not stored.deleted
                    and stored.id not in keep
                ):
                    self.remove(stored.id)

    def live(self, mailbox: str, calendar: str | None = None) -> list[Stored]:
        with self.lock:
            return [
                s
                for s in self.events.values()
                if not s.deleted
                and s.mailbox == mailbox.lower()
                and (calendar is None or s.calendar == calendar)
            ]

    def expire_deltas(self, code: str = "syncStateNotFound") -> None:
        """Every delta and skip token handed out so far is expired (410 ``code``)."""
        with self.lock:
            self.generation += 1
            self.expiry_code = code

    def fail_next(
        self,
        status: int | str,
        *,
        code: str = "",
        retry_after: str | None = None,
        times: int = 1,
        path: str = "",
        method: str = "",
        after: bool = False,
    ) -> None:
        """The next ``times`` Graph requests matching ``method``/``path`` (a substring)
        answer ``status`` ("drop" / "drop_after": close the connection before / after the
        work); ``after``: do the work first, then answer ``status`` (a lost answer)."""
        with self.lock:
            self.scripted.append(
                {
                    "status": status,
                    "code": code,
                    "retry_after": retry_after,
                    "times": times,
                    "path": path,
                    "method": method,
                    "after": after,
                }
            )

    # -- internals: versions ------------------------------------------------------------
    def _next(self) -> int:
        self.version = next(self.versions)
        return self.version

    def _bump(self, stored: Stored) -> None:
        stored.version = self._next()
        stored.change_key = self._change_key(stored)

    def _change_key(self, stored: Stored) -> str:
        digest = hashlib.sha256(f"{stored.id}:{stored.version}".encode()).digest()
        return base64.b64encode(digest[:12]).decode()

    def _new_id(self) -> str:
        return "AAMkAG" + _b64url(secrets.token_bytes(18)).replace("-", "a").replace("_", "b")

    def _range(self, stored: Stored) -> tuple[datetime, datetime]:
        data = stored.data
        if data.get("isAllDay"):
            tz = ZoneInfo(self.mailbox_timezone)
            first = date.fromisoformat(str(data["start"]["dateTime"])[:10])
            last = date.fromisoformat(str(data["end"]["dateTime"])[:10])
            return (
                datetime.combine(first, datetime.min.time(), tz),
                datetime.combine(last, datetime.min.time(), tz),
            )
        return _parse(data["start"]), _parse(data["end"])

    def _in_view(self, stored: Stored, start: datetime, end: datetime) -> bool:
        if stored.data.get("type") == "seriesMaster":
            return False
        s, e = self._range(stored)
        return (s < end and start < e) or (s == e and start <= s < end)

    def resource(
        self, stored: Stored, zone: str | None, expand: str | None = None
    ) -> dict[str, Any]:
        """The event as Graph returns it."""
        data = dict(stored.data)
        out: dict[str, Any] = {
            "@odata.etag": f'W/"{stored.change_key}"',
            "id": stored.id,
            "changeKey": stored.change_key,
            "categories": [],
            "subject": "",
            "isAllDay": False,
            "isCancelled": False,
            "isOrganizer": True,
            "showAs": "busy",
            "type": "singleInstance",
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "attendees": [],
            "seriesMasterId": None,
        }
        out.update(data)
        if not self.echo_original_timezones and not data.get("isAllDay"):
            target = zone or "UTC"
            s, e = self._range(stored)
            out["start"], out["end"] = _render(s, target), _render(e, target)
            out["originalStartTimeZone"] = data["start"].get("timeZone", "UTC")
            out["originalEndTimeZone"] = data["end"].get("timeZone", "UTC")
        elif data.get("isAllDay"):
            target = zone or "UTC"
            out["start"] = {
                "dateTime": str(data["start"]["dateTime"])[:10] + "T00:00:00.0000000",
                "timeZone": target,
            }
            out["end"] = {
                "dateTime": str(data["end"]["dateTime"])[:10] + "T00:00:00.0000000",
                "timeZone": target,
            }
        if expand:
            wanted = re.findall(r"id eq '([^']+)'", expand)
            props = [
                {"id": pid, "value": stored.props[pid.casefold()]}
                for pid in wanted
                if pid.casefold() in stored.props
            ]
            if props:
                out["singleValueExtendedProperties"] = props
        return out

    # -- HTTP ---------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            if split.path.startswith("/v1.0/"):
                status, extra, body = self._graph(method, split.path[5:], split.query, headers, raw)
            else:
                status, extra, body = self._identity(method, split.path, raw)
        except Drop:
            handler.close_connection = True
            return
        payload = b""
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        for name, value in extra.items():
            handler.send_header(name, value)
        if body is not None:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    # -- identity -----------------------------------------------------------------------
    def _identity(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return 404, {}, {"error": "not_found"}
        tenant, rest = parts[0], "/".join(parts[1:])
        if tenant not in (self.tenant, self.tenant_id, "organizations", "common"):
            return (
                400,
                {},
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
            )
        host = f"https://{self.authority_host}/{tenant}"
        if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return (
                200,
                {},
                {
                    "issuer": f"https://{self.authority_host}/{self.tenant_id}/v2.0",
                    "authorization_endpoint": f"{host}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{host}/oauth2/v2.0/token",
                    "device_authorization_endpoint": f"{host}/oauth2/v2.0/devicecode",
                    "response_types_supported": ["code", "id_token", "code id_token"],
                    "tenant_region_scope": "EU",
                },
            )
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self.lock:
            self.token_requests += 1
            if method == "POST" and rest == "oauth2/v2.0/devicecode":
                return self._devicecode(form)
            if method == "POST" and rest == "oauth2/v2.0/token":
                return self._token(form)
        return 404, {}, {"error": "not_found"}

    def _scopes(self, text: str) -> frozenset[str]:
        names = set()
        for scope in text.split():
            if scope in ("openid", "profile", "offline_access"):
                continue
            names.add(scope[len(GRAPH_SCOPE) :] if scope.startswith(GRAPH_SCOPE) else scope)
        return frozenset(names)

    def _devicecode(self, form: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        if form.get("client_id") != self.client_id:
            return (
                400,
                {},
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application not found in the directory.",
                    "error_codes": [700016],
                },
            )
        device_code = secrets.token_urlsafe(24)
        user_code = "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        self.devices[device_code] = Device(
            device_code, user_code, self.client_id, self._scopes(form.get("scope", ""))
        )
        self.issued.append(device_code)
        url = "https://microsoft.com/devicelogin"
        return (
            200,
            {},
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": url,
                "expires_in": 900,
                "interval": 0,
                "message": f"To sign in, use a web browser to open the page {url} and enter the code {user_code} to authenticate.",
            },
        )

    def _token(self, form: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        grant = form.get("grant_type", "")
        if form.get("client_id") != self.client_id:
            return (
                400,
                {},
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application not found.",
                    "error_codes": [700016],
                },
            )
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return (
                    400,
                    {},
                    {
                        "error": "expired_token",
                        "error_description": "AADSTS70019: Verification code expired.",
                        "error_codes": [70019],
                    },
                )
            device.polls += 1
            if device.email is None or device.polls <= self.pending_polls:
                return (
                    400,
                    {},
                    {
                        "error": "authorization_pending",
                        "error_description": "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
                        "error_codes": [70016],
                    },
                )
            del self.devices[device.device_code]
            self.users.setdefault(device.email, set(ALL_DELEGATED))
            self.users[device.email] |= set(device.scopes) & set(ALL_DELEGATED)  # consented now
            return 200, {}, self._user_tokens(device.email, device.scopes)
        if grant == "refresh_token":
            rt = self.refresh.get(form.get("refresh_token", ""))
            if rt is None or rt.revoked:
                return (
                    400,
                    {},
                    {
                        "error": "invalid_grant",
                        "error_description": "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.",
                        "error_codes": [50173],
                    },
                )
            if rt.expired:
                return (
                    400,
                    {},
                    {
                        "error": "invalid_grant",
                        "error_description": "AADSTS700082: The refresh token has expired due to inactivity.",
                        "error_codes": [700082],
                    },
                )
            wanted = self._scopes(form.get("scope", ""))
            missing = wanted - self.users.get(rt.email, set())
            if missing:
                return (
                    400,
                    {},
                    {
                        "error": "invalid_grant",
                        "suberror": "consent_required",
                        "error_description": f"AADSTS65001: The user or administrator has not consented to use the application (missing {' '.join(sorted(missing))}).",
                        "error_codes": [65001],
                    },
                )
            return 200, {}, self._user_tokens(rt.email, wanted)
        if grant == "client_credentials":
            if form.get("client_secret") != self.client_secret:
                return (
                    401,
                    {},
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                        "error_codes": [7000215],
                    },
                )
            token = _jwt(
                {
                    "aud": "https://graph.microsoft.com",
                    "tid": self.tenant_id,
                    "appid": self.client_id,
                    "roles": sorted(self.app_roles),
                    "exp": int(time.time()) + self.token_lifetime,
                }
            )
            self.access[token] = Grant(
                "app", self.client_id, frozenset(self.app_roles), time.time() + self.token_lifetime
            )
            self.issued.append(token)
            return (
                200,
                {},
                {
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                    "ext_expires_in": self.token_lifetime,
                    "access_token": token,
                },
            )
        return 400, {}, {"error": "unsupported_grant_type"}

    def _user_tokens(self, email_: str, scopes: frozenset[str]) -> dict[str, Any]:
        granted = frozenset(scopes & self.users.get(email_, set()))
        now = int(time.time())
        oid = hashlib.sha256(email_.encode()).hexdigest()[:32]
        oid = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:32]}"
        access = _jwt(
            {
                "aud": "https://graph.microsoft.com",
                "tid": self.tenant_id,
                "oid": oid,
                "upn": email_,
                "scp": " ".join(sorted(granted)),
                "exp": now + self.token_lifetime,
            }
        )
        refresh = "0.AR" + secrets.token_urlsafe(40)
        self.access[access] = Grant("user", email_, granted, time.time() + self.token_lifetime)
        self.refresh[refresh] = Refresh(email_, granted)
        self.issued += [access, refresh]
        id_token = _jwt(
            {
                "iss": f"https://{self.authority_host}/{self.tenant_id}/v2.0",
                "aud": self.client_id,
                "sub": oid,
                "oid": oid,
                "tid": self.tenant_id,
                "preferred_username": email_,
                "name": email_.split("@", maxsplit=1)[0].title(),
                "iat": now,
                "exp": now + 3600,
            }
        )
        return {
            "token_type": "Bearer",
            "scope": " ".join(GRAPH_SCOPE + s for s in sorted(granted)),
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64url(json.dumps({"uid": oid, "utid": self.tenant_id}).encode()),
        }

    # -- Graph --------------------------------------------------------------------------
    def _graph(
        self, method: str, path: str, query: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.graph_requests += 1
            self.log.append((method, unquote(path) + ("?" + unquote(query) if query else "")))
            who = self._who(headers.get("authorization", ""))
        if who is None:
            return (
                401,
                {},
                _error(
                    "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
                ),
            )
        fault = self._fault(method, path, items=False)
        after = False
        if fault is not None:
            if fault["status"] == "drop":
                raise Drop
            if fault["status"] == "drop_after" or fault.get("after"):
                after = True
            else:
                return _fault_answer(fault)
        if path == "/$batch" and method == "POST":
            result = self._batch(who, raw)
        else:
            mailbox = self._mailbox_of(who, path)
            entered = self._enter({mailbox: 1} if mailbox else {})
            try:
                if not entered:
                    result = (
                        429,
                        {"Retry-After": "1"},
                        _error("ApplicationThrottled", "MailboxConcurrency limit exceeded"),
                    )
                else:
                    result = self._route(who, method, path, query, headers, raw)
            finally:
                if entered:
                    self._exit({mailbox: 1} if mailbox else {})
        if after:
            if fault is not None and fault["status"] != "drop_after":
                return _fault_answer(fault)
            raise Drop
        return result

    def _fault(self, method: str, path: str, items: bool) -> dict[str, Any] | None:
        with self.lock:
            for script in self.scripted:
                if (
                    script["times"] > 0
                    and script["path"] in path
                    and script["method"] in ("", method)
                ):
                    script["times"] -= 1
                    kind = str(script["status"])
                    self.faults[kind] = self.faults.get(kind, 0) + 1
                    return script
            rate = (
                self.item_fault_rate
                if items and self.item_fault_rate is not None
                else self.fault_rate
            )
            if rate and self.rng.random() < rate:
                kinds = ("429", "503") if items else self.fault_kinds
                kind = self.rng.choice(kinds)
                self.faults[kind] = self.faults.get(kind, 0) + 1
                if kind in ("drop", "drop_after"):
                    return {"status": kind}
                status = int(kind)
                return {"status": status, "code": "", "retry_after": None if status == 500 else "1"}
        return None

    def _enter(self, counts: Mapping[str, int]) -> bool:
        with self.lock:
            if any(self.inflight.get(m, 0) + n > self.concurrency_limit for m, n in counts.items()):
                self.concurrency_rejections += 1
                return False
            for m, n in counts.items():
                self.inflight[m] = self.inflight.get(m, 0) + n
                self.max_inflight[m] = max(self.max_inflight.get(m, 0), self.inflight[m])
        if self.delay:
            time.sleep(self.delay)
        return True

    def _exit(self, counts: Mapping[str, int]) -> None:
        with self.lock:
            for m, n in counts.items():
                self.inflight[m] -= n

    def _who(self, authorization: str) -> Grant | None:
        if not authorization.startswith("Bearer "):
            return None
        grant = self.access.get(authorization[7:])
        if grant is None or grant.expires < time.time():
            return None
        return grant

    def _mailbox_of(self, who: Grant, path: str) -> str:
        if path.startswith("/me/") or path == "/me":
            return who.subject if who.kind == "user" else ""
        match = re.match(r"^/users/([^/]+)", path)
        return unquote(match.group(1)).lower() if match else ""

    def _batch(self, who: Grant, raw: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            requests_ = json.loads(raw)["requests"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, _error("BadRequest", "Invalid batch payload.")
        if len(requests_) > 20:
            return 400, {}, _error("BadRequest", "The number of batch requests exceeds 20.")
        ids = [str(r.get("id")) for r in requests_]
        if len(set(ids)) != len(ids):
            return 400, {}, _error("BadRequest", "Batch request ids must be unique.")
        with self.lock:
            self.batch_items += len(requests_)
            self.batch_sizes.append(len(requests_))
        counts: dict[str, int] = {}
        for r in requests_:
            mailbox = self._mailbox_of(who, urlsplit(str(r.get("url", ""))).path)
            if mailbox:
                counts[mailbox] = counts.get(mailbox, 0) + 1
        entered = self._enter(counts)
        answers = []
        try:
            for r in requests_:
                split = urlsplit(str(r.get("url", "")))
                item_headers = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
                fault = self._fault(str(r.get("method")), split.path, items=True)
                if not entered:
                    status, extra, body = (
                        429,
                        {"Retry-After": "1"},
                        _error("ApplicationThrottled", "MailboxConcurrency limit exceeded"),
                    )
                elif fault is not None:
                    status, extra, body = _fault_answer(fault)
                else:
                    body_raw = json.dumps(r["body"]).encode() if "body" in r else b""
                    status, extra, body = self._route(
                        who,
                        str(r.get("method", "GET")),
                        split.path,
                        split.query,
                        item_headers,
                        body_raw,
                    )
                answers.append(
                    {"id": r.get("id"), "status": status, "headers": extra, "body": body}
                )
        finally:
            if entered:
                self._exit(counts)
        with self.lock:
            self.rng.shuffle(answers)  # Graph answers in any order
        return 200, {}, {"responses": answers}

    def _route(
        self,
        who: Grant,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        raw: bytes,
    ) -> tuple[int, dict[str, str], Any]:
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        prefer = headers.get("prefer", "")
        with self.lock:
            self.prefer_seen.append(prefer)
        zone_match = re.search(r'outlook\.timezone="([^"]+)"', prefer)
        zone = zone_match.group(1) if zone_match else None
        page_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        page = int(page_match.group(1)) if page_match else self.default_page
        match = re.match(r"^/(me|users/([^/]+))(/.*)?$", path)
        if not match:
            return 400, {}, _error("BadRequest", f"Resource not found for the segment '{path}'.")
        if match.group(1) == "me":
            if who.kind != "user":
                return (
                    400,
                    {},
                    _error(
                        "BadRequest",
                        "/me request is only valid with delegated authentication flow.",
                    ),
                )
            mailbox = who.subject
        else:
            mailbox = unquote(match.group(2)).lower()
            if who.kind == "user" and mailbox != who.subject:
                return (
                    403,
                    {},
                    _error(
                        "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                    ),
                )
        rest = match.group(3) or ""
        with self.lock:
            if mailbox not in self.mailboxes:
                return (
                    404,
                    {},
                    _error("ErrorInvalidUser", f"The requested user '{mailbox}' is invalid."),
                )
        need = {"/sendMail": "Mail.Send", "/mailboxSettings": "MailboxSettings.Read"}.get(
            rest, "Calendars.ReadWrite"
        )
        if need not in who.scopes and not (
            need == "Calendars.ReadWrite" and method == "GET" and "Calendars.Read" in who.scopes
        ):
            return (
                403,
                {},
                _error("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
            )
        calendar = "primary"
        prefix = f"{self.root}/{match.group(1)}"
        cal_match = re.match(r"^/calendars/([^/]+)(/.*)$", rest)
        if cal_match:
            calendar, rest = unquote(cal_match.group(1)), cal_match.group(2)
            prefix += f"/calendars/{cal_match.group(1)}"
            with self.lock:
                if calendar not in self.mailboxes[mailbox]:
                    return (
                        404,
                        {},
                        _error(
                            "ErrorItemNotFound", "The specified object was not found in the store."
                        ),
                    )
        with self.lock:
            if rest == "/calendarView/delta" and method == "GET":
                if "$expand" in params or "$select" in params:
                    return (
                        400,
                        {},
                        _error("BadRequest", "$expand and $select are not supported on delta."),
                    )
                return self._delta(prefix, mailbox, calendar, params, zone, page)
            if rest == "/calendarView" and method == "GET":
                return self._view(prefix, mailbox, calendar, params, zone, page)
            if rest == "/events" and method == "POST":
                return self._create(mailbox, calendar, raw, zone)
            if rest == "/events" and method == "GET":
                return self._list(mailbox, calendar, params)
            if rest == "/mailboxSettings" and method == "GET":
                return 200, {}, self.settings.get(mailbox, DEFAULT_SETTINGS)
            if rest == "/sendMail" and method == "POST":
                return self._send_mail(mailbox, headers, raw)
            event_match = re.match(r"^/events/([^/]+)(/decline)?$", rest)
            if event_match:
                event_id = unquote(event_match.group(1))
                stored = self.events.get(event_id)
                if stored is None or stored.deleted or stored.mailbox != mailbox:
                    return (
                        404,
                        {},
                        _error(
                            "ErrorItemNotFound", "The specified object was not found in the store."
                        ),
                    )
                if event_match.group(2) and method == "POST":
                    return self._decline(stored, raw)
                if method == "GET":
                    return 200, {}, self.resource(stored, zone, params.get("$expand"))
                if method == "PATCH":
                    return self._patch(stored, raw, zone)
                if method == "DELETE":
                    self.remove(stored.id)
                    return 204, {}, None
        return 405, {}, _error("BadRequest", f"Unsupported {method} {path}.")

    # -- Graph: calendar views ----------------------------------------------------------
    def _delta(
        self,
        prefix: str,
        mailbox: str,
        calendar: str,
        params: Mapping[str, str],
        zone: str | None,
        page: int,
    ) -> tuple[int, dict[str, str], Any]:
        token = params.get("$skiptoken") or params.get("$deltatoken")
        if token is not None:
            cursor = self.cursors.get(token)
            if cursor is None or cursor.mailbox != mailbox or cursor.calendar != calendar:
                return (
                    400,
                    {},
                    _error("BadRequest", "The delta token is not valid for this resource."),
                )
            if cursor.generation != self.generation:
                return (
                    410,
                    {},
                    _error(
                        self.expiry_code, "The sync state is no longer valid. Start a new sync."
                    ),
                )
            if cursor.final:  # a new round: what changed since the last one
                rows = tuple(
                    (s.id, s.deleted or not self._in_view(s, cursor.start, cursor.end))
                    for s in sorted(self.events.values(), key=lambda s: s.version)
                    if s.mailbox == mailbox and s.calendar == calendar and s.version > cursor.since
                )
                cursor = Cursor(
                    mailbox, calendar, cursor.start, cursor.end, self.generation, self.version, rows
                )
        else:
            try:
                start = datetime.fromisoformat(params["startDateTime"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(params["endDateTime"].replace("Z", "+00:00"))
            except (KeyError, ValueError):
                return (
                    400,
                    {},
                    _error("ErrorInvalidParameter", "startDateTime and endDateTime are required."),
                )
            if start.tzinfo is None:
                start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
            rows = tuple(
                (s.id, False)
                for s in sorted(self.live(mailbox, calendar), key=lambda s: s.version)
                if self._in_view(s, start, end)
            )
            cursor = Cursor(mailbox, calendar, start, end, self.generation, self.version, rows)
        now, later = cursor.rows[:page], cursor.rows[page:]
        value = []
        for event_id, removed in now:
            stored = self.events[event_id]
            if removed or stored.deleted or not self._in_view(stored, cursor.start, cursor.end):
                value.append(
                    {
                        "@odata.type": "#microsoft.graph.event",
                        "id": event_id,
                        "@removed": {"reason": "deleted" if stored.deleted else "changed"},
                    }
                )
            else:
                value.append(self.resource(stored, zone))
        token = secrets.token_urlsafe(16)
        body: dict[str, Any] = {
            "@odata.context": f"{self.root}/$metadata#Collection(event)",
            "value": value,
        }
        if later:
            self.cursors[token] = Cursor(
                cursor.mailbox,
                calendar,
                cursor.start,
                cursor.end,
                cursor.generation,
                cursor.since,
                later,
            )
            body["@odata.nextLink"] = f"{prefix}/calendarView/delta?$skiptoken={token}"
        else:
            self.cursors[token] = Cursor(
                cursor.mailbox,
                calendar,
                cursor.start,
                cursor.end,
                cursor.generation,
                cursor.since,
                (),
                final=True,
            )
            body["@odata.deltaLink"] = f"{prefix}/calendarView/delta?$deltatoken={token}"
        return 200, {"Preference-Applied": f"odata.maxpagesize={page}"}, body

    def _view(
        self,
        prefix: str,
        mailbox: str,
        calendar: str,
        params: Mapping[str, str],
        zone: str | None,
        page: int,
    ) -> tuple[int, dict[str, str], Any]:
        try:
            start = datetime.fromisoformat(params["startDateTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(params["endDateTime"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return (
                400,
                {},
                _error("ErrorInvalidParameter", "startDateTime and endDateTime are required."),
            )
        skip = int(params.get("$skip", "0"))
        found = sorted(
            (s for s in self.live(mailbox, calendar) if self._in_view(s, start, end)),
            key=lambda s: (self._range(s)[0], s.id),
        )
        body: dict[str, Any] = {
            "value": [self.resource(s, zone) for s in found[skip : skip + page]]
        }
        if skip + page < len(found):
            body["@odata.nextLink"] = (
                f"{prefix}/calendarView?startDateTime={params['startDateTime']}"
                f"&endDateTime={params['endDateTime']}&$skip={skip + page}"
            )
        return 200, {}, body

    def _list(
        self, mailbox: str, calendar: str, params: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        condition = params.get("$filter", "")
        match = re.search(r"ep/id eq '([^']+)' and ep/value eq '((?:[^']|'')*)'", condition)
        found = self.live(mailbox, None if calendar == "primary" else calendar)
        if match:
            pid, value = match.group(1).casefold(), match.group(2).replace("''", "'")
            found = [s for s in found if s.props.get(pid) == value]
        return 200, {}, {"value": [{"id": s.id} for s in found]}

    # -- Graph: writes ------------------------------------------------------------------
    def _create(
        self, mailbox: str, calendar: str, raw: bytes, zone: str | None
    ) -> tuple[int, dict[str, str], Any]:
        data = json.loads(raw or b"{}")
        if "start" not in data or "end" not in data:
            return 400, {}, _error("ErrorInvalidRequest", "start and end are required.")
        transaction = data.get("transactionId")
        if transaction:
            for stored in self.live(mailbox):
                if stored.data.get("transactionId") == transaction:
                    return 201, {}, self.resource(stored, zone)  # the retry of a create
        data.setdefault("organizer", {"emailAddress": {"address": mailbox, "name": mailbox}})
        data.setdefault("isOrganizer", True)
        stored = self.put(mailbox, calendar, data)
        return 201, {}, self.resource(stored, zone)

    def _patch(
        self, stored: Stored, raw: bytes, zone: str | None
    ) -> tuple[int, dict[str, str], Any]:
        data = json.loads(raw or b"{}")
        for prop in data.pop("singleValueExtendedProperties", None) or ():
            stored.props[str(prop["id"]).casefold()] = str(prop["value"])
        stored.data.update(data)
        self._bump(stored)
        return 200, {}, self.resource(stored, zone)

    def _decline(self, stored: Stored, raw: bytes) -> tuple[int, dict[str, str], Any]:
        if stored.data.get("isOrganizer", True):
            return (
                400,
                {},
                _error(
                    "ErrorInvalidRequest",
                    "Your request can't be completed. You can't respond to this meeting because you're the meeting organizer.",
                ),
            )
        body = json.loads(raw or b"{}")
        stored.data["responseStatus"] = {
            "response": "declined",
            "time": datetime.now(UTC).isoformat(),
        }
        self._bump(stored)
        self.declines.append((stored.mailbox, stored.id, str(body.get("comment", ""))))
        return 202, {}, None

    def _send_mail(
        self, mailbox: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        kind = headers.get("content-type", "").split(";")[0].strip()
        if kind == "text/plain":
            try:
                mime = base64.b64decode(raw, validate=True)
                email.message_from_bytes(mime)
            except ValueError:
                return (
                    400,
                    {},
                    _error(
                        "ErrorMimeContentInvalidBase64String",
                        "Invalid base64 string for MIME content.",
                    ),
                )
            self.sent.append((mailbox, mime))
            return 202, {}, None
        if kind == "application/json":
            self.sent.append((mailbox, raw))
            return 202, {}, None
        return 415, {}, _error("UnsupportedMediaType", "Unsupported content type.")


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).isoformat(),
                "request-id": secrets.token_hex(8),
            },
        }
    }


def _fault_answer(fault: Mapping[str, Any]) -> tuple[int, dict[str, str], Any]:
    status = int(fault["status"])
    extra = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") else {}
    code = fault.get("code") or {429: "TooManyRequests", 503: "ServiceNotAvailable"}.get(
        status, "InternalServerError"
    )
    return status, extra, _error(code, "Injected by the fake.")


class LoopbackSession(requests.Session):
    """A requests session that sends ``https://login.microsoftonline.com/…`` (the
    authority msal talks to) to the fake instead: msal's ``http_client`` in tests."""

    def __init__(self, base: str, hosts: Iterable[str]) -> None:
        super().__init__()
        self.trust_env = False
        self.base = base
        self.hosts = set(hosts)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        split = urlsplit(text)
        if split.scheme == "https" and split.hostname in self.hosts:
            text = self.base + split.path + (f"?{split.query}" if split.query else "")
        return super().request(method, text, *args, **kwargs)


def iter_secrets(fake: FakeGraph) -> Iterator[str]:
    """Every token and secret the fake handed out or holds (to search logs for)."""
    yield fake.client_secret
    yield from fake.issued
