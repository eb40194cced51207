"""Hostile feeds and files: endless, trickling, redirecting in a loop, huge, or secret.

A loopback HTTP server plays each one; the ics connector must stop at ``sync.max_bytes``,
at ``sync.feed_timeout`` for the whole download (not per read), and after
``max_redirects``; a good calendar read before it in the same run is stored, and the
failure is one line, recorded for ``doctor``, that never quotes a file.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.ics import IcsCalendar
from tests.conftest import ROOT, write
from worker.core.errors import CalendarUnreadable, TransientError
from worker.core.model import CalendarRef, SyncLimits, TimeRange

WINDOW = TimeRange(datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
GOOD = (ROOT / "config" / "demo" / "ana.ics").read_bytes()
MB = 1024 * 1024


class Hostile(BaseHTTPRequestHandler):
    """Each path is one way a feed can misbehave."""

    hits: dict[str, int]
    trickle_every: float = 0.5

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it hung up: good
            getattr(self, "serve_" + path.strip("/").replace("-", "_"))()

    def serve_good(self) -> None:
        self._headers(200, {"Content-Length": str(len(GOOD))})
        self.wfile.write(GOOD)

    def serve_endless(self) -> None:
        self._headers(200, {"Transfer-Encoding": "chunked"})
        chunk = b"X" * 65536
        while True:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def serve_trickle(self) -> None:
        self._headers(200, {"Content-Length": "100000"})
        for _ in range(100000):
            self.wfile.write(b"B")
            self.wfile.flush()
            time.sleep(self.trickle_every)

    def serve_trickled_headers(self) -> None:  # the status line, then a header byte at a time
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        for _ in range(100000):
            self.wfile.write(b"X")
            self.wfile.flush()
            time.sleep(self.trickle_every)

    def serve_loop(self) -> None:
        self._headers(302, {"Location": "/loop", "Content-Length": "0"})

    def serve_slow_hop(self) -> None:  # each hop a little slow, none slow enough to time out
        time.sleep(0.8)
        self._headers(302, {"Location": "/slow-hop", "Content-Length": "0"})

    def serve_big(self) -> None:  # 50 MB, announced
        self._headers(200, {"Content-Length": str(50 * MB)})
        for _ in range(50):
            self.wfile.write(b"Y" * MB)

    def serve_big_chunked(self) -> None:  # 50 MB, not announced
        self._headers(200, {"Transfer-Encoding": "chunked"})
        for _ in range(50):
            self.wfile.write(b"%x\r\n%s\r\n" % (MB, b"Y" * MB))
        self.wfile.write(b"0\r\n\r\n")

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/calendar")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, int]]]:
    hits: dict[str, int] = {}
    handler = type("Handler", (Hostile,), {"hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def connector(**limits: Any) -> IcsCalendar:
    session = requests.Session()
    session.trust_env = False  # no proxy for loopback
    return IcsCalendar(session=session, timeout=5, limits=SyncLimits(**limits))


def feed(url: str) -> CalendarRef:
    return CalendarRef("k", "bo@example.com", "ics", url, "Europe/Berlin")


def test_an_endless_body_stops_at_the_byte_cap(server) -> None:
    base, _ = server
    started = time.monotonic()
    with pytest.raises(CalendarUnreadable) as raised:
        connector(max_bytes=MB).sync(feed(f"{base}/endless"), WINDOW, None)
    assert time.monotonic() - started < 5
    assert str(raised.value) == (
        f"{base}/endless: is larger than 1 MB (sync.max_bytes) — raise sync.max_bytes in "
        "steadyhand.yaml or export a shorter calendar"
    )


@pytest.mark.parametrize("path", ["trickle", "trickled-headers"])
def test_a_trickle_is_cut_at_the_deadline_of_the_whole_download(server, path: str) -> None:
    """One byte every 0.5 s, of the body or of the headers (the response never gets past
    them): no single read ever times out, the whole download does."""
    base, _ = server
    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        connector(feed_timeout=2.0).sync(feed(f"{base}/{path}"), WINDOW, None)
    took = time.monotonic() - started
    assert 1.9 < took < 3.5, took
    assert (
        str(raised.value)
        == f"{base}/{path}: the feed did not arrive within 2 s (sync.feed_timeout)"
    )


def test_a_body_trickling_a_byte_every_5_s_ends_by_the_deadline(server, monkeypatch) -> None:
    base, _ = server
    monkeypatch.setattr(Hostile, "trickle_every", 5.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"sync\.feed_timeout"):
        connector(feed_timeout=2.0).sync(feed(f"{base}/trickle"), WINDOW, None)
    assert time.monotonic() - started < 3.5


def test_a_redirect_loop_stops_after_the_redirect_limit(server) -> None:
    base, hits = server
    with pytest.raises(CalendarUnreadable, match=r"/loop: redirects more than 5 times — "):
        connector().sync(feed(f"{base}/loop"), WINDOW, None)
    assert hits["/loop"] == 6  # the first ask and five redirects


def test_a_chain_of_slow_redirects_ends_at_the_deadline_of_the_whole_download(server) -> None:
    base, hits = server
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"/slow-hop: the feed did not arrive within 2 s"):
        connector(feed_timeout=2.0).sync(feed(f"{base}/slow-hop"), WINDOW, None)
    assert time.monotonic() - started < 3.5
    assert hits["/slow-hop"] == 3  # 0.8 s each: the third answer comes after the deadline


def test_a_50_mb_feed_at_the_default_cap_is_refused_fast_with_little_memory(server) -> None:
    base, _ = server
    for path in ("/big", "/big-chunked"):
        tracemalloc.start()
        started = time.monotonic()
        with pytest.raises(CalendarUnreadable, match=r"is larger than 25 MB \(sync\.max_bytes\)"):
            connector().sync(feed(base + path), WINDOW, None)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
        print(f"\n{path}: refused in {took:.2f} s, peak {peak:.1f} MB traced")
        assert took < 10
        assert peak < (5 if path == "/big" else 80)  # announced: nothing read at all


def test_a_50_mb_file_at_the_default_cap_is_refused_fast_with_little_memory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.ics"
    with path.open("wb") as fh:
        fh.write(b"BEGIN:VCALENDAR\r\n")
        for _ in range(50):
            fh.write(b"X" * MB)
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(CalendarUnreadable) as raised:
        IcsCalendar().sync(feed(str(path)), WINDOW, None)
    took = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1] / MB
    tracemalloc.stop()
    print(f"\n50 MB file: refused in {took:.3f} s, peak {peak:.2f} MB traced")
    assert took < 1 and peak < 5
    assert str(raised.value).startswith(f"{path}: is larger than 25 MB (sync.max_bytes) — ")


# -- through the CLI --------------------------------------------------------------------
def cli_config(folder: Path, url: str, sync: str = "{max_bytes: 1MB}") -> None:
    (folder / "cal").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", folder / "cal" / "ana.ics")
    write(
        folder / "steadyhand.yaml",
        textwrap.dedent(f"""\
            timezone: Europe/Berlin
            sync: {sync}
            people:
              - email: ana@example.com
                calendar: {{ics: cal/ana.ics}}
              - email: bo@example.com
                calendar: {{ics: "{url}"}}
            """),
    )


def test_an_endless_feed_after_a_good_calendar_fails_alone_and_doctor_says_why(
    run_cli, project: Path, server, monkeypatch, caplog
) -> None:
    base, _ = server
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    cli_config(project, f"{base}/endless?token=s3cr3t-feed-token")
    caplog.set_level(logging.WARNING)
    result = run_cli("sync")
    assert result.code == 2
    ana = next(li for li in result.out.splitlines() if "ana@example.com" in li)
    assert "read" in ana and " 39 " in ana
    assert result.err.strip() == (
        f"error: {base}/endless?token=…: is larger than 1 MB (sync.max_bytes) — raise "
        "sync.max_bytes in steadyhand.yaml or export a shorter calendar"
    )
    assert "Traceback" not in result.err + result.out
    assert "s3cr3t" not in result.out + result.err
    doctor = run_cli("doctor")
    ana_row = next(li for li in doctor.out.splitlines() if "ana@example.com" in li)
    bo_row = next(li for li in doctor.out.splitlines() if "bo@example.com" in li)
    assert " 39 " in ana_row
    assert "is larger than 1 MB" in bo_row


def test_a_file_that_is_not_a_calendar_is_named_without_quoting_it(
    run_cli, project: Path, monkeypatch, caplog
) -> None:
    secret = "MADE-UP-SECRET-0f9e8d7c6b5a"
    shadow = write(project / "shadow", f"{secret}\nroot:$6$abc:19000:0:99999:7:::\n")
    inside = write(
        project / "inside.ics", f"BEGIN:VCALENDAR\nVERSION:2.0\n{secret}\nEND:VCALENDAR\n"
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    for path, what in (
        (shadow, "is not an iCalendar file (it does not begin with BEGIN:VCALENDAR)"),
        (inside, "not a valid iCalendar file (line 3: "),
    ):
        cli_config(project, str(path), sync="{}")
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        result = run_cli("sync")
        assert result.code == 2
        assert result.err.startswith(f"error: {path}: {what}")
        assert len(result.err.strip().splitlines()) == 1
        logged = "\n".join(r.getMessage() for r in caplog.records)
        doctor = run_cli("doctor")
        for seen in (result.out, result.err, logged, doctor.out, doctor.err):
            assert secret not in seen and "root:" not in seen
