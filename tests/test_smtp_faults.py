"""Exactly once under fire: ``kill -9`` the consumer 20 times while 1,000 emails go out
over real SMTP (aiosmtpd in another process), restart it each time, and count what the
server received (docs/architecture.md, Once per key).

The store is the source of truth: a killed consumer loses the Huey tasks it held, and
its claims stay ``claimed`` until their 5-minute lease expires. The consumers run on a
fixed clock (``STEADYHAND_NOW``), so each restart is started 7 minutes later than the
one before (lease 5 min + the sweeper's 1-minute grace + 1 min of margin): the sweep a
consumer runs at start then re-enqueues every pending row and every claim of the
consumer that died. That is time passing between a crash and a restart, not a shortcut.
The rows are written due at ``START`` as if a tick had decided them and its send tasks
were lost, so the first consumer too finds them through its sweep (which takes rows
pending for more than a minute).

Lost must be 0. Duplicates cannot be 0 on plain SMTP: a message the server accepted
(``250`` to the end of DATA) whose row was not yet marked done when the consumer died is
sent again, and SMTP has no way to ask the server "did you already take this
Message-ID?". The test measures that window and holds it to at most one per kill.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.conftest import write
from tests.smtp_sink import Sink, compare
from tests.waiting import wait_for
from worker import config
from worker.cycle import decide
from worker.cycle.runtime import Runtime
from worker.store import Store
from worker.store.tables import outbox

pytestmark = pytest.mark.slow

ROWS = 1000
KILLS = 20
SPREAD = ROWS * 9 // 10  # the kills fall while the first 900 emails go out
WORKERS = 4
SEED = 20261105
START = datetime(2026, 11, 5, 16, 45, tzinfo=ZoneInfo("Europe/Berlin"))
#: Between two consumers' clocks: past the 5-min lease and the sweeper's 1-min grace.
RESTART_STEP = timedelta(minutes=7)
PERSON = "ana@example.com"


def not_done(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(outbox.c.status != "done")).scalar_one())


def enqueue_rows(cfg: Path, now: datetime, rows: int) -> tuple[Store, set[str]]:
    """``rows`` reflection rows for one person, due now, with distinct keys."""
    settings = config.load(cfg)
    store = Store(settings.store_url)
    rt = Runtime(settings, store, transport=None, clock=lambda: now)  # type: ignore[arg-type]
    person = settings.person(PERSON)
    payload = decide.reflection_context(rt, person, now.astimezone(person.tz).date())
    keys = set()
    for i in range(rows):
        period = (date(2026, 11, 5) - timedelta(days=i)).isoformat()
        key = f"reflection:{PERSON}:{period}"
        assert store.enqueue(key, "email", "reflection", PERSON, period, now, payload, now)
        keys.add(key)
    return store, keys


class Consumer:
    """`steadyhand run -c CFG --workers N` in its own process group, on a fixed clock."""

    def __init__(self, cfg: Path, now: datetime, log: IO[str]) -> None:
        env = {**os.environ, "STEADYHAND_NOW": now.isoformat(), "COLUMNS": "200"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run", "-c", str(cfg), "--workers", str(WORKERS)],
            cwd=cfg.parent,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode


def test_kill_9_twenty_times_while_1000_emails_go_out_loses_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    with Sink(tmp_path / "received.log") as sink:
        cfg = write(
            tmp_path / "steadyhand.yaml",
            "timezone: Europe/Berlin\n"
            f"people:\n  - {{email: {PERSON}, name: Ana Lima}}\n"
            "mail:\n"
            "  from: Steadyhand <steadyhand@example.com>\n"
            "  transport: smtp\n"
            f"  smtp: {{host: {sink.host}, port: {sink.port}, security: none, timeout: 10}}\n",
        )
        store, keys = enqueue_rows(cfg, START, ROWS)
        log_path = tmp_path / "consumers.log"
        log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115
        kills_while_sending = 0
        consumer: Consumer | None = None
        try:
            for k in range(KILLS):
                # Spread the kills over the run: the k-th comes once a seeded random number
                # of emails in the k-th twentieth of the first 900 has arrived, plus a
                # seeded random delay (the fault injection itself); then SIGKILL, restart.
                checkpoint = k * SPREAD // KILLS + rng.randrange(SPREAD // KILLS)
                consumer = Consumer(cfg, START + (k + 1) * RESTART_STEP, log)
                if not wait_for(lambda c=checkpoint: sink.count() > c, timeout=30):
                    pytest.fail(f"consumer {k} sent nothing: {log_path.read_text()[-3000:]}")
                time.sleep(rng.uniform(0.0, 0.1))
                kills_while_sending += not_done(store) > 0
                consumer.kill9()
            killing = time.monotonic() - started
            consumer = Consumer(cfg, START + (KILLS + 1) * RESTART_STEP, log)
            finished = wait_for(lambda: not_done(store) == 0, timeout=60, interval=0.05)
            code = consumer.stop()
        finally:
            if consumer is not None and consumer.proc.poll() is None:
                consumer.kill9()
            log.close()
        arrived = sink.keys()
    rows = store.outbox_rows()
    store.close()
    lost, duplicated, unexpected = compare(keys, arrived)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nSMTP fault test: {ROWS} emails, {KILLS} x kill -9 "
            f"({kills_while_sending} while rows were still unsent), workers {WORKERS}: "
            f"lost {lost}, duplicated {duplicated}, unexpected {unexpected}, "
            f"received {sum(arrived.values())}; "
            f"claims of dead consumers taken over {sum(r.attempts for r in rows) - ROWS}; "
            f"{seconds:.1f} s ({killing:.1f} s until the last kill)"
        )
    consumer_log = log_path.read_text(encoding="utf-8")
    assert finished, f"rows left undone: {[r.key for r in rows if r.status != 'done'][:5]}"
    assert code == 0, consumer_log[-3000:]
    assert kills_while_sending == KILLS, "a kill came after every email was out: too slow a kill"
    assert {r.status for r in rows} == {"done"}
    assert lost == 0
    assert unexpected == 0
    # Plain SMTP's hand-over window: accepted by the server, not yet marked done.
    assert duplicated <= KILLS
