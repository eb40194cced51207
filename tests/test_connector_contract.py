"""The calendar connector contract (docs/contract.md), run against every local backend.

:class:`CalendarContract` holds what every backend must do; each ``Test*`` subclass
provides a :class:`Backend` fixture that builds a calendar holding given events in that
backend's own storage (a dict, a ``.ics`` file, an ``.ics`` feed on a loopback HTTP
server, a vdir folder), as vdirsyncer's ``StorageTests`` do.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar
import pytest
import requests

from connectors import _ical
from connectors.base import CalendarConnector
from connectors.ics import IcsCalendar
from connectors.memory import MemoryCalendar
from connectors.vdir import VdirCalendar
from worker.core.errors import (
    CalendarUnreadable,
    NotOwned,
    PermanentError,
    ReadOnlyCalendar,
    TransientError,
)
from worker.core.model import (
    UTC,
    Block,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    EventType,
    Response,
    Status,
    SyncResult,
    TimeRange,
    Transparency,
)

OWNER = "cy@example.com"
TZ = ZoneInfo("Europe/Berlin")
WINDOW = TimeRange(datetime(2026, 11, 23, tzinfo=TZ), datetime(2026, 11, 30, tzinfo=TZ))
LATER_WINDOW = TimeRange(datetime(2026, 11, 30, tzinfo=TZ), datetime(2026, 12, 7, tzinfo=TZ))


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


def event(id: str, start: datetime, end: datetime, **fields: Any) -> Event:
    return Event(id=id, calendar_id="", start=start, end=end, **fields)


INSIDE = (
    event(
        "standup",
        at(23, 9),
        at(23, 9, 15),
        response=Response.ACCEPTED,
        organizer="boss@example.com",
        attendees=(OWNER, "boss@example.com"),
        title="Standup",
    ),
    event(
        "declined",
        at(24, 10),
        at(24, 11),
        response=Response.DECLINED,
        organizer="boss@example.com",
        attendees=("boss@example.com", OWNER),
    ),
    event(
        "tentative-free",
        at(24, 13),
        at(24, 14),
        status=Status.TENTATIVE,
        transparency=Transparency.FREE,
        organizer=OWNER,
        attendees=("ana@example.com",),
    ),
    event(
        "away",
        at(25, 0),
        at(26, 0),
        all_day=True,
        event_type=EventType.OUT_OF_OFFICE,
        title="Out of office",
    ),
    event("focus", at(26, 8), at(26, 10), event_type=EventType.FOCUS),
    event("block", at(26, 13), at(26, 13, 45), owned_block_id="b1", title="Coaching"),
    event("cancelled", at(27, 15), at(27, 16), status=Status.CANCELLED),
    event("overnight", at(22, 23), at(23, 1)),  # starts before the window, ends inside
)
OUTSIDE = (
    event("before", at(20, 9), at(20, 10)),
    event("ends-at-window-start", at(22, 22), at(23, 0)),  # half-open: not inside
    event("starts-at-window-end", at(30, 0), at(30, 1)),
    event("next-month", at(10, 9, 0, month=12), at(10, 10, 0, month=12)),
)
SAMPLE = INSIDE + OUTSIDE


def fields(e: Event) -> tuple[Any, ...]:
    """What every backend must read back as written (ids, instants, meaning)."""
    return (
        e.id,
        e.start,
        e.end,
        e.all_day,
        e.status,
        e.response,
        e.transparency,
        e.event_type,
        e.attendees,
        e.organizer,
        e.owned_block_id,
        e.title,
    )


# -- writing events the way other calendar programs do ---------------------------------
_PARTSTAT = {
    Response.ACCEPTED: "ACCEPTED",
    Response.TENTATIVE: "TENTATIVE",
    Response.DECLINED: "DECLINED",
    Response.NEEDS_ACTION: "NEEDS-ACTION",
}


def ics_text(events: Sequence[Event]) -> str:
    """A VCALENDAR holding ``events`` as a calendar program would write them for OWNER."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//steadyhand tests//EN"]
    for e in events:
        lines += ["BEGIN:VEVENT", f"UID:{e.id}", "DTSTAMP:20261101T000000Z"]
        if e.all_day:
            lines.append(f"DTSTART;VALUE=DATE:{e.start.astimezone(TZ):%Y%m%d}")
            lines.append(f"DTEND;VALUE=DATE:{e.end.astimezone(TZ):%Y%m%d}")
        else:
            lines.append(f"DTSTART:{e.start.astimezone(UTC):%Y%m%dT%H%M%SZ}")
            lines.append(f"DTEND:{e.end.astimezone(UTC):%Y%m%dT%H%M%SZ}")
        lines.append(f"STATUS:{e.status.value.upper()}")
        lines.append(
            "TRANSP:" + ("TRANSPARENT" if e.transparency is Transparency.FREE else "OPAQUE")
        )
        if e.event_type is not EventType.DEFAULT:
            lines.append(f"X-STEADYHAND-TYPE:{e.event_type.value}")
        if e.organizer:
            lines.append(f"ORGANIZER:mailto:{e.organizer}")
        for person in e.attendees:
            partstat = _PARTSTAT.get(e.response, "ACCEPTED") if person == OWNER else "ACCEPTED"
            lines.append(f"ATTENDEE;PARTSTAT={partstat}:mailto:{person}")
        if e.owned_block_id:
            lines.append(f"X-STEADYHAND-BLOCK:{e.owned_block_id}")
        if e.title:
            lines.append(f"SUMMARY:{e.title}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


# -- backends --------------------------------------------------------------------------
class Backend(Protocol):
    connector: CalendarConnector

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        """A calendar of OWNER holding ``events``."""
        ...

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        """The user edits their calendar elsewhere: it now holds ``events``."""
        ...


def ref(kind: str, location: str) -> CalendarRef:
    return CalendarRef(
        key=f"{OWNER}:{kind}:{location}",
        owner=OWNER,
        kind=kind,
        location=location,
        timezone="Europe/Berlin",
    )


class MemoryBackend:
    def __init__(self) -> None:
        self.connector = MemoryCalendar()

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        for e in events:
            self.connector.put("cy", e)
        return ref("memory", "cy")

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        for old in self.connector.events(cal.location):
            self.connector.remove(cal.location, old.id)
        for e in events:
            self.connector.put(cal.location, e)


class IcsFileBackend:
    def __init__(self, folder: Path) -> None:
        self.connector = IcsCalendar()
        self.path = folder / "cy.ics"

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        self.path.write_text(ics_text(events), encoding="utf-8")
        return ref("ics", str(self.path))

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        self.path.write_text(ics_text(events), encoding="utf-8")


class FeedServer:
    """A loopback iCalendar feed with ETag / If-None-Match, like any static web server."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.extra_headers: dict[str, str] = {}
        self.content_type = "text/calendar; charset=utf-8"
        self.answers: list[tuple[int, str | None]] = []  # (status, If-None-Match sent)
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sent = self.headers.get("If-None-Match")
                etag = '"' + hashlib.sha256(feed.body).hexdigest()[:16] + '"'
                if feed.status != 200:
                    status, body = feed.status, b"nope"
                elif sent == etag:
                    status, body = 304, b""
                else:
                    status, body = 200, feed.body
                feed.answers.append((status, sent))
                self.send_response(status)
                for name, value in feed.extra_headers.items():
                    self.send_header(name, value)
                if status in (200, 304):
                    self.send_header("ETag", etag)
                if status != 304:
                    self.send_header("Content-Type", feed.content_type)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cy.ics"

    def reset(self) -> None:
        self.body, self.status, self.content_type = b"", 200, "text/calendar; charset=utf-8"
        self.extra_headers.clear()
        self.answers.clear()

    def full_answers(self) -> int:
        return sum(1 for status, _ in self.answers if status == 200)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class IcsHttpBackend:
    def __init__(self, feed: FeedServer) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxy for loopback
        self.connector = IcsCalendar(session=session, timeout=5)
        self.feed = feed

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        self.feed.body = ics_text(events).encode()
        return ref("ics", self.feed.url)

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        self.feed.body = ics_text(events).encode()


class VdirBackend:
    def __init__(self, folder: Path) -> None:
        self.connector = VdirCalendar()
        self.folder = folder / "cy"
        self.folder.mkdir()

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        self.change(ref("vdir", str(self.folder)), events)
        return ref("vdir", str(self.folder))

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        for old in self.folder.glob("*.ics"):
            old.unlink()
        for e in events:
            (self.folder / f"{quote(e.id, safe='')}.ics").write_text(ics_text([e]), "utf-8")


@pytest.fixture(scope="module")
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


# -- helpers ---------------------------------------------------------------------------
def merge(view: dict[str, Event], result: SyncResult) -> dict[str, Event]:
    """What a store holds after taking ``result`` in, as the caller does."""
    if result.full:
        view = {}
    else:
        view = dict(view)
        for removed in result.removed:
            view.pop(removed, None)
    for e in result.events:
        view[e.id] = e
    return view


def block(block_id: str, start: datetime, minutes: int = 45, **fields: Any) -> Block:
    return Block(
        id=block_id,
        owner=OWNER,
        rule="coaching",
        start=start,
        end=start + timedelta(minutes=minutes),
        title="Coaching",
        **fields,
    )


def no_parsing(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the calendar was parsed again although nothing changed")


# -- the contract ----------------------------------------------------------------------
class CalendarContract:
    """What every calendar backend must do. Subclasses provide the ``backend`` fixture."""

    writable: ClassVar[bool] = True

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        raise NotImplementedError

    def full_sync(self, backend: Backend, events: Sequence[Event] = SAMPLE) -> Any:
        cal = backend.calendar(events)
        result = backend.connector.sync(cal, WINDOW, None)
        return cal, result

    def test_backend_is_a_calendar_connector(self, backend: Backend) -> None:
        assert isinstance(backend.connector, CalendarConnector)
        assert backend.connector.read_only is not self.writable

    def test_full_sync_returns_the_events_in_the_window(self, backend: Backend) -> None:
        _, result = self.full_sync(backend)
        assert result.full and not result.unchanged
        assert sorted(e.id for e in result.events) == sorted(e.id for e in INSIDE)

    def test_full_sync_returns_aware_times_and_unique_ids(self, backend: Backend) -> None:
        _, result = self.full_sync(backend)
        ids = [e.id for e in result.events]
        assert len(ids) == len(set(ids))
        for e in result.events:
            assert e.start.utcoffset() is not None and e.end.utcoffset() is not None
            assert e.start <= e.end

    def test_event_meaning_is_read_back_as_written(self, backend: Backend) -> None:
        _, result = self.full_sync(backend)
        got = {e.id: fields(e) for e in result.events}
        assert got == {e.id: fields(e) for e in INSIDE}

    def test_events_outside_the_window_are_not_returned(self, backend: Backend) -> None:
        _, result = self.full_sync(backend, OUTSIDE)
        assert result.events == ()

    def test_second_sync_with_nothing_changed_reports_unchanged(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cal, first = self.full_sync(backend)
        monkeypatch.setattr(_ical, "parse", no_parsing)
        second = backend.connector.sync(cal, WINDOW, first.state)
        assert second.unchanged or (second.events == () and second.removed == ())
        assert merge(merge({}, first), second).keys() == {e.id for e in INSIDE}

    def test_sync_after_an_edit_elsewhere_sees_the_edit(self, backend: Backend) -> None:
        cal, first = self.full_sync(backend)
        moved = replace(INSIDE[0], start=at(23, 9, 30), end=at(23, 10))
        backend.change(cal, [moved, *INSIDE[2:]])  # standup moved, "declined" deleted
        second = backend.connector.sync(cal, WINDOW, first.state)
        assert not second.unchanged
        view = merge(merge({}, first), second)
        assert "declined" not in view
        assert (view["standup"].start, view["standup"].end) == (at(23, 9, 30), at(23, 10))

    def test_sync_of_a_new_window_returns_that_window(self, backend: Backend) -> None:
        cal, first = self.full_sync(backend)
        second = backend.connector.sync(cal, LATER_WINDOW, first.state)
        assert not second.unchanged
        assert {e.id for e in second.events} <= {"starts-at-window-end", "next-month"}
        assert "starts-at-window-end" in {e.id for e in second.events}

    # -- writes ------------------------------------------------------------------------
    def writable_only(self) -> None:
        if not self.writable:
            pytest.skip("read-only backend")

    def test_created_block_is_seen_with_its_block_id(self, backend: Backend) -> None:
        self.writable_only()
        cal, first = self.full_sync(backend)
        new = block("b9", at(25, 14))
        [applied] = backend.connector.apply(cal, [BlockChange(ChangeKind.CREATE, new, "test")])
        view = merge(merge({}, first), backend.connector.sync(cal, WINDOW, first.state))
        seen = view[applied.event_id]
        assert seen.owned_block_id == "b9"
        assert (seen.start, seen.end) == (new.start, new.end)
        assert seen.transparency is Transparency.BUSY

    def test_moved_block_is_seen_at_its_new_time(self, backend: Backend) -> None:
        self.writable_only()
        cal, first = self.full_sync(backend)
        new = block("b9", at(25, 14), transparency=Transparency.FREE)
        [created] = backend.connector.apply(cal, [BlockChange(ChangeKind.CREATE, new, "test")])
        state = backend.connector.sync(cal, WINDOW, first.state)
        later = replace(new, start=at(26, 15), end=at(26, 16))
        move = BlockChange(ChangeKind.MOVE, later, "slot taken", created.event_id, created.etag)
        [moved] = backend.connector.apply(cal, [move])
        assert moved.event_id == created.event_id
        view = merge(
            merge(merge({}, first), state), backend.connector.sync(cal, WINDOW, state.state)
        )
        owned = [e for e in view.values() if e.owned_block_id == "b9"]
        assert [(e.id, e.start, e.end) for e in owned] == [
            (created.event_id, at(26, 15), at(26, 16))
        ]
        assert owned[0].transparency is Transparency.FREE

    def test_deleted_block_is_gone(self, backend: Backend) -> None:
        self.writable_only()
        cal, first = self.full_sync(backend)
        [created] = backend.connector.apply(
            cal, [BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "test")]
        )
        state = backend.connector.sync(cal, WINDOW, first.state)
        delete = BlockChange(
            ChangeKind.DELETE, block("b9", at(25, 14)), "not needed", created.event_id
        )
        backend.connector.apply(cal, [delete])
        view = merge(
            merge(merge({}, first), state), backend.connector.sync(cal, WINDOW, state.state)
        )
        assert created.event_id not in view
        assert "b9" not in {e.owned_block_id for e in view.values()}

    def test_deleting_a_block_that_is_already_gone_counts_as_done(self, backend: Backend) -> None:
        self.writable_only()
        cal, _ = self.full_sync(backend)
        gone = BlockChange(ChangeKind.DELETE, block("b8", at(25, 9)), "x", "steadyhand-b8")
        assert [a.change for a in backend.connector.apply(cal, [gone])] == [gone]

    @pytest.mark.parametrize("kind", [ChangeKind.MOVE, ChangeKind.DELETE])
    def test_change_aimed_at_an_untagged_event_raises_not_owned_and_leaves_it(
        self, backend: Backend, kind: ChangeKind
    ) -> None:
        self.writable_only()
        cal, first = self.full_sync(backend)
        change = BlockChange(kind, block("b1", at(23, 11)), "bug", event_id="standup")
        with pytest.raises(NotOwned):
            backend.connector.apply(cal, [change])
        view = merge(merge({}, first), backend.connector.sync(cal, WINDOW, first.state))
        assert fields(view["standup"]) == fields(INSIDE[0])

    def test_apply_on_a_read_only_calendar_raises_read_only(self, backend: Backend) -> None:
        if self.writable:
            pytest.skip("writable backend")
        cal, _ = self.full_sync(backend)
        change = BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "test")
        with pytest.raises(ReadOnlyCalendar) as raised:
            backend.connector.apply(cal, [change])
        message = str(raised.value)
        assert "\n" not in message and OWNER in message and "read-only" in message


# -- the backends ----------------------------------------------------------------------
class TestMemory(CalendarContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield MemoryBackend()


class TestIcsFile(CalendarContract):
    writable = False

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield IcsFileBackend(tmp_path)

    def test_missing_file_is_unreadable_naming_it(self, tmp_path: Path) -> None:
        cal = ref("ics", str(tmp_path / "nope.ics"))
        with pytest.raises(CalendarUnreadable, match=r"nope\.ics: the file does not exist"):
            IcsCalendar().sync(cal, WINDOW, None)

    def test_garbage_file_is_unreadable_in_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bo.ics"
        path.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nthis is not\nEND:VCALENDAR\n")
        with pytest.raises(CalendarUnreadable) as raised:
            IcsCalendar().sync(ref("ics", str(path)), WINDOW, None)
        message = str(raised.value)
        assert message.startswith(f"{path}: not a valid iCalendar file (line 3")
        assert "\n" not in message and "export the calendar again" in message

    def test_a_folder_is_unreadable_with_a_hint_to_use_vdir(self, tmp_path: Path) -> None:
        with pytest.raises(CalendarUnreadable, match="vdir"):
            IcsCalendar().sync(ref("ics", str(tmp_path)), WINDOW, None)

    def test_touched_file_with_the_same_content_is_unchanged(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cal, first = self.full_sync(backend)
        stat = os.stat(cal.location)
        os.utime(cal.location, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        monkeypatch.setattr(_ical, "parse", no_parsing)
        second = backend.connector.sync(cal, WINDOW, first.state)
        assert second.unchanged and second.state.fingerprint != first.state.fingerprint

    def test_a_settled_file_is_not_even_hashed_when_unchanged(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cal, _ = self.full_sync(backend)
        os.utime(cal.location, ns=(0, 1_000_000_000_000_000_000))  # 2001: long settled
        first = backend.connector.sync(cal, WINDOW, None)
        monkeypatch.setattr(_ical, "parse", no_parsing)
        monkeypatch.setattr("connectors.ics.hashlib.sha256", no_parsing)
        assert backend.connector.sync(cal, WINDOW, first.state).unchanged


class TestIcsHttp(CalendarContract):
    writable = False

    @pytest.fixture
    def feed(self, feed_server: FeedServer) -> FeedServer:
        feed_server.reset()
        return feed_server

    @pytest.fixture
    def backend(self, feed: FeedServer) -> Iterator[Backend]:
        yield IcsHttpBackend(feed)

    def test_unchanged_feed_answers_304_and_is_not_parsed_again(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        cal, first = self.full_sync(backend)
        assert first.state.etag
        second = backend.connector.sync(cal, WINDOW, first.state)
        assert second.unchanged and second.events == ()
        assert feed.answers == [(200, None), (304, first.state.etag)]
        assert feed.full_answers() == 1

    def test_new_window_fetches_the_feed_unconditionally(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        cal, first = self.full_sync(backend)
        backend.connector.sync(cal, LATER_WINDOW, first.state)
        assert feed.answers == [(200, None), (200, None)]

    def test_missing_feed_is_unreadable_naming_the_url_and_status(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        feed.status = 404
        with pytest.raises(CalendarUnreadable) as raised:
            backend.connector.sync(ref("ics", feed.url), WINDOW, None)
        message = str(raised.value)
        assert message.startswith(f"{feed.url}: the server answered HTTP 404")
        assert "\n" not in message

    def test_forbidden_feed_says_to_use_the_secret_address(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        feed.status = 403
        with pytest.raises(CalendarUnreadable, match=r"HTTP 403.*secret"):
            backend.connector.sync(ref("ics", feed.url + "?token=hush"), WINDOW, None)

    def test_secret_query_is_not_shown_in_messages(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        feed.status = 404
        with pytest.raises(CalendarUnreadable) as raised:
            backend.connector.sync(ref("ics", feed.url + "?token=hush"), WINDOW, None)
        assert "hush" not in str(raised.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    def test_busy_or_failing_server_is_transient_with_retry_after(
        self, backend: IcsHttpBackend, feed: FeedServer, status: int
    ) -> None:
        feed.status = status
        feed.extra_headers["Retry-After"] = "120"
        with pytest.raises(TransientError) as raised:
            backend.connector.sync(ref("ics", feed.url), WINDOW, None)
        assert raised.value.retry_after == 120

    def test_unreachable_server_is_transient(self, backend: IcsHttpBackend) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(TransientError, match="cannot reach"):
            backend.connector.sync(ref("ics", f"http://127.0.0.1:{port}/x.ics"), WINDOW, None)

    def test_web_page_instead_of_a_feed_is_unreadable_with_a_hint(
        self, backend: IcsHttpBackend, feed: FeedServer
    ) -> None:
        feed.body = b"<!doctype html><html><body>Sign in</body></html>"
        feed.content_type = "text/html"
        with pytest.raises(CalendarUnreadable, match="web page"):
            backend.connector.sync(ref("ics", feed.url), WINDOW, None)


class TestVdir(CalendarContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        yield VdirBackend(tmp_path)

    def test_missing_folder_is_unreadable_saying_to_create_it(self, tmp_path: Path) -> None:
        cal = ref("vdir", str(tmp_path / "nope"))
        with pytest.raises(CalendarUnreadable) as raised:
            VdirCalendar().sync(cal, WINDOW, None)
        message = str(raised.value)
        assert "nope: the folder does not exist" in message and "create it" in message

    def test_broken_file_is_skipped_and_named_the_others_read(self, backend: VdirBackend) -> None:
        cal = backend.calendar(INSIDE[:2])
        (backend.folder / "bad.ics").write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
        result = backend.connector.sync(cal, WINDOW, None)
        assert len(result.events) == 2
        assert result.truncated == "skipped 1 unreadable file: bad.ics"

    def test_other_files_in_the_folder_are_ignored(self, backend: VdirBackend) -> None:
        cal = backend.calendar(INSIDE[:1])
        (backend.folder / "color").write_text("#ff0000")
        (backend.folder / ".hidden.ics.tmp").write_text("half a file")
        assert [e.id for e in backend.connector.sync(cal, WINDOW, None).events] == ["standup"]

    def test_created_block_is_a_tagged_file_named_after_the_block(
        self, backend: VdirBackend
    ) -> None:
        cal = backend.calendar(())
        new = block("b9", at(25, 14))
        [applied] = backend.connector.apply(cal, [BlockChange(ChangeKind.CREATE, new, "test")])
        assert applied.event_id == "steadyhand-b9"
        path = backend.folder / "b9.ics"
        stat = path.stat()
        assert applied.etag == f"{stat.st_mtime_ns}-{stat.st_size}"
        vevent = icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")[0]
        assert str(vevent["UID"]) == "steadyhand-b9"
        assert str(vevent["X-STEADYHAND-BLOCK"]) == "b9"
        assert vevent["DTSTART"].dt == new.start and vevent["DTSTART"].dt.tzinfo is not None
        assert vevent["DTSTART"].dt.utcoffset() == timedelta(0)
        assert str(vevent["SUMMARY"]) == "Coaching" and str(vevent["TRANSP"]) == "OPAQUE"
        assert sorted(p.name for p in backend.folder.iterdir()) == ["b9.ics"]

    def test_change_with_a_stale_etag_raises_transient_and_changes_nothing(
        self, backend: VdirBackend
    ) -> None:
        cal, _ = self.full_sync(backend)
        before = (backend.folder / "block.ics").read_bytes()
        move = BlockChange(ChangeKind.MOVE, block("b1", at(27, 9)), "x", "block", etag="1-1")
        with pytest.raises(TransientError, match="changed since it was read"):
            backend.connector.apply(cal, [move])
        assert (backend.folder / "block.ics").read_bytes() == before

    def test_change_with_the_etag_from_sync_succeeds(self, backend: VdirBackend) -> None:
        cal, first = self.full_sync(backend)
        [tagged] = [e for e in first.events if e.owned_block_id == "b1"]
        move = BlockChange(ChangeKind.MOVE, block("b1", at(27, 9)), "x", tagged.id, tagged.etag)
        [applied] = backend.connector.apply(cal, [move])
        assert applied.event_id == "block" and applied.etag != tagged.etag

    def test_failed_write_leaves_the_old_file_and_no_temporary_file(
        self, backend: VdirBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cal, _ = self.full_sync(backend)
        before = sorted((p.name, p.read_bytes()) for p in backend.folder.iterdir())

        def crash(src: Any, dst: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", crash)
        move = BlockChange(ChangeKind.MOVE, block("b1", at(27, 9)), "x", "block")
        with pytest.raises(PermanentError, match="No space left"):
            backend.connector.apply(cal, [move])
        assert sorted((p.name, p.read_bytes()) for p in backend.folder.iterdir()) == before

    def test_create_never_overwrites_an_untagged_file(self, backend: VdirBackend) -> None:
        cal = backend.calendar([event("b9", at(25, 14), at(25, 15))])  # the user's b9.ics
        before = sorted((p.name, p.read_bytes()) for p in backend.folder.iterdir())
        with pytest.raises(NotOwned):
            backend.connector.apply(
                cal, [BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "test")]
            )
        assert sorted((p.name, p.read_bytes()) for p in backend.folder.iterdir()) == before
