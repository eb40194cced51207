"""What `steadyhand run` logs: a start line, a line per tick and per send, one line per retry
while the queue cannot be read (never a traceback flood), text or JSON lines; and a sync
failure said once by `run --once`. Each test runs the real CLI in its own process."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, write
from tests.waiting import wait_for
from worker import config as config_mod
from worker.cycle import sync as syncing
from worker.cycle.decide import decide as decide_emails
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

NOW = "2026-11-05T16:45:00+01:00"
RETRY = re.compile(r"queue redis://127\.0\.0\.1:\d+ unreachable: (.+); retrying in (\d+) s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def project(tmp_path: Path, queue: str | None = None, calendar: str = "cal/ana.ics") -> Path:
    (tmp_path / "cal").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", tmp_path / "cal" / "ana.ics")
    return write(
        tmp_path / "steadyhand.yaml",
        "timezone: Europe/Berlin\n"
        + (f"queue: {queue}\n" if queue else "")
        + "people:\n  - email: ana@example.com\n    name: Ana Lima\n"
        f"    calendar: {{ics: {calendar}}}\n"
        "teams:\n  - {name: T, leader: ana@example.com}\n"
        "emails:\n  reflection: {to: leaders, at: '16:30'}\n",
    )


class Worker:
    """`steadyhand run` in its own process, its stderr in a file read while it runs."""

    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc, self.log = proc, log
        self.code: int | None = None

    @property
    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def said(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    @property
    def retries(self) -> list[re.Match[str]]:
        return [m for m in map(RETRY.search, self.lines) if m]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.code = self.proc.wait(timeout=30)


@contextmanager
def worker(tmp_path: Path, cfg: Path, *options: str) -> Iterator[Worker]:
    env = {**os.environ, "STEADYHAND_NOW": NOW, "COLUMNS": "200"}
    env.pop("STEADYHAND_CONFIG", None)
    log = tmp_path / "stderr.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", *options, "run", "-c", str(cfg)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    running = Worker(proc, log)
    try:
        yield running
    finally:
        running.stop()


def test_an_unreachable_queue_is_one_line_per_retry_with_growing_waits(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    cfg = project(tmp_path, f"redis://127.0.0.1:{port}")
    with worker(tmp_path, cfg) as w:
        assert wait_for(lambda: len(w.retries) >= 2), "\n".join(w.lines)
    assert w.code == 0, "\n".join(w.lines)
    text = "\n".join(w.lines)
    assert "Traceback" not in text
    (start,) = w.said("steadyhand worker starting")
    assert f"config {cfg.resolve()} (from -c)" in start
    assert "store sqlite:///var/steadyhand.db" in start
    assert f"queue redis://127.0.0.1:{port}" in start
    assert "2 workers" in start
    assert len(w.said("unreachable:")) == len(w.retries)  # each says the wait
    waits = [int(m.group(2)) for m in w.retries]
    assert waits[:2] == [2, 4]  # one line per retry (not one per worker), the wait doubling
    assert "Connection refused" in w.retries[0].group(1)
    assert "steadyhand worker stopped" in w.lines[-1]


def test_json_log_format_prints_one_json_object_per_line(tmp_path: Path) -> None:
    cfg = project(tmp_path, f"redis://127.0.0.1:{free_port()}")
    with worker(tmp_path, cfg, "--log-format", "json") as w:
        assert wait_for(lambda: w.retries), "\n".join(w.lines)
    entries = [json.loads(line) for line in w.lines]  # every line is one JSON object
    assert all(set(e) == {"time", "level", "logger", "message"} for e in entries), entries
    assert entries[0]["message"].startswith("steadyhand worker starting: config ")
    assert {e["level"] for e in entries if RETRY.search(e["message"])} == {"WARNING"}


@pytest.mark.slow
def test_a_queue_that_comes_back_is_said_once_and_the_tick_runs(tmp_path: Path) -> None:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    cfg = project(tmp_path, f"redis://127.0.0.1:{port}")
    redis = None
    try:
        with worker(tmp_path, cfg) as w:
            assert wait_for(lambda: w.retries), "\n".join(w.lines)
            redis = subprocess.Popen(
                [server, "--port", str(port), "--save", "", "--appendonly", "no"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
            )
            assert wait_for(lambda: w.said("task tick")), "\n".join(w.lines)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=30)
    assert len(w.said(f"queue redis://127.0.0.1:{port} reachable again")) == 1, w.lines
    (tick,) = w.said("task tick")
    assert "2026-11-05 15:45Z: 1 calendar synced (1 read); 1 email decided" in tick
    assert "Traceback" not in "\n".join(w.lines)


def test_a_send_to_someone_unsubscribed_is_logged_as_skipped(tmp_path: Path, run_cli) -> None:
    cfg = project(tmp_path)
    settings = config_mod.load(cfg)
    now = datetime.fromisoformat(NOW)
    transport = build_transport(settings)
    rt = Runtime(settings, Store(settings.store_url), transport, lambda: now)
    syncing.sync(rt, now)
    assert decide_emails(rt, now)  # the reflection is decided, then Ana opts out
    rt.close()
    assert run_cli("unsubscribe", "ana@example.com", "-c", str(cfg)).code == 0
    with worker(tmp_path, cfg) as w:
        assert wait_for(lambda: w.said("skipped: unsubscribed")), "\n".join(w.lines)
    assert w.said("reflection:ana@example.com:2026-11-05: skipped: unsubscribed"), w.lines
    assert not w.said("sent"), w.lines
    assert not list((tmp_path / "var" / "outbox").glob("new/*.eml"))


def test_run_once_says_a_sync_failure_once(tmp_path: Path) -> None:
    cfg = project(tmp_path, calendar="cal/missing.ics")
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "run", "--once", "-c", str(cfg), "--now", NOW],
        check=False,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    said = (result.stdout + result.stderr).count("the file does not exist")
    assert said == 1, result.stdout + result.stderr
    assert "failed: see below" in result.stdout


def test_an_unreachable_store_is_one_line_per_retry_until_ctrl_c(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    port = free_port()
    cfg = project(tmp_path)
    cfg.write_text(
        f"store: postgresql://steadyhand@127.0.0.1:{port}/x\n" + cfg.read_text(), encoding="utf-8"
    )
    store = re.compile(
        rf"store postgresql://127\.0\.0\.1:{port}/x unreachable: (.+); retrying in (\d+) s"
    )
    with worker(tmp_path, cfg) as w:
        assert wait_for(lambda: len([m for m in map(store.search, w.lines) if m]) >= 2), w.lines
    assert w.code == 0
    retries = [m for m in map(store.search, w.lines) if m]
    assert [m.group(2) for m in retries[:2]] == ["2", "4"]
    assert "Connection refused" in retries[0].group(1)
    assert "Traceback" not in "\n".join(w.lines)
    assert "steadyhand worker stopped" in w.lines[-1]


def test_the_wait_between_reads_of_an_unreachable_queue_doubles_up_to_a_minute(
    tmp_path: Path,
) -> None:
    pytest.importorskip("redis")
    from worker.queue.app import build_consumer, build_huey

    settings = config_mod.load(project(tmp_path, f"redis://127.0.0.1:{free_port()}"))
    consumer = build_consumer(build_huey(settings), settings, workers=1)
    worker, _ = consumer.worker_threads[0]
    waits: list[float] = []

    class Clock:  # the stop flag the worker sleeps on, without sleeping
        def wait(self, seconds: float) -> bool:
            waits.append(seconds)
            return False

    worker.stop_flag = Clock()
    for _ in range(8):
        worker.loop()
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.parametrize(
    ("option", "libraries_debug"), [("-v", False), ("--log-level=debug", True)]
)
def test_v_is_steadyhands_debug_and_log_level_debug_everyones(
    tmp_path: Path, option: str, libraries_debug: bool
) -> None:
    cfg = project(tmp_path)
    with worker(tmp_path, cfg, option) as w:
        assert wait_for(lambda: w.said("task send")), "\n".join(w.lines)
    (tick,) = w.said("1 calendar synced")
    assert tick.endswith("task tick 2026-11-05 15:45Z: 1 calendar synced (1 read); 1 email decided")
    assert w.said("reflection:ana@example.com:2026-11-05: sent via outbox")
    assert w.said("DEBUG worker.")
    assert bool(w.said("DEBUG huey.")) is libraries_debug, "\n".join(w.lines)


def test_run_once_does_not_count_a_send_to_someone_unsubscribed(tmp_path: Path, run_cli) -> None:
    cfg = project(tmp_path)
    settings = config_mod.load(cfg)
    now = datetime.fromisoformat(NOW)
    transport = build_transport(settings)
    rt = Runtime(settings, Store(settings.store_url), transport, lambda: now)
    assert decide_emails(rt, now)  # the reflection is decided, then Ana opts out
    rt.close()
    assert run_cli("unsubscribe", "ana@example.com", "-c", str(cfg)).code == 0
    result = run_cli("run", "--once", "-c", str(cfg), "--now", NOW)
    assert result.code == 0, result.err
    assert "Decided 0 new emails; sent 0, 1 not sent (unsubscribed)." in result.out
