"""Benchmark of reading many feeds at once (docs/benchmarks.md, issue 11 item 11).

A loopback HTTP server (``http.server.ThreadingHTTPServer``) serves 200 small iCalendar
feeds, each answer delayed by 100 ms (a remote feed's latency), with an ETag as static
servers send. In the same run, :func:`worker.cycle.sync.sync` reads all of them into a fresh
store twice: one by one (``sync.concurrency: 1``, the baseline) and at the default
concurrency (8); then each store is synced again, when every feed answers 304 Not
Modified. It prints the wall times, the ratio (goal: at least 5x faster), the requests
the server answered and the most it had in flight at once.

Run: ``.venv/bin/python bench/sync.py [--feeds 200] [--latency 0.1] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worker import config as config_mod
from worker.cycle import sync as syncing
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

NOW = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
GOAL = 5.0


def feed(n: int) -> bytes:
    """A small calendar: a weekly 1:1 and four single meetings in the week of NOW."""
    events = [
        "BEGIN:VEVENT",
        f"UID:weekly-{n}@bench",
        "DTSTAMP:20261101T000000Z",
        "DTSTART:20261005T090000Z",
        "DTEND:20261005T093000Z",
        "RRULE:FREQ=WEEKLY;COUNT=20",
        "SUMMARY:1:1",
        "END:VEVENT",
    ]
    for day in range(2, 6):
        events += [
            "BEGIN:VEVENT",
            f"UID:single-{n}-{day}@bench",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART:2026110{day}T{10 + n % 6:02d}0000Z",
            f"DTEND:2026110{day}T{11 + n % 6:02d}0000Z",
            "SUMMARY:meeting",
            "END:VEVENT",
        ]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", *events, "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


class Feeds:
    """The loopback feeds: every answer after ``latency`` seconds; counts what it answered."""

    def __init__(self, count: int, latency: float) -> None:
        self.bodies = {f"/feed{n}.ics": feed(n) for n in range(count)}
        self.answers: Counter[int] = Counter()
        self.in_flight = self.most = 0
        self._lock = threading.Lock()
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server
            wbufsize = 64 * 1024  # headers and body in one write: no Nagle / delayed-ACK stall

            def do_GET(self) -> None:
                with feeds._lock:
                    feeds.in_flight += 1
                    feeds.most = max(feeds.most, feeds.in_flight)
                time.sleep(latency)  # the feed's latency, not a wait for work
                body = feeds.bodies[self.path]
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                status = 304 if self.headers.get("If-None-Match") == etag else 200
                self.send_response(status)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", "0" if status == 304 else str(len(body)))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)
                with feeds._lock:
                    feeds.in_flight -= 1
                    feeds.answers[status] += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.answers.clear()
            self.most = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(folder: Path, feeds: Feeds, concurrency: int | None) -> Path:
    folder.mkdir(parents=True)
    people = "".join(
        f"  - {{email: p{n}@example.com, calendar: {{ics: '{feeds.base}/feed{n}.ics'}}}}\n"
        for n in range(len(feeds.bodies))
    )
    option = f"sync: {{concurrency: {concurrency}}}\n" if concurrency else ""
    path = folder / "steadyhand.yaml"
    path.write_text(
        f"timezone: Europe/Berlin\nstore: sqlite:///var/steadyhand.db\n{option}people:\n{people}"
    )
    return path


def timed_sync(path: Path, feeds: Feeds, expected: str) -> tuple[float, Counter[int], int]:
    """One `sync` of every feed (in-process, a fresh runtime): seconds, answers, most in flight."""
    settings = config_mod.load(path)
    rt = Runtime(
        settings=settings,
        store=Store(settings.store_url),
        transport=build_transport(settings),
        clock=lambda: NOW,
    )
    feeds.reset()
    try:
        started = time.perf_counter()
        reports = syncing.sync(rt, NOW)
        seconds = time.perf_counter() - started
    finally:
        rt.close()
    outcomes = Counter(r.outcome for r in reports)
    if outcomes != Counter({expected: len(feeds.bodies)}):
        raise SystemExit(f"expected every feed {expected}, got {dict(outcomes)}")
    return seconds, Counter(feeds.answers), feeds.most


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200, help="how many feeds")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steadyhand-bench-sync-"))
    feeds = Feeds(args.feeds, args.latency)
    try:
        print("steadyhand bench/sync.py")
        print(
            f"  python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.feeds} feeds, "
            f"{args.latency * 1000:.0f} ms each; best of {args.repeat}"
        )
        default = config_mod.Settings.model_fields["sync"].default.concurrency
        figures: dict[tuple[str, int], tuple[float, Counter[int], int]] = {}
        for attempt in range(args.repeat):
            for concurrency in (1, default):
                path = write_config(work / f"c{concurrency}-{attempt}", feeds, concurrency)
                for what, expected in (("first read", "read"), ("unchanged", "unchanged")):
                    got = timed_sync(path, feeds, expected)
                    best = figures.get((what, concurrency))
                    if best is None or got[0] < best[0]:
                        figures[(what, concurrency)] = got
        ok = True
        for what in ("first read", "unchanged"):
            base, fast = figures[(what, 1)], figures[(what, default)]
            ratio = base[0] / fast[0]
            ok = ok and ratio >= GOAL
            print(f"  -- {what} ({'200 OK' if what == 'first read' else '304'} answers) --")
            for concurrency, (seconds, answers, most) in ((1, base), (default, fast)):
                said = ", ".join(f"{n} x {status}" for status, n in sorted(answers.items()))
                print(
                    f"  concurrency {concurrency:2d}  {seconds:6.2f} s  "
                    f"({said}; at most {most} in flight)"
                )
            verdict = "met" if ratio >= GOAL else "NOT met"
            print(f"  ratio        {ratio:6.1f}x  (goal >= {GOAL:g}x: {verdict})")
        print(f"  result: {'goal met' if ok else 'goal NOT met'}")
    finally:
        feeds.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
