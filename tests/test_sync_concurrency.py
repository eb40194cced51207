"""`sync` reads calendars at once (``sync.concurrency``, docs/limits.md): feeds on a
loopback server that counts the requests in flight, a failing calendar beside good ones,
the store written as each read ends, what the user sees on a terminal and in a pipe,
Ctrl-C, and what an unchanged feed or file costs (one conditional GET; no parse)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from connectors import _ical
from connectors.ics import IcsCalendar
from worker import config as config_mod
from worker.cli import calendars as cli_calendars
from worker.core.model import UTC, CalendarRef, SyncResult, SyncState, TimeRange
from worker.cycle import sync as syncing
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

from .conftest import Result, write

NOW = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
HOLD = 2.0  # how long a request waits for others to arrive at most (a fake server's latency)


def ics(n: int, *hours: int) -> bytes:
    """A calendar of one event at 10:00 UTC on the day of NOW (or one at each of ``hours``)."""
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:feed-{n}-{hour}@test\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:20261105T{hour:02d}0000Z\r\nDTEND:20261105T{hour:02d}3000Z\r\n"
        "SUMMARY:x\r\nEND:VEVENT\r\n"
        for hour in hours or (10,)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n".encode()


class Feeds:
    """Loopback iCalendar feeds ``/feed<n>.ics`` that count the requests in flight.

    ``hold``: the first requests wait (at most HOLD s) until that many were in flight at
    once, so concurrency shows whatever the timing. ``gates``: a feed that answers only when its
    event is set. ``validators``: ``etag`` or ``last-modified``, as a static server sends."""

    def __init__(self, validators: str = "etag") -> None:
        self.hold = 1
        self.validators = validators
        self.status: dict[str, int] = {}
        self.gates: dict[str, threading.Event] = {}
        self.requests: list[tuple[str, dict[str, str], int]] = []  # path, validators, status
        self.in_flight = 0
        self.most_in_flight = 0
        self._cond = threading.Condition()
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feeds.serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, n: int) -> str:
        return f"{self.base}/feed{n}.ics"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._cond:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.most_in_flight >= self.hold, timeout=HOLD)
        gate = self.gates.get(path)
        if gate is not None:
            gate.wait(timeout=30)
        body = ics(int(re.sub(r"\D", "", path)))
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        sent = {
            k: v
            for k in ("If-None-Match", "If-Modified-Since")
            if (v := handler.headers.get(k)) is not None
        }
        status = self.status.get(path, 200)
        if status == 200 and (sent.get("If-None-Match") == etag or "If-Modified-Since" in sent):
            status = 304
        with self._cond:
            self.requests.append((path, sent, status))
            self.in_flight -= 1
        with contextlib.suppress(OSError):  # the client hung up (Ctrl-C)
            self._answer(handler, status, body)

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        modified = formatdate(1_700_000_000, usegmt=True)
        handler.send_response(status)
        if self.validators == "etag":
            handler.send_header("ETag", etag)
        else:
            handler.send_header("Last-Modified", modified)
        payload = body if status == 200 else b"" if status == 304 else b"nope"
        if status != 304:
            handler.send_header("Content-Type", "text/calendar")
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if status != 304:
            handler.wfile.write(payload)

    def answers(self) -> Counter[str]:
        return Counter(path for path, _, _ in self.requests)

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds() -> Iterator[Feeds]:
    served = Feeds()
    yield served
    served.close()


def config(folder: Path, calendars: Sequence[str], sync: str = "") -> Path:
    """A config of one person per calendar (``ics: …`` or ``vdir: …``)."""
    people = "".join(
        f"  - email: p{n}@example.com\n    calendar: {{{where}}}\n"
        for n, where in enumerate(calendars)
    )
    options = f"sync: {{{sync}}}\n" if sync else ""
    text = f"timezone: Europe/Berlin\nstore: sqlite:///var/s.db\n{options}people:\n{people}"
    return write(folder / "steadyhand.yaml", text)


def runtime(path: Path) -> Runtime:
    settings = config_mod.load(path)
    return Runtime(
        settings=settings,
        store=Store(settings.store_url),
        transport=build_transport(settings),
        clock=lambda: NOW,
    )


@pytest.fixture
def runtimes() -> Iterator[Callable[[Path], Runtime]]:
    made: list[Runtime] = []

    def make(path: Path) -> Runtime:
        made.append(runtime(path))
        return made[-1]

    yield make
    for rt in made:
        rt.close()


def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every iCalendar parse from now on, by source."""
    seen: list[str] = []
    real = _ical.parse

    def counting(data: bytes, source: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(source)
        return real(data, source, *args, **kwargs)

    monkeypatch.setattr(_ical, "parse", counting)
    return seen


# -- concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "calendars", "expected"),
    [("", 16, 8), ("concurrency: 3", 9, 3), ("concurrency: 1", 4, 1)],
    ids=["default 8", "3", "1, one by one"],
)
def test_sync_reads_feeds_at_once_up_to_sync_concurrency_and_never_more(
    project: Path, feeds: Feeds, runtimes: Any, option: str, calendars: int, expected: int
) -> None:
    feeds.hold = expected  # each request waits until `expected` are in flight
    rt = runtimes(config(project, [f"ics: {feeds.url(n)}" for n in range(calendars)], option))
    reports = syncing.sync(rt, NOW)
    assert [r.outcome for r in reports] == ["read"] * calendars
    assert [r.owner for r in reports] == [f"p{n}@example.com" for n in range(calendars)]
    assert feeds.most_in_flight == expected


class _Recording:
    """A connector that counts its own calls in flight (a provider account's calendars)."""

    kind = "ics"
    read_only = True

    def __init__(self, parallel: int | None) -> None:
        if parallel is not None:
            self.parallel_reads = parallel
        self.in_flight = self.most = 0
        self.batches: list[list[str]] = []
        self._cond = threading.Condition()

    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        with self._cond:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.in_flight >= 2, timeout=0.1)
            self.in_flight -= 1
        return SyncResult(events=(), removed=(), state=SyncState(window=window), full=True)

    def apply(self, cal: CalendarRef, changes: Sequence[Any]) -> list[Any]:
        return []


@pytest.mark.parametrize(("parallel", "expected"), [(None, 1), (2, 2)])
def test_a_connector_is_called_at_most_its_parallel_reads_at_once(
    project: Path, runtimes: Any, parallel: int | None, expected: int
) -> None:
    rt = runtimes(config(project, [f"ics: cal/{n}.ics" for n in range(4)]))
    connector = _Recording(parallel)
    rt.calendars[("ics", None)] = connector
    reports = syncing.sync(rt, NOW)
    assert [r.outcome for r in reports] == ["read"] * 4
    assert connector.most == expected


class _Batching(_Recording):
    def sync_many(
        self, items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]]
    ) -> list[SyncResult | Exception]:
        self.batches.append([cal.owner for cal, _, _ in items])
        return [SyncResult((), (), SyncState(window=w), True) for _, w, _ in items]

    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        raise AssertionError("a connector that batches is asked for all its calendars at once")


def test_a_connector_that_batches_gets_all_its_calendars_in_one_call(
    project: Path, runtimes: Any
) -> None:
    rt = runtimes(config(project, [f"ics: cal/{n}.ics" for n in range(3)]))
    connector = _Batching(None)
    rt.calendars[("ics", None)] = connector
    assert [r.outcome for r in syncing.sync(rt, NOW)] == ["read"] * 3
    assert connector.batches == [["p0@example.com", "p1@example.com", "p2@example.com"]]


class _Exploding(IcsCalendar):
    """A library bug in one calendar: not one of steadyhand's errors."""

    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        if "boom" in cal.location:
            raise ZeroDivisionError("division by zero")
        return super().sync(cal, window, state)


def test_a_failing_calendar_fails_alone_while_the_others_are_read_beside_it(
    project: Path, feeds: Feeds, runtimes: Any
) -> None:
    feeds.status["/feed1.ics"] = 404
    calendars = [
        f"ics: {feeds.url(0)}",
        f"ics: {feeds.url(1)}",
        "ics: cal/missing.ics",
        f"ics: {feeds.base}/boom/feed3.ics",
        f"ics: {feeds.url(4)}",
    ]
    rt = runtimes(config(project, calendars))
    rt.calendars[("ics", None)] = _Exploding()
    reports = syncing.sync(rt, NOW)
    assert [(r.owner, r.outcome) for r in reports] == [
        ("p0@example.com", "read"),
        ("p1@example.com", "failed"),
        ("p2@example.com", "failed"),
        ("p3@example.com", "failed"),
        ("p4@example.com", "read"),
    ]
    assert "HTTP 404" in (reports[1].error or "")
    assert "does not exist" in (reports[2].error or "")
    assert reports[3].error == "ZeroDivisionError: division by zero"
    assert [r.events for r in reports] == [1, 0, 0, 0, 1]
    stored = {c.calendar_key: c for c in rt.store.calendars()}
    assert stored[reports[4].calendar_key].last_ok is not None


def test_each_calendar_is_stored_as_its_read_ends_while_a_slow_one_is_still_read(
    project: Path, feeds: Feeds, runtimes: Any
) -> None:
    slow = threading.Event()
    feeds.gates["/feed0.ics"] = slow
    rt = runtimes(config(project, [f"ics: {feeds.url(n)}" for n in range(5)]))
    order: list[str] = []

    def stored(report: syncing.SyncReport) -> None:
        order.append(report.owner)
        if report.owner != "p0@example.com":
            assert not slow.is_set()  # the slow feed is still being read
            state = rt.store.sync_state(report.calendar_key)
            assert state is not None and state.etag  # already in the store
        if len(order) == 4:
            slow.set()

    reports = syncing.sync(rt, NOW, on_done=stored)
    assert order[-1] == "p0@example.com" and len(order) == 5
    assert [r.outcome for r in reports] == ["read"] * 5
    assert reports[0].owner == "p0@example.com"  # the list is in config order


# -- what the user sees ------------------------------------------------------------------


@pytest.fixture
def three_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for n in range(3):
        (project / "cal").mkdir(exist_ok=True)
        (project / "cal" / f"{n}.ics").write_bytes(ics(n))
    (project / "cal" / "1.ics").write_bytes(ics(1, 10, 12))
    config(project, [f"ics: cal/{n}.ics" for n in range(3)] + ["ics: cal/gone.ics"])
    monkeypatch.setenv("STEADYHAND_NOW", NOW.isoformat())
    return project


def test_sync_in_a_pipe_prints_a_line_per_calendar_as_it_ends_then_the_table(
    run_cli: Callable[..., Result], three_files: Path
) -> None:
    result = run_cli("sync")
    assert result.code == 2
    lines = result.out.splitlines()
    table = lines.index(next(li for li in lines if li.startswith("Calendars")))
    said = sorted(lines[:table])
    assert said == sorted(
        [
            f"p0@example.com (ics: {three_files}/cal/0.ics): read, 1 event, {_ms(said, 'p0')}",
            f"p1@example.com (ics: {three_files}/cal/1.ics): read, 2 events, {_ms(said, 'p1')}",
            f"p2@example.com (ics: {three_files}/cal/2.ics): read, 1 event, {_ms(said, 'p2')}",
            f"p3@example.com (ics: {three_files}/cal/gone.ics): failed: see below, "
            f"{_ms(said, 'p3')}",
        ]
    )
    assert "the file does not exist" not in result.out  # said once, below, on stderr
    errors = result.err.strip().splitlines()
    assert len(errors) == 1 and "gone.ics: the file does not exist" in errors[0]
    again = run_cli("sync")
    assert sum("unchanged, 1 event," in li for li in again.out.splitlines()) == 2


def _ms(lines: list[str], who: str) -> str:
    return next(li for li in lines if li.startswith(who)).rsplit(", ", 1)[1]


def test_sync_on_a_terminal_shows_a_progress_bar_of_calendars_done_then_the_table(
    run_cli: Callable[..., Result], three_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120, highlight=False)
    monkeypatch.setattr(cli_calendars, "out", screen)
    result = run_cli("sync")
    assert result.code == 2
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "Syncing calendars" in shown and "4/4" in shown
    assert "read, 1 event" not in shown  # no lines: the bar says it
    assert "Calendars" in shown and "p2@example.com" in shown


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "sync.concurrency: 0 is too small — the least is 1"),
        ("1000", "sync.concurrency: 1000 is too large — the most is 64"),
    ],
)
def test_config_check_rejects_a_concurrency_out_of_range_with_the_fix(
    run_cli: Callable[..., Result], project: Path, value: str, said: str
) -> None:
    config(project, ["ics: cal/0.ics"], f"concurrency: {value}")
    result = run_cli("config", "check")
    assert result.code == 2
    assert said in result.err


#: `steadyhand` as its console script runs it, with Ctrl-C's handler Python installs in a
#: terminal (a background job of a non-interactive shell starts with SIGINT ignored).
ENTRY_POINT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from worker.cli import main; sys.exit(main(sys.argv[1:]))"
)


def interrupted(project: Path, feeds: Feeds, *command: str) -> tuple[int, str, str, float]:
    """Run ``command`` on six feeds that never answer, Ctrl-C it once all six are asked;
    its exit code, stdout, stderr, and how long it took to stop."""
    for n in range(6):
        feeds.gates[f"/feed{n}.ics"] = threading.Event()  # none answers before the test ends
    config(project, [f"ics: {feeds.url(n)}" for n in range(6)])
    child = subprocess.Popen(
        [sys.executable, "-c", ENTRY_POINT, *command, "--now", NOW.isoformat()],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while feeds.in_flight < 6 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)  # poll: the child's reads arrive at the server
        assert feeds.in_flight == 6
        child.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = child.communicate(timeout=10)
        took = time.monotonic() - signalled
    finally:
        child.kill()
    return child.returncode, out, err, took


def test_ctrl_c_stops_a_sync_of_slow_feeds_at_once(project: Path, feeds: Feeds) -> None:
    code, out, err, took = interrupted(project, feeds, "sync")
    assert code == 130, (out, err)
    assert out == ""  # nothing was read, nothing is said read
    assert err.splitlines() == ["interrupted: stopped before finishing (nothing stored is lost)"]
    assert took < 3


def test_ctrl_c_during_run_once_says_so_in_one_line(project: Path, feeds: Feeds) -> None:
    code, out, err, _ = interrupted(project, feeds, "run", "--once")
    assert code == 130, (out, err)
    assert out == ""
    assert err.splitlines() == ["interrupted: stopped before finishing (nothing stored is lost)"]


# -- what an unchanged calendar costs -------------------------------------------------------


@pytest.mark.parametrize("validators", ["etag", "last-modified"])
def test_an_unchanged_feed_costs_one_conditional_get_answered_304_and_no_parse(
    project: Path, runtimes: Any, monkeypatch: pytest.MonkeyPatch, validators: str
) -> None:
    served = Feeds(validators)
    try:
        rt = runtimes(config(project, [f"ics: {served.url(n)}" for n in range(5)]))
        first = syncing.sync(rt, NOW)
        assert [r.outcome for r in first] == ["read"] * 5
        assert served.answers() == Counter({f"/feed{n}.ics": 1 for n in range(5)})
        parsed = parses(monkeypatch)
        served.requests.clear()
        second = syncing.sync(runtimes(project / "steadyhand.yaml"), NOW)
        assert [(r.outcome, r.events) for r in second] == [("unchanged", 1)] * 5
        assert served.answers() == Counter({f"/feed{n}.ics": 1 for n in range(5)})
        header = "If-None-Match" if validators == "etag" else "If-Modified-Since"
        assert all(header in sent and status == 304 for _, sent, status in served.requests)
        assert parsed == []
    finally:
        served.close()


def test_an_unchanged_file_is_not_parsed_again_by_mtime_size_and_hash(
    project: Path, runtimes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [project / "cal" / f"{n}.ics" for n in range(3)]
    for n, path in enumerate(files):
        write(path, ics(n).decode())
        os.utime(path, ns=(0, 1_000_000_000_000_000_000))  # 2001: settled long ago
    folder = project / "cy"
    write(folder / "a.ics", ics(9).decode())
    os.utime(folder / "a.ics", ns=(0, 1_000_000_000_000_000_000))
    path = config(project, [f"ics: {f}" for f in files] + [f"vdir: {folder}"])
    assert [r.outcome for r in syncing.sync(runtimes(path), NOW)] == ["read"] * 4
    parsed = parses(monkeypatch)
    hashed: list[bytes] = []
    real = hashlib.sha256

    def counting(data: bytes = b"") -> Any:
        hashed.append(data)
        return real(data)

    monkeypatch.setattr("connectors.ics.hashlib.sha256", counting)
    os.utime(files[1], ns=(0, 1_100_000_000_000_000_000))  # touched: same bytes
    files[2].write_bytes(ics(2, 11))  # changed: same size, new content
    os.utime(files[2], ns=(0, 1_100_000_000_000_000_000))
    reports = syncing.sync(runtimes(path), NOW)
    assert [r.outcome for r in reports] == ["unchanged", "unchanged", "read", "unchanged"]
    ours = [source for source in parsed if source.startswith(str(project))]
    assert ours == [str(files[2])]  # the only file parsed again: the changed one
    assert files[1].read_bytes() in hashed and files[2].read_bytes() in hashed
    assert files[0].read_bytes() not in hashed  # mtime and size vouch for it: not even hashed


def test_a_google_accounts_calendars_go_in_one_batch_beside_feeds_read_at_once(
    project: Path, feeds: Feeds, runtimes: Any, tmp_path: Path
) -> None:
    pytest.importorskip("googleapiclient", reason="needs the google extra")
    from cryptography.fernet import Fernet

    from connectors.secrets import TokenStore
    from tests import test_google as g
    from tests.fakes.google import GoogleFake

    google = GoogleFake(seed=6)
    try:
        tokens = TokenStore(tmp_path / "tokens", Fernet.generate_key())
        accounts = g.many_calendars(google, tokens, 3)
        feeds.hold = 4  # the feeds are read at once, beside the account's one batch
        rt = runtimes(config(project, [f"ics: {feeds.url(n)}" for n in range(4)]))
        rt.calendars[("google", g.ACCOUNT)] = g.calendar(google, tokens)
        google.http_requests = 0
        reports = syncing.sync(rt, NOW, refs=[*accounts, *rt.refs()])
    finally:
        google.close()
        while g.OPENED:
            g.OPENED.pop().close()
    assert [(r.kind, r.outcome, r.events) for r in reports] == [("google", "read", 1)] * 3 + [
        ("ics", "read", 1)
    ] * 4
    assert google.http_requests == 1 and all(c.in_batch for c in google.calls)
    assert feeds.most_in_flight == 4
