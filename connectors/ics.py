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

Limits (:class:`~worker.core.model.SyncLimits`, ``sync:`` in the YAML): a file or feed body
over ``max_bytes`` is refused, counted as it streams in (never read whole first); a
feed's whole download, redirects and body included, must end within ``feed_timeout``
(a watchdog hangs up on headers or a body that trickle in: :mod:`connectors._deadline`);
at most ``max_redirects`` redirects;
expansion is bounded by :mod:`connectors._bounds`. Feeds are named by
``CalendarRef.shown``, never by their secret address.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from connectors import _ical, _readaround
from connectors._bounds import DEFAULT_LIMITS, Budget
from connectors._deadline import DeadlineAdapter, deadline
from connectors.retry import retry_after_seconds
from worker.core.errors import CalendarUnreadable, Problem, ReadOnlyCalendar, TransientError
from worker.core.model import (
    Applied,
    BlockChange,
    CalendarRef,
    SyncLimits,
    SyncResult,
    SyncState,
    TimeRange,
)

logger = logging.getLogger(__name__)

USER_AGENT = "steadyhand (+ics feed reader)"
_FIX_URL = "check the address in steadyhand.yaml"
_FIX_SIZE = "raise sync.max_bytes in steadyhand.yaml or export a shorter calendar"
_CHUNK = 64 * 1024
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
    """An iCalendar file or feed, read-only (docs/contract.md)."""

    kind = "ics"
    read_only = True
    #: Feeds and files may be read in parallel (base.ParallelReads): the session's
    #: connection pool is thread-safe and keeps this many connections per host.
    parallel_reads = 64

    def __init__(
        self,
        session: requests.Session | None = None,
        timeout: float = 30,
        limits: SyncLimits = DEFAULT_LIMITS,
    ) -> None:
        self._session = session if session is not None else requests.Session()
        self._session.max_redirects = limits.max_redirects
        for prefix in ("http://", "https://"):  # the whole download has a deadline
            self._session.mount(prefix, DeadlineAdapter(pool_maxsize=self.parallel_reads))
        self._timeout = timeout
        self._limits = limits

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
            started = time.monotonic()
            agent = {"User-Agent": USER_AGENT}
            with self._get(_https(cal.location), cal.shown, agent, started) as got:
                if got.status_code != 200:
                    what = f"the server answered HTTP {got.status_code}"
                    raise _ical.unreadable(cal.shown, what, _fix_for(got.status_code))
                data = self._body(got, cal.shown, started)
        else:
            with open(cal.location, "rb") as fh:
                data = self._read(fh, cal.location)
        return _ical.description(
            _ical.parse(data, cal.shown, salvage_events=True),
            event_id,
            _ical.zone_of(cal, cal.shown),
        )

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        if not changes:
            return []
        raise ReadOnlyCalendar(
            Problem(
                f"{cal.owner}'s calendar (ics: {cal.shown}) is read-only; "
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
                data = self._read(handle, path, stat.st_size)
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
        calendars = _ical.parse(data, path, salvage_events=True)
        return self._expand(calendars, cal, window, path, new_state)

    def _read(self, handle: Any, path: str, size: int | None = None) -> bytes:
        """A file's bytes, refused in one line past ``max_bytes`` (never read whole first)."""
        cap = self._limits.max_bytes
        if size is not None and size > cap:
            raise _too_large(path, cap)
        data: bytes = handle.read(cap + 1)
        if len(data) > cap:
            raise _too_large(path, cap)
        return data

    # -- feeds ---------------------------------------------------------------------
    def _sync_url(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        started = time.monotonic()
        url = _https(cal.location)
        shown = cal.shown
        prior = state if state is not None and state.window == window else None
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if prior is not None:  # a new window needs the body: ask unconditionally
            if prior.etag:
                headers["If-None-Match"] = prior.etag
            if prior.last_modified:
                headers["If-Modified-Since"] = prior.last_modified
        with self._get(url, shown, headers, started) as response:
            status = response.status_code
            conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
            if status == 304 and conditional and prior is not None:
                return _unchanged(prior)
            if status == 429 or status >= 500:
                raise TransientError(
                    f"{shown}: the server answered HTTP {status}; will retry",
                    retry_after=retry_after_seconds(
                        response.headers.get("Retry-After"), datetime.now(UTC)
                    ),
                )
            if status != 200:
                what = f"the server answered HTTP {status}"
                raise _ical.unreadable(shown, what, _fix_for(status))
            data = self._body(response, shown, started)
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
        calendars = _ical.parse(data, shown, _FIX_HTML if html else _ical.FIX_FILE, True)
        return self._expand(calendars, cal, window, shown, new_state)

    def _expand(
        self,
        calendars: Any,
        cal: CalendarRef,
        window: TimeRange,
        shown: str,
        state: SyncState,
    ) -> SyncResult:
        """The whole calendar for ``window``, expanded within this calendar's budget."""
        budget, notes = Budget(self._limits), _readaround.Notes()
        events = _ical.events_between(calendars, cal, window, shown, budget=budget, notes=notes)
        return SyncResult(
            events=tuple(events),
            removed=(),
            state=state,
            full=True,
            truncated=budget.truncated,
            notes=notes.read_notes(),
        )

    def _get(
        self, url: str, shown: str, headers: dict[str, str], started: float
    ) -> requests.Response:
        """The feed's response, headers read, body not yet (``stream=True``); a chain of
        redirects that runs past ``feed_timeout`` after ``started`` is stopped between hops."""
        limit = self._limits.feed_timeout
        wait = min(self._timeout, limit)

        def in_time(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if time.monotonic() > started + limit:
                response.close()
                raise _too_slow(shown, limit)

        try:
            with deadline(started + limit - time.monotonic()) as expired:
                try:
                    return self._session.get(
                        url,
                        headers=headers,
                        timeout=(wait, wait),
                        stream=True,
                        hooks={"response": in_time},
                    )
                except requests.RequestException:
                    if expired.is_set():  # hung up on: headers trickling past the deadline
                        raise _too_slow(shown, limit) from None
                    raise
        except requests.TooManyRedirects:
            what = f"redirects more than {self._limits.max_redirects} times"
            raise _ical.unreadable(shown, what, "use the feed's final address") from None
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
            what = f"cannot fetch ({type(exc).__name__})"
            raise _ical.unreadable(shown, what, _FIX_URL) from None

    def _body(self, response: requests.Response, shown: str, started: float) -> bytes:
        """The body, streamed: refused past ``max_bytes``; cut at ``feed_timeout`` after
        ``started`` by a watchdog that hangs up (a read blocked on a trickle included)."""
        cap, limit = self._limits.max_bytes, self._limits.feed_timeout
        declared = response.headers.get("Content-Length", "")
        # a length too long to be a number (int() refuses 4,300 digits) is too large too
        if declared.isdecimal() and (len(declared) > 15 or int(declared) > cap):
            raise _too_large(shown, cap)
        slow = _too_slow(shown, limit)
        left = started + limit - time.monotonic()
        if left <= 0:
            raise slow
        hung_up = threading.Event()
        watchdog = threading.Timer(left, _hang_up, (response, hung_up))
        watchdog.daemon = True
        watchdog.start()
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _too_large(shown, cap)
                chunks.append(chunk)
                if hung_up.is_set():
                    break
        except CalendarUnreadable:
            raise
        except Exception as exc:
            if hung_up.is_set():
                raise slow from None
            raise TransientError(f"{shown}: the feed broke off ({type(exc).__name__})") from None
        finally:
            watchdog.cancel()
        if hung_up.is_set():
            raise slow
        return b"".join(chunks)


def _hang_up(response: requests.Response, hung_up: threading.Event) -> None:
    """The watchdog's work: unblock a read waiting on a feed past its deadline."""
    hung_up.set()
    try:
        response.raw.shutdown()
    except Exception:  # already closed, or an urllib3 without shutdown(): the read ends anyway
        response.close()


def _too_slow(source: str, limit: float) -> TransientError:
    return TransientError(
        f"{source}: the feed did not arrive within {limit:g} s (sync.feed_timeout)"
    )


def _too_large(source: str, cap: int) -> CalendarUnreadable:
    return _ical.unreadable(source, f"is larger than {_size(cap)} (sync.max_bytes)", _FIX_SIZE)


def _size(count: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


def _https(url: str) -> str:
    return "https://" + url[len("webcal://") :] if url.lower().startswith("webcal://") else url


def _unchanged(state: SyncState) -> SyncResult:
    return SyncResult(events=(), removed=(), state=state, full=False, unchanged=True)


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return (
            "the feed needs credentials; use the calendar's secret (private) iCal address "
            "or a vdir, Google or Outlook calendar"
        )
    if status in (404, 410):
        return "the feed is gone or the address is wrong; copy the iCal address again"
    return _FIX_URL
