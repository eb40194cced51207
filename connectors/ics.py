"""A read-only iCalendar source: a ``.ics`` file on disk or a feed at an http(s) URL.

``CalendarRef.location`` is a file path (absolute, or relative to the working folder as
given) or an ``http://``, ``https://`` or ``webcal://`` address. Nothing is parsed twice
for nothing: a file is re-read only when its size or mtime changed (and re-parsed only
when its sha256 changed too); a feed is fetched with ``If-None-Match`` /
``If-Modified-Since`` and a ``304 Not Modified`` ends the sync. A new window always means a
fresh read, because recurring series are expanded inside the window.

Errors: a file or feed the user must fix raises
:class:`~connectors.base.CalendarUnreadable` (one line naming it); a feed that is down,
slow or rate limiting raises :class:`~connectors.base.TransientError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests

from connectors import _ical
from connectors.base import Problem, ReadOnlyCalendar, TransientError
from worker.model import Applied, BlockChange, CalendarRef, SyncResult, SyncState, TimeRange

logger = logging.getLogger(__name__)

USER_AGENT = "steadyhand (+ics feed reader)"
_FIX_URL = "check the address in steadyhand.yaml"
_FIX_HTML = (
    "the address returned a web page, not a calendar; use the calendar's iCal (.ics) export address"
)


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://", "webcal://"))


def display_url(url: str) -> str:
    """``url`` without a password or query string, which often hold a feed's secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", ""))


class IcsCalendar:
    """An iCalendar file or feed, read-only (DESIGN §2)."""

    kind = "ics"
    read_only = True

    def __init__(self, session: requests.Session | None = None, timeout: float = 30) -> None:
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout

    # -- the contract --------------------------------------------------------------
    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        if is_url(cal.location):
            result = self._sync_url(cal, window, state)
        else:
            result = self._sync_file(cal, window, state)
        logger.info(
            "ics sync %s: %s, %d events",
            cal.key,
            "unchanged" if result.unchanged else "parsed",
            len(result.events),
        )
        return result

    def describe(self, cal: CalendarRef, event_id: str) -> str | None:
        """An event's description, read now from the file or feed and not kept."""
        if is_url(cal.location):
            response = self._session.get(cal.location, timeout=self._timeout)
            data = response.content
        else:
            with open(cal.location, "rb") as fh:
                data = fh.read()
        return _ical.description(
            _ical.parse(data, cal.location), event_id, _ical.zone_of(cal, cal.location)
        )

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        if not changes:
            return []
        raise ReadOnlyCalendar(
            Problem(
                f"{cal.owner}'s calendar (ics: {_source(cal.location)}) is read-only; "
                "steadyhand cannot write blocks to an iCalendar feed",
                "use a vdir, Google or Outlook calendar for protected blocks",
            )
        )

    # -- files ---------------------------------------------------------------------
    def _sync_file(
        self, cal: CalendarRef, window: TimeRange, state: SyncState | None
    ) -> SyncResult:
        path = cal.location
        prior = state if state is not None and state.window == window else None
        previous = (prior.fingerprint or "") if prior is not None else ""
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
                settled = not _ical.racy(stat)  # else its mtime cannot vouch for it
                if prior is not None and settled and previous.rpartition(":")[0] == stamp:
                    return _unchanged(prior)
                data = handle.read()
        except FileNotFoundError:
            raise _ical.unreadable(
                path,
                "the file does not exist",
                "fix the path in steadyhand.yaml or export it there",
            ) from None
        except IsADirectoryError:
            raise _ical.unreadable(
                path, "is a folder, not an .ics file", "for a folder of .ics files use `vdir:`"
            ) from None
        except OSError as exc:
            raise _ical.unreadable(
                path, f"cannot be read ({exc.strerror or exc})", "check the file's permissions"
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        fingerprint = f"{stamp}:{digest}"
        new_state = SyncState(fingerprint=fingerprint, window=window)
        if prior is not None and previous.rpartition(":")[2] == digest:  # touched only
            return _unchanged(new_state)
        calendars = _ical.parse(data, path)
        events = _ical.events_between(calendars, cal, window, path)
        return SyncResult(events=tuple(events), removed=(), state=new_state, full=True)

    # -- feeds ---------------------------------------------------------------------
    def _sync_url(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        url = cal.location
        if url.lower().startswith("webcal://"):
            url = "https://" + url[len("webcal://") :]
        shown = display_url(url)
        prior = state if state is not None and state.window == window else None
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if prior is not None:  # a new window needs the body: ask unconditionally
            if prior.etag:
                headers["If-None-Match"] = prior.etag
            if prior.last_modified:
                headers["If-Modified-Since"] = prior.last_modified
        try:
            response = self._session.get(url, headers=headers, timeout=self._timeout)
        except requests.exceptions.SSLError as exc:
            what = f"its TLS certificate cannot be verified ({type(exc).__name__})"
            raise _ical.unreadable(shown, what, "fix the certificate or the address") from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise TransientError(f"{shown}: cannot reach the feed ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise _ical.unreadable(shown, f"cannot fetch ({exc})", _FIX_URL) from None
        status = response.status_code
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        if status == 304 and conditional and prior is not None:
            return _unchanged(prior)
        if status == 429 or status >= 500:
            raise TransientError(
                f"{shown}: the server answered HTTP {status}; will retry",
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if status != 200:
            raise _ical.unreadable(shown, f"the server answered HTTP {status}", _fix_for(status))
        data = response.content
        digest = hashlib.sha256(data).hexdigest()
        new_state = SyncState(
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            fingerprint=digest,
            window=window,
        )
        if prior is not None and prior.fingerprint == digest:
            return _unchanged(new_state)  # a server without validators sent the same bytes
        html = "html" in response.headers.get("Content-Type", "").lower()
        calendars = _ical.parse(data, shown, _FIX_HTML if html else _ical.FIX_FILE)
        events = _ical.events_between(calendars, cal, window, shown)
        return SyncResult(events=tuple(events), removed=(), state=new_state, full=True)


def _unchanged(state: SyncState) -> SyncResult:
    return SyncResult(events=(), removed=(), state=state, full=False, unchanged=True)


def _source(location: str) -> str:
    return display_url(location) if is_url(location) else location


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return (
            "the feed needs credentials; use the calendar's secret (private) iCal address "
            "or a vdir, Google or Outlook calendar"
        )
    if status in (404, 410):
        return "the feed is gone or the address is wrong; copy the iCal address again"
    return _FIX_URL


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
