"""Benchmark of recording answers through the web service (docs/benchmarks.md, issue 13 item 7).

In the same run, against one store (SQLite by default, ``--store postgresql://…`` for a
server):

* **bare**: ``--count`` answers recorded by ``Store.record_answers`` in this process, one
  transaction each, as the web service does for one POST (distinct people and days);
* **served**: the same number of answer POSTs (``POST /answer/{token}`` with the form's
  CSRF field, a score and two notes) to a real ``steadyhand serve`` process on a free
  loopback port, from ``--clients`` threads (default 50) each with its own keep-alive
  connection (``requests.Session``). Timed from the first POST to the last answer; each
  POST's latency is kept for the percentiles.

Prints answers/s of both, the ratio served / bare, and the p50, p90, p99 and max latency
of the served POSTs. It then checks the store holds every answer exactly once (a POST that
did not record is an error, not a figure).

Run: ``.venv/bin/python bench/serve.py [--count 5000] [--clients 50] [--people 500]
[--store URL] [--repeat 3] [--keep]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, select

from worker.links import Links, Purpose
from worker.store import Store
from worker.store.tables import answers

KEY = "bench-key-" + "x" * 33
#: The fixed clock of the run: a Thursday evening in Berlin; answers are for the days before.
NOW = datetime(2026, 11, 5, 17, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    email: str
    day: str
    score: int


def plan(count: int, people: int, salt: int) -> list[Answer]:
    """``count`` distinct (person, day) answers; ``salt`` keeps repeats apart."""
    out = []
    for i in range(count):
        person, rest = i % people, i // people
        day = date(2026, 11, 5) - timedelta(days=rest % 2)
        out.append(
            Answer(f"p{person:05d}.{salt}.{rest // 2}@example.com", day.isoformat(), 1 + i % 5)
        )
    return out


def config(folder: Path, port: int, store: str, people: list[str]) -> Path:
    lines = [
        f"store: {store}",
        "timezone: Europe/Berlin",
        "web:",
        f"  listen: 127.0.0.1:{port}",
        f"  base_url: http://127.0.0.1:{port}",
        "people:",
    ]
    lines += [f"  - {{email: {e}, name: P{i}}}" for i, e in enumerate(people)]
    path = folder / "steadyhand.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(folder: Path, cfg: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "STEADYHAND_SECRET_KEY": KEY,
        "STEADYHAND_NOW": NOW.isoformat(),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "serve", "-c", str(cfg), "--log-level", "warning"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start: {(folder / 'serve.log').read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def bare(store: Store, items: list[Answer]) -> float:
    start = time.perf_counter()
    for a in items:
        store.record_answers(
            a.email,
            "reflection",
            a.day,
            {"score": a.score, "moved": "the release", "dampened": "a long meeting"},
            NOW,
        )
    return time.perf_counter() - start


def served(port: int, items: list[Answer], clients: int) -> tuple[float, list[float], int]:
    links = Links(KEY, f"http://127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    forms = []
    for a in items:
        token = links.token(Purpose.ANSWER, a.email, "reflection", a.day, NOW)
        forms.append(
            (
                f"{base}/answer/{token}",
                {
                    "csrf": links.csrf(token, NOW),
                    "score": str(a.score),
                    "moved": "the release",
                    "dampened": "a long meeting",
                },
            )
        )
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    cursor = iter(forms)

    def client() -> None:
        session = requests.Session()
        mine = []
        bad = 0
        while True:
            with lock:
                job = next(cursor, None)
            if job is None:
                break
            url, form = job
            t0 = time.perf_counter()
            answer = session.post(url, data=form, headers={"Origin": base}, allow_redirects=False)
            mine.append(time.perf_counter() - t0)
            if answer.status_code >= 400:
                bad += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, failures[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stored(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(answers)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--store", default=None, help="a store URL (default: SQLite in a temp dir)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="steadyhand-bench-serve-"))
    url = args.store or f"sqlite:///{folder / 'steadyhand.db'}"
    best_bare = best_served = float("inf")
    all_latencies: list[float] = []
    try:
        for run in range(args.repeat):
            bare_items = plan(args.count, args.people, salt=2 * run)
            web_items = plan(args.count, args.people, salt=2 * run + 1)
            people = sorted({a.email for a in web_items})
            port = free_port()
            cfg = config(folder, port, url, people)
            store = Store(url)
            before = stored(store)
            t_bare = bare(store, bare_items)
            with serving(folder, cfg, port):
                t_served, latencies, failed = served(port, web_items, args.clients)
            got = stored(store) - before - 3 * len(bare_items)
            store.close()
            if failed or got != len(web_items) * 3:
                raise SystemExit(
                    f"run {run + 1}: {failed} POSTs failed; {got} answers stored of "
                    f"{len(web_items) * 3} (3 per POST)"
                )
            print(
                f"run {run + 1}: bare {args.count / t_bare:,.0f}/s, served "
                f"{args.count / t_served:,.0f}/s, p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
            )
            if t_served < best_served:
                best_served, all_latencies = t_served, latencies
            best_bare = min(best_bare, t_bare)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")

    ms = [x * 1000 for x in all_latencies]
    print()
    print(
        f"machine   {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"store     {'SQLite' if url.startswith('sqlite') else url.split(':')[0]}")
    print(f"answers   {args.count:,} per phase, {args.clients} clients, best of {args.repeat}")
    print(
        f"bare      {args.count / best_bare:10,.0f} answers/s  (Store.record_answers, one process)"
    )
    print(
        f"served    {args.count / best_served:10,.0f} answers/s  (POST /answer, steadyhand serve)"
    )
    print(f"ratio     {best_bare / best_served:10.2f}  (served / bare throughput)")
    print(
        f"latency   p50 {statistics.median(ms):.1f} ms, p90 {percentile(ms, 0.9):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
