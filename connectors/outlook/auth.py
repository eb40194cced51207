"""Microsoft 365 / Outlook calendars and mail through Microsoft Graph (msal + requests).

This is the only module that imports msal. Graph is plain HTTP through ``requests``.

Auth (``accounts[].auth``)
--------------------------
``device_code`` (default)
    ``steadyhand connect outlook --person EMAIL`` runs :func:`connect`: msal's device-code
    flow against ``https://login.microsoftonline.com/{tenant}``; the msal token cache is
    stored encrypted in the :class:`~connectors.secrets.TokenStore` under
    ``outlook:{account}:{email}``. Later runs call ``acquire_token_silent`` (a refresh when
    the access token is stale) and write the cache back, encrypted, when it changed.
    Paths are ``/me/…``: each person's own token reads their own mailbox.
``client_credentials``
    App-only (admin consent): ``ConfidentialClientApplication`` with the secret from
    ``client_secret_env`` and scope ``https://graph.microsoft.com/.default``; paths are
    ``/users/{email}/…``.
``access_token``
    A token managed elsewhere, read from ``token_env`` on every request; paths are
    ``/users/{email}/…`` (so a token that cannot read that mailbox fails loudly instead of
    reading the wrong one).

Delegated scopes: ``Calendars.ReadWrite``, ``MailboxSettings.Read``, ``Mail.Send`` (msal
adds ``offline_access``, ``openid`` and ``profile`` itself). ``docs/outlook.md`` says why.

Sync
----
``calendarView/delta`` for the window with ``Prefer: odata.maxpagesize=N,
outlook.timezone="UTC"``, following ``@odata.nextLink`` to the ``@odata.deltaLink``, which is
kept as :attr:`SyncState.token` (with the window: a new window starts a new round). Later
syncs start from the delta link; ``@removed`` rows become removed ids; an expired round
(410, ``syncStateNotFound``, ``resyncRequired``) restarts a full sync (``full=True``).
A link that does not point into ``graph_endpoint`` is never followed (the bearer token goes
only to Graph).

**The block tag.** steadyhand marks its events with a ``singleValueExtendedProperty``
(:data:`TAG_PROPERTY`). Delta cannot ``$expand`` it, so the connector keeps a map
*event id → block id* in :attr:`SyncState.fingerprint` (JSON). An event whose id is not in
the map but which is in the ``steadyhand`` category (all our blocks are) is read once with
``GET /events/{id}?$expand=singleValueExtendedProperties(...)``: the property, not the
category, decides ownership. User events therefore never cost an extra request.

Writes
------
Create with a ``transactionId`` derived from the block id and slot (a retried create makes
one event: Graph answers the retry with the event it already made), move after comparing
``changeKey`` (a different one is a :class:`TransientError`: re-read and re-plan), delete
(404 counts as done). Only events that carry the tag are ever changed (:class:`NotOwned`).
:meth:`OutlookCalendar.decline_conflicts` defends focus blocks (Graph has no auto-decline).

Limits
------
429 and 5xx are :class:`TransientError` carrying ``Retry-After`` and are retried with
:func:`connectors.retry.retrying`; at most ``max_concurrent_per_mailbox`` (Exchange allows
4) requests per mailbox are in flight at once, counting each item of a ``$batch``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msal  # type: ignore[import-untyped]
import requests

from connectors.base import AccountSpec
from connectors.retry import Backoff, retrying
from connectors.secrets import TokenStore, guard_library_logs
from worker.core.errors import (
    ConnectorError,
    NotOwned,
    PermanentError,
    Problem,
    TransientError,
    UserError,
)
from worker.core.model import (
    UTC,
    WEEKDAYS,
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


# msal masks tokens in its debug log but not the device code: redact at the source (each
# msal logger, as a logger's filter does not reach its children).
guard_library_logs()

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
LOGIN = "https://login.microsoftonline.com"
GRAPH_RESOURCE = "https://graph.microsoft.com/"
#: Delegated permissions, least that do the job (msal adds offline_access itself).
DELEGATED = ("Calendars.ReadWrite", "MailboxSettings.Read", "Mail.Send")
SCOPES = [GRAPH_RESOURCE + name for name in DELEGATED]
APP_SCOPES = [GRAPH_RESOURCE + ".default"]
#: Application permissions an app-only account needs.
APP_ROLES = ("Calendars.ReadWrite", "Mail.Send")
AUTH_MODES = ("device_code", "client_credentials", "access_token")

#: steadyhand's block tag: a string MAPI named property in our own property set.
TAG_PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name steadyhand"
#: Every block is in this category too: it marks events worth a look for the tag.
CATEGORY = "steadyhand"
#: Categories that make a user's event a focus event (Graph has no focus event type).
FOCUS_CATEGORIES = frozenset({"focus time", "focus"})
#: Namespace of the transactionId of a block's create (uuid5 of the block id and slot).
TRANSACTION_NAMESPACE = uuid.UUID("66f5a359-4659-4830-9070-00047ec6ac6e")
DEFAULT_DECLINE_MESSAGE = (
    "This time is protected focus time. Could we find another slot? (declined by steadyhand)"
)

MAX_BATCH = 20  # Graph's JSON batching limit
DEFAULT_BACKOFF = Backoff()
PAGE_SIZE = 100  # Prefer: odata.maxpagesize
RESTART_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
MAILBOX_CODES = frozenset(
    {"errorinvaliduser", "mailboxnotenabledforrestapi", "mailboxnotsupportedforrestapi"}
)
_RESPONSES = {
    "organizer": Response.ORGANIZER,
    "accepted": Response.ACCEPTED,
    "tentativelyaccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "notresponded": Response.NEEDS_ACTION,
    "none": Response.NEEDS_ACTION,
}
_PENDING = frozenset({"none", "notresponded"})


# -- Windows time-zone names (CLDR windowsZones, territory 001) ---------------------------
WINDOWS_ZONES: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas",
    "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2",
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "Coordinated Universal Time": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum",
    "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Volgograd Standard Time": "Europe/Volgograd",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Central Asia Standard Time": "Asia/Almaty",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Yangon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul",
    "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita",
    "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}
_WINDOWS_FOLDED = {name.casefold(): zone for name, zone in WINDOWS_ZONES.items()}


def iana_zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The IANA zone for a time-zone name Graph returns: a Windows name ("W. Europe Standard
    Time"), an IANA name, or "UTC". Anything unknown is read in ``fallback`` (logged)."""
    if not name:
        return UTC
    cleaned = name.strip()
    if cleaned.casefold() in ("utc", "tzone://microsoft/utc", "etc/utc", "gmt"):
        return UTC
    mapped = _WINDOWS_FOLDED.get(cleaned.casefold())
    if mapped == "Etc/UTC":
        return UTC
    try:
        return ZoneInfo(mapped or cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r from Graph; read in %s", cleaned, fallback.key)
        return fallback


_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_graph_time(value: str, zone: ZoneInfo) -> datetime:
    """A Graph ``dateTime`` ("2026-11-23T08:00:00.0000000", seven fraction digits) in
    ``zone`` (an explicit offset in the text wins)."""
    match = _DATETIME.match(value.strip())
    if match is None:
        raise ValueError(f"not a Graph dateTime: {value!r}")
    day, hms, fraction, offset = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    naive = datetime.fromisoformat(f"{day}T{hms}.{micro}")
    if offset:
        return datetime.fromisoformat(f"{day}T{hms}.{micro}{'+00:00' if offset == 'Z' else offset}")
    return naive.replace(tzinfo=zone)


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def transaction_id(block: Block, key: str | None = None) -> str:
    """The ``transactionId`` of a block's create, from the write's idempotency ``key``
    (unique per write, the same for its retry: Graph turns a retried create into the
    event it already made, and a later create of the same block in the same slot is a
    new one). Without a key: from the block id and slot."""
    slot = key or f"{block.id}|{_iso_z(block.start)}|{_iso_z(block.end)}"
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, slot))


#: The body steadyhand writes on a block (``bodyPreview`` reads it back as it is).
BLOCK_BODY = "Booked by steadyhand ({rule}). Move or edit it and it is yours."
_BLOCK_BODY = re.compile(r"Booked by steadyhand \(\w*\)\. Move or edit it and it is yours\.")


def _details(raw: Mapping[str, Any]) -> str | None:
    """``Event.details``: the body (unless it is the text steadyhand wrote) and location."""
    preview = raw.get("bodyPreview")
    body = raw.get("body")
    if preview is None and isinstance(body, Mapping) and body.get("contentType") == "text":
        preview = body.get("content")
    preview = " ".join(str(preview or "").split())
    location = raw.get("location")
    place = location.get("displayName") if isinstance(location, Mapping) else None
    return details_digest(None if _BLOCK_BODY.fullmatch(preview) else preview, place)


def token_name(spec: AccountSpec, email: str) -> str:
    """The token store entry holding ``email``'s msal cache for account ``spec``."""
    return f"outlook:{spec.name}:{email.strip().lower()}"


# -- reading events ---------------------------------------------------------------------
def tag_of(raw: Mapping[str, Any]) -> str | None:
    """The block id in our extended property, when ``raw`` was read with it expanded."""
    for prop in raw.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).casefold() == TAG_PROPERTY.casefold() and prop.get("value"):
            return str(prop["value"])
    return None


def _categories(raw: Mapping[str, Any]) -> set[str]:
    return {str(c).casefold() for c in raw.get("categories") or ()}


def _address(value: Any) -> str | None:
    if isinstance(value, Mapping):
        email = value.get("emailAddress") or {}
        address = email.get("address") if isinstance(email, Mapping) else None
        if address:
            return str(address).strip().lower()
    return None


def event_from_graph(
    raw: Mapping[str, Any], cal: CalendarRef, block_id: str | None = None
) -> Event | None:
    """One Graph event as steadyhand's :class:`Event`; None for a series master (its
    occurrences come on their own) or an event without times."""
    if raw.get("type") == "seriesMaster":
        return None
    start, end = raw.get("start"), raw.get("end")
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        return None
    tz = ZoneInfo(cal.timezone)
    all_day = bool(raw.get("isAllDay"))
    if all_day:  # dates without a zone: midnights in the owner's zone
        first = parse_graph_time(str(start["dateTime"]), UTC).date()
        last = parse_graph_time(str(end["dateTime"]), UTC).date()
        begins, ends = wall_time(first, clock(0), tz), wall_time(last, clock(0), tz)
    else:
        begins = parse_graph_time(str(start["dateTime"]), iana_zone(start.get("timeZone"), tz))
        ends = parse_graph_time(str(end["dateTime"]), iana_zone(end.get("timeZone"), tz))
        begins, ends = begins.astimezone(tz), ends.astimezone(tz)
    show_as = str(raw.get("showAs") or "busy").casefold()
    categories = _categories(raw)
    if show_as == "oof":
        event_type = EventType.OUT_OF_OFFICE
    elif show_as == "workingelsewhere":
        event_type = EventType.WORKING_LOCATION
    elif categories & FOCUS_CATEGORIES:
        event_type = EventType.FOCUS
    else:
        event_type = EventType.DEFAULT
    transparency = (
        Transparency.FREE if show_as in ("free", "workingelsewhere") else Transparency.BUSY
    )
    if raw.get("isCancelled"):
        status = Status.CANCELLED
    elif show_as == "tentative":
        status = Status.TENTATIVE
    else:
        status = Status.CONFIRMED
    answer = str((raw.get("responseStatus") or {}).get("response") or "").casefold()
    if raw.get("isOrganizer") is True:
        response = Response.ORGANIZER
    else:
        response = _RESPONSES.get(answer, Response.ORGANIZER)
    attendees = tuple(a for a in (_address(x) for x in raw.get("attendees") or ()) if a)
    return Event(
        id=str(raw["id"]),
        calendar_id=cal.location,
        start=begins,
        end=max(begins, ends),
        all_day=all_day,
        status=status,
        response=response,
        transparency=transparency,
        event_type=event_type,
        attendees=attendees,
        organizer=_address(raw.get("organizer")),
        series_id=str(raw["seriesMasterId"]) if raw.get("seriesMasterId") else None,
        etag=str(raw["changeKey"]) if raw.get("changeKey") else None,
        owned_block_id=block_id,
        title=str(raw["subject"]) if raw.get("subject") else None,
        details=_details(raw) if block_id else None,
    )


def _load_blocks(state: SyncState | None) -> dict[str, str]:
    if state is None or not state.fingerprint:
        return {}
    try:
        data = json.loads(state.fingerprint)
        blocks = data.get("blocks", {}) if isinstance(data, dict) else {}
        return {str(k): str(v) for k, v in blocks.items()}
    except (ValueError, AttributeError):
        return {}


def _dump_blocks(blocks: Mapping[str, str]) -> str:
    return json.dumps({"v": 1, "blocks": dict(sorted(blocks.items()))}, separators=(",", ":"))


# -- HTTP plumbing ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Reply:
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
        return _retry_after(self.headers.get("retry-after"))

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _ConnectionLost(TransientError):
    """The request may have reached Graph: safe to repeat only when it is idempotent."""


class _Escape(Exception):
    """Carries an error past :func:`retrying` (which retries every TransientError)."""

    def __init__(self, error: ConnectorError) -> None:
        super().__init__(str(error))
        self.error = error


class _MailboxSlots:
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


# -- tokens -----------------------------------------------------------------------------
def _authority(spec: AccountSpec, override: str | None) -> str:
    return (override or f"{LOGIN}/{spec.tenant or 'organizations'}").rstrip("/")


def _one_line(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "no token in the cache"
    error = str(result.get("error") or "error")
    description = str(result.get("error_description") or "").strip().splitlines()
    first = description[0] if description else ""
    first = re.sub(r"\s*Trace ID:.*$", "", first)
    return f"{error}: {first[:180]}" if first else error


def _classify(result: Mapping[str, Any] | None) -> str:
    """A token failure as a ``doctor`` status (or ``transient``)."""
    if not result:  # no refresh token for this app in the cache
        return "missing"
    error = str(result.get("error") or "")
    codes = {int(c) for c in result.get("error_codes") or () if str(c).isdigit()}
    text = str(result.get("error_description") or "")
    if result.get("suberror") == "consent_required" or codes & {65001, 65004}:
        return "missing_scopes"
    if codes & {50173, 50133, 7000215}:  # a revoked grant, a changed password, a bad secret
        return "revoked"
    if codes & {700082, 7000222} or (not codes and "expired" in text.lower()):
        return "expired"
    if error in ("invalid_grant", "interaction_required"):
        return "revoked"
    if error in ("temporarily_unavailable", "server_error") or "AADSTS90033" in text:
        return "transient"
    return "error"


def _claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT access token (only to say which permissions it
    carries); {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _lacking(token: str, granted_scope: str | None, app: bool) -> list[str]:
    claims = _claims(token)
    if app:
        have = {str(r).casefold() for r in claims.get("roles") or ()}
        if not claims:
            return []
        return [r for r in APP_ROLES if r.casefold() not in have]
    text = str(claims.get("scp") or granted_scope or "")
    if not text:
        return []
    have = {s.rsplit("/", 1)[-1].casefold() for s in text.split()}
    return [s for s in DELEGATED if s.casefold() not in have]


class _Auth:
    """Access tokens for Graph, per auth mode; msal stays in here."""

    def __init__(
        self,
        spec: AccountSpec,
        token_store: TokenStore | None,
        http_client: Any,
        authority: str | None,
    ) -> None:
        mode = spec.auth or "device_code"
        if mode not in AUTH_MODES:
            raise UserError(
                Problem(
                    f"auth {mode!r} is not an Outlook auth mode",
                    f"use one of {', '.join(AUTH_MODES)}",
                    path=f"accounts.{spec.name}.auth",
                )
            )
        self.spec = spec
        self.mode = mode
        self.store = token_store
        self.http_client = http_client
        self.authority = _authority(spec, authority)
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._apps: dict[str, tuple[Any, Any]] = {}  # identity -> (app, cache)

    @property
    def delegated(self) -> bool:
        return self.mode == "device_code"

    def identity(self, mailbox: str) -> str:
        """Whose token signs a request for ``mailbox`` ("" for the one app-wide token)."""
        return mailbox.strip().lower() if self.delegated else ""

    def base(self, mailbox: str) -> str:
        return "/me" if self.delegated else f"/users/{quote(mailbox.strip().lower(), safe='@')}"

    def fix(self, who: str) -> str:
        if self.mode == "device_code":
            return f"run `steadyhand connect outlook --person {who}` again"
        if self.mode == "client_credentials":
            return (
                f"check the client secret in ${self.spec.client_secret_env} and the app's "
                "admin consent in Entra ID"
            )
        return f"put a fresh token in ${self.spec.token_env}"

    def _lock_for(self, identity: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(identity, threading.Lock())

    def prefix(self) -> str:
        return f"outlook {self.spec.name}"

    # -- the token ------------------------------------------------------------------
    def token(self, identity: str, *, force: bool = False) -> str:
        if self.mode == "access_token":
            return self._env_token()
        with self._lock_for(identity):
            if self.mode == "client_credentials":
                result = self._app_token(force)
            else:
                result = self._user_token(identity, force)
        if result and result.get("access_token"):
            return str(result["access_token"])
        status = _classify(result)
        message = f"{self.prefix()}: no access token for {identity or 'the app'} ({status}: "
        message += f"{_one_line(result)}) — {self.fix(identity)}"
        if status == "transient":
            raise TransientError(message)
        raise PermanentError(message)

    def _env_token(self) -> str:
        name = self.spec.token_env
        value = os.environ.get(name or "")
        if not name or not value:
            raise PermanentError(
                f"{self.prefix()}: auth access_token reads the token from "
                f"${name or 'token_env'}, which is not set — set token_env and export it"
            )
        return value.strip()

    def _msal(self, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise PermanentError(
                f"{self.prefix()}: the sign-in authority {self.authority} cannot be used "
                f"({first}) — check tenant: and client_id: in steadyhand.yaml"
            ) from None
        except (requests.RequestException, msal.exceptions.MsalError, RuntimeError) as exc:
            raise TransientError(
                f"{self.prefix()}: cannot reach the sign-in service {self.authority} "
                f"({type(exc).__name__})"
            ) from None

    def _client_id(self) -> str:
        if not self.spec.client_id:
            raise UserError(
                Problem(
                    "an Outlook account needs the application (client) id",
                    "add client_id: from the app registration in Entra ID",
                    path=f"accounts.{self.spec.name}.client_id",
                )
            )
        return self.spec.client_id

    def _app_token(self, force: bool) -> Mapping[str, Any] | None:
        env = self.spec.client_secret_env
        secret = os.environ.get(env or "")
        if not env or not secret:
            raise PermanentError(
                f"{self.prefix()}: auth client_credentials needs the client secret in "
                f"${env or 'client_secret_env'}, which is not set — export it"
            )
        cached = self._apps.get("")
        if cached is None or force:
            app = self._msal(
                lambda: msal.ConfidentialClientApplication(
                    self._client_id(),
                    client_credential=secret,
                    authority=self.authority,
                    http_client=self.http_client,
                    instance_discovery=False,
                )
            )
            self._apps[""] = cached = (app, None)
        result = self._msal(lambda: cached[0].acquire_token_for_client(scopes=APP_SCOPES))
        if not result or "access_token" not in result:
            self._apps.pop("", None)
        return result  # type: ignore[no-any-return]

    def _load_app(self, identity: str) -> tuple[Any, Any]:
        found = self._apps.get(identity)
        if found is not None:
            return found
        if self.store is None:
            raise PermanentError(
                f"{self.prefix()}: no token store to read {identity}'s sign-in from — "
                "set STEADYHAND_SECRET_KEY and connect the account"
            )
        data = self.store.load(token_name(self.spec, identity))
        if data is None:
            raise PermanentError(
                f"{self.prefix()}: {identity} has not connected this account — run "
                f"`steadyhand connect outlook --person {identity}`"
            )
        cache = msal.SerializableTokenCache()
        cache.deserialize(data.decode("utf-8"))
        app = self._msal(lambda: _public_app(self.spec, cache, self.http_client, self.authority))
        self._apps[identity] = (app, cache)
        return app, cache

    def _user_token(self, identity: str, force: bool) -> Mapping[str, Any] | None:
        app, cache = self._load_app(identity)
        accounts = app.get_accounts(username=identity) or app.get_accounts()
        if not accounts:
            self._apps.pop(identity, None)
            return None
        result = self._msal(
            lambda: app.acquire_token_silent_with_error(
                SCOPES, account=accounts[0], force_refresh=force
            )
        )
        self._save(identity, cache)
        if not result or "access_token" not in result:
            self._apps.pop(identity, None)  # read the store again next time (a re-connect)
        return result  # type: ignore[no-any-return]

    def _save(self, identity: str, cache: Any) -> None:
        if cache.has_state_changed and self.store is not None:
            self.store.save(token_name(self.spec, identity), cache.serialize().encode("utf-8"))
            cache.has_state_changed = False

    # -- doctor -----------------------------------------------------------------------
    def health(self, email: str) -> tuple[str, str]:
        identity = email.strip().lower()
        try:
            if self.mode == "access_token":
                if not os.environ.get(self.spec.token_env or ""):
                    return "missing", f"${self.spec.token_env or 'token_env'} is not set"
                token = self._env_token()
                expires = _claims(token).get("exp")
                if isinstance(expires, int | float) and expires < time.time():
                    return "expired", f"the token in ${self.spec.token_env} has expired"
                return self._scopes_ok(token, None, app=False, source="token_env")
            if self.mode == "client_credentials":
                if not os.environ.get(self.spec.client_secret_env or ""):
                    return "missing", f"${self.spec.client_secret_env or 'secret'} is not set"
                with self._lock_for(""):
                    result = self._app_token(force=True)
                return self._judge(result, app=True, who="the app")
            if self.store is None or self.store.load(token_name(self.spec, identity)) is None:
                return (
                    "missing",
                    f"not connected — run `steadyhand connect outlook --person {email}`",
                )
            with self._lock_for(identity):
                app, _ = self._load_app(identity)
                if not (app.get_accounts(username=identity) or app.get_accounts()):
                    return "missing", f"no sign-in in the cache: connect {email} again"
                result = self._user_token(identity, force=True)
            return self._judge(result, app=False, who=email)
        except UserError as exc:
            return "error", str(exc).splitlines()[0]
        except ConnectorError as exc:
            return "error", str(exc).splitlines()[0]

    def _judge(self, result: Mapping[str, Any] | None, *, app: bool, who: str) -> tuple[str, str]:
        if result and result.get("access_token"):
            return self._scopes_ok(str(result["access_token"]), result.get("scope"), app, who)
        status = _classify(result)
        status = "error" if status == "transient" else status
        return status, f"{_one_line(result)} — {self.fix(who)}"

    def _scopes_ok(self, token: str, scope: Any, app: bool, source: str) -> tuple[str, str]:
        lacking = _lacking(token, str(scope) if scope else None, app)
        if lacking:
            return "missing_scopes", f"{source}'s token lacks {', '.join(lacking)} — " + (
                "grant them (admin consent)" if app else self.fix(source)
            )
        return "ok", "token refreshed" if self.mode != "access_token" else "token present"


def _public_app(spec: AccountSpec, cache: Any, http_client: Any, authority: str) -> Any:
    if not spec.client_id:
        raise UserError(
            Problem(
                "an Outlook account needs the application (client) id",
                "add client_id: from the app registration in Entra ID",
                path=f"accounts.{spec.name}.client_id",
            )
        )
    return msal.PublicClientApplication(
        spec.client_id,
        authority=authority,
        token_cache=cache,
        http_client=http_client,
        # The authority is fixed by the config; skip the lookup of its aliases.
        instance_discovery=False,
    )


class _Graph:
    """Requests to Graph: bearer token, per-mailbox slots, errors mapped, retries."""

    def __init__(
        self,
        spec: AccountSpec,
        auth: _Auth,
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
        self.slots = _MailboxSlots(max_concurrent)
        self.timeout = timeout
        self.rng = random.random

    def absolute(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.root + path

    def relative(self, url: str) -> str | None:
        """``url`` as a path under the Graph root, or None when it points elsewhere."""
        if url.startswith(self.root + "/"):
            return url[len(self.root) :]
        return None

    def error(self, reply: _Reply, what: str, mailbox: str) -> ConnectorError:
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
    ) -> _Reply:
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
        return _Reply(response.status_code, lowered, parsed)

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
    ) -> _Reply:
        """One request, retried on transient failures; statuses in ``allow`` are returned
        for the caller to judge, other failures raise."""
        identity = self.auth.identity(mailbox)
        url = self.absolute(path)
        counts = counts if counts is not None else {mailbox.strip().lower(): 1}

        def once() -> _Reply:
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
    ) -> dict[str, _Reply]:
        """POST ``items`` as one ``$batch``; the answers by item id (in any order)."""
        reply = self.call(
            "POST",
            "/$batch",
            mailbox=identity_mailbox,
            what=f"a batch of {len(items)} requests",
            json={"requests": list(items)},
            counts=counts,
        )
        answers: dict[str, _Reply] = {}
        responses = reply.body.get("responses") if isinstance(reply.body, Mapping) else None
        for answer in responses or ():
            headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
            answers[str(answer.get("id"))] = _Reply(
                int(answer.get("status", 500)), headers, answer.get("body")
            )
        return answers


# -- one calendar's sync round -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Request:
    key: str  # "delta" or the event id to read
    method: str
    path: str  # relative to the Graph root
    headers: Mapping[str, str]


@dataclass
class _Round:
    """A calendar's sync: delta pages until the deltaLink, then GETs of the events whose
    tag must be read. Driven request by request (``sync``) or in batches (``sync_many``)."""

    conn: OutlookCalendar
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
        cls, conn: OutlookCalendar, cal: CalendarRef, window: TimeRange, state: SyncState | None
    ) -> _Round:
        blocks = _load_blocks(state)
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

    def pending(self) -> list[_Request]:
        if self.result is not None:
            return []
        if self.delta_link is None:
            return [_Request("delta", "GET", self.path, self.conn.prefer)]
        return [
            _Request(i, "GET", self.conn.event_path(self.cal, i, tag=True), self.conn.prefer)
            for i in self.fetch
        ]

    def take(self, request: _Request, reply: _Reply) -> None:
        if request.key == "delta":
            self._take_page(reply)
        else:
            self._take_event(request.key, reply)
        if self.delta_link is not None and not self.fetch and self.result is None:
            self._finish()

    def _take_page(self, reply: _Reply) -> None:
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
                or (i not in self.blocks and CATEGORY in _categories(raw))
            )
        ]

    def _take_event(self, event_id: str, reply: _Reply) -> None:
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
            token=self.delta_link, window=self.window, fingerprint=_dump_blocks(self.blocks)
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


# -- the calendar connector ----------------------------------------------------------------
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """What Outlook knows of a person's day (``GET …/mailboxSettings``): the mailbox's time
    zone as an IANA name and its working hours (days ``mon``…``sun``, local times)."""

    timezone: str | None
    working_days: tuple[str, ...]
    working_start: clock | None
    working_end: clock | None


def _clock(value: Any) -> clock | None:
    match = re.match(r"^(\d{2}):(\d{2})(?::(\d{2}))?", str(value or ""))
    if match is None:
        return None
    return clock(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


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
        self.auth = _Auth(spec, token_store, msal_http_client, authority)
        self.graph = _Graph(spec, self.auth, session, sleep, backoff, max_concurrent_per_mailbox)
        self.prefer = {"Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC"'}

    # -- paths ------------------------------------------------------------------------
    def _calendar(self, cal: CalendarRef) -> str:
        base = self.auth.base(cal.owner)
        if cal.location in ("", "primary"):
            return base
        return f"{base}/calendars/{quote(cal.location, safe='')}"

    def first_delta(self, cal: CalendarRef, window: TimeRange) -> str:
        query = urlencode(
            {"startDateTime": _iso_z(window.start), "endDateTime": _iso_z(window.end)}
        )
        return f"{self._calendar(cal)}/calendarView/delta?{query}"

    def event_path(self, cal: CalendarRef, event_id: str, *, tag: bool = False) -> str:
        path = f"{self.auth.base(cal.owner)}/events/{quote(event_id, safe='')}"
        if tag:
            expand = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY}')"
            path += "?" + urlencode({"$expand": expand}, quote_via=quote)
        return path

    # -- sync -------------------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        job = _Round.start(self, cal, window, state)
        while job.result is None:
            for request in job.pending():
                reply = self.graph.call(
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
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]:
        """Sync many calendars through ``$batch``: every round sends each unfinished
        calendar's next request, at most 20 to a batch (and at most
        ``max_concurrent_per_mailbox`` per mailbox in one batch). An incremental sync of N
        unchanged calendars is ⌈N/20⌉ requests (app-only: one token signs for every
        mailbox; with device_code each person's batch is signed by their own token)."""
        jobs = [_Round.start(self, cal, window, state) for cal, window, state in items]
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
            for i, request, outcome in self._run(self._pack(jobs, work)):
                if results[i] is not None:
                    continue
                if isinstance(outcome, Exception):
                    results[i] = outcome
                    continue
                if outcome.transient:
                    count = throttled[i] = throttled.get(i, 0) + 1
                    if count >= self.graph.backoff.attempts:
                        results[i] = self.graph.error(outcome, jobs[i].what, jobs[i].mailbox)
                    else:
                        waits.append(
                            self.graph.backoff.wait(count - 1, outcome.retry_after, self.graph.rng)
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
                logger.info(
                    "outlook batch: %d requests throttled; retry in %.1fs", len(waits), wait
                )
                self.graph.sleep(wait)
        return [r if r is not None else TransientError("not synced") for r in results]

    def _pack(
        self, jobs: Sequence[_Round], work: Sequence[tuple[int, _Request]]
    ) -> list[list[tuple[int, _Request, str]]]:
        """Batches of at most 20 items that one token signs, with at most
        ``max_concurrent_per_mailbox`` items of one mailbox each (first fit, order kept)."""
        limit = self.graph.slots.limit
        batches: list[tuple[str, list[tuple[int, _Request, str]], dict[str, int]]] = []
        for i, request in work:
            mailbox = jobs[i].mailbox
            identity = self.auth.identity(mailbox)
            for signer, members, counts in batches:
                if (
                    signer == identity
                    and len(members) < MAX_BATCH
                    and counts.get(mailbox, 0) < limit
                ):
                    members.append((i, request, mailbox))
                    counts[mailbox] = counts.get(mailbox, 0) + 1
                    break
            else:
                batches.append((identity, [(i, request, mailbox)], {mailbox: 1}))
        return [members for _, members, _ in batches]

    def _run(
        self, batches: Sequence[list[tuple[int, _Request, str]]]
    ) -> list[tuple[int, _Request, _Reply | Exception]]:
        def one(members: list[tuple[int, _Request, str]]) -> list[Any]:
            counts: dict[str, int] = {}
            for _, _, mailbox in members:
                counts[mailbox] = counts.get(mailbox, 0) + 1
            items = [
                {"id": str(n), "method": r.method, "url": r.path, "headers": dict(r.headers)}
                for n, (_, r, _) in enumerate(members)
            ]
            try:
                answers = self.graph.batch(members[0][2], items, counts)
            except ConnectorError as exc:
                return [(i, request, exc) for i, request, _ in members]
            missing = _Reply(503, {}, None)  # an item Graph did not answer: try it again
            return [(i, r, answers.get(str(n), missing)) for n, (i, r, _) in enumerate(members)]

        if len(batches) == 1:
            return list(one(batches[0]))
        out: list[tuple[int, _Request, _Reply | Exception]] = []
        with ThreadPoolExecutor(max_workers=min(4, len(batches))) as pool:
            for done in pool.map(one, batches):
                out.extend(done)
        return out

    # -- writes -----------------------------------------------------------------------
    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        done = []
        for change in changes:
            if change.kind is ChangeKind.CREATE:
                applied = self._create(cal, change)
            elif change.kind is ChangeKind.MOVE:
                applied = self._move(cal, change)
            else:
                applied = self._delete(cal, change)
            logger.info(
                "outlook apply %s: %s block %s (event %s)",
                cal.key,
                change.kind.value,
                change.block.id,
                applied.event_id,
            )
            done.append(applied)
        return done

    def _body(self, block: Block, categories: Sequence[str] = ()) -> dict[str, Any]:
        kept = [c for c in categories if str(c).casefold() != CATEGORY]
        return {
            "subject": block.title,
            "start": _graph_time(block.start),
            "end": _graph_time(block.end),
            "showAs": "free" if block.transparency is Transparency.FREE else "busy",
            "categories": [*kept, CATEGORY],
            "isReminderOn": False,
            "singleValueExtendedProperties": [{"id": TAG_PROPERTY, "value": block.id}],
        }

    def _create(self, cal: CalendarRef, change: BlockChange) -> Applied:
        block = change.block
        body = self._body(block)
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
            json=self._body(change.block, current.get("categories") or ()),
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
        query = urlencode({"startDateTime": _iso_z(span.start), "endDateTime": _iso_z(span.end)})
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
                if raw.get("isOrganizer") or answer not in _PENDING or raw.get("isAllDay"):
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
        body = reply.body if isinstance(reply.body, Mapping) else {}
        zone_name = body.get("timeZone")
        timezone = iana_zone(str(zone_name), UTC).key if zone_name else None
        hours = body.get("workingHours") or {}
        days = tuple(
            WEEKDAYS[_DAYS.index(d.casefold())]
            for d in hours.get("daysOfWeek") or ()
            if str(d).casefold() in _DAYS
        )
        return MailboxSettings(
            timezone, days, _clock(hours.get("startTime")), _clock(hours.get("endTime"))
        )

    # -- doctor -----------------------------------------------------------------------
    def token_health(self, email: str) -> tuple[str, str]:
        """``(status, detail)`` for ``steadyhand doctor``: status is one of ok, expired,
        revoked, missing, missing_scopes, error. It refreshes the token to find out."""
        return self.auth.health(email)


# -- the mail transport ---------------------------------------------------------------------
class OutlookTransport:
    """Sends through Graph ``sendMail`` as MIME (base64), so our headers stay as built."""

    name = "outlook"

    def __init__(
        self,
        spec: AccountSpec,
        sender: str,
        *,
        token_store: TokenStore | None = None,
        session: requests.Session | None = None,
        msal_http_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff = DEFAULT_BACKOFF,
        authority: str | None = None,
    ) -> None:
        self.spec = spec
        self.sender = (parseaddr(sender)[1] or sender).strip().lower()
        self.auth = _Auth(spec, token_store, msal_http_client, authority)
        self.graph = _Graph(spec, self.auth, session, sleep, backoff, 4)

    def send(self, message: EmailMessage) -> str:
        message_id = message.get("Message-ID")
        if not message_id:
            domain = self.sender.rpartition("@")[2] or None
            message_id = make_msgid(domain=domain)
            message["Message-ID"] = message_id
        mime = base64.b64encode(message.as_bytes(policy=email_policy.SMTP))
        self.graph.call(
            "POST",
            f"{self.auth.base(self.sender)}/sendMail",
            mailbox=self.sender,
            what=f"sendMail as {self.sender}",
            data=mime,
            headers={"Content-Type": "text/plain"},
            replay_safe=False,  # a lost answer may mean it was sent: the outbox decides
        )
        logger.info("outlook sent %s as %s", message_id, self.sender)
        return str(message_id)


# -- connect ------------------------------------------------------------------------------
def connect(
    spec: AccountSpec,
    email: str,
    token_store: TokenStore,
    *,
    show: Callable[[str], None] = print,
    msal_http_client: Any = None,
    authority: str | None = None,
) -> None:
    """``steadyhand connect outlook --person EMAIL``: the device-code sign-in. Shows the
    code and the URL, waits for the user, and stores msal's token cache encrypted."""
    mode = spec.auth or "device_code"
    if mode != "device_code":
        raise UserError(
            Problem(
                f"account {spec.name} uses auth: {mode}, which needs no sign-in here",
                "`steadyhand connect outlook` is for auth: device_code",
                path=f"accounts.{spec.name}.auth",
            )
        )
    require = getattr(token_store, "_require", None)
    if callable(require):
        require()  # fail closed before the user signs in: no key, nowhere to keep the token
    where = _authority(spec, authority)
    cache = msal.SerializableTokenCache()
    app = _Auth(spec, token_store, msal_http_client, authority)._msal(
        lambda: _public_app(spec, cache, msal_http_client, where)
    )
    flow = app.initiate_device_flow(scopes=SCOPES)
    if "user_code" not in flow:
        raise PermanentError(f"outlook {spec.name}: the sign-in could not start: {_one_line(flow)}")
    show(
        str(
            flow.get("message")
            or f"Open {flow.get('verification_uri')} and enter the code {flow['user_code']}"
        )
    )
    result = app.acquire_token_by_device_flow(flow)
    if not result or "access_token" not in result:
        raise PermanentError(f"outlook {spec.name}: the sign-in failed: {_one_line(result)}")
    who = str((result.get("id_token_claims") or {}).get("preferred_username") or "")
    if who and who.lower() != email.strip().lower():
        show(f"note: signed in as {who}; the sign-in is stored for {email}")
    token_store.save(token_name(spec, email), cache.serialize().encode("utf-8"))
    logger.info("outlook %s: %s connected", spec.name, email)
