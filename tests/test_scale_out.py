"""The scale-out mode with real servers: the store on PostgreSQL, the queue on Redis.

They run on this machine (`.ci/run` starts them when down); outside CI a test skips with
the reason when its server is not there.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import write
from tests.tz import BERLIN, at
from worker import config
from worker.queue.app import build_huey
from worker.store import Store

NOW = at(BERLIN, "2026-11-05 16:45")


def _unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("STEADYHAND_CI"):
        raise exc
    pytest.skip(f"{what} is not running here ({exc}); .ci/run starts it")


def test_the_ledger_on_postgresql_decides_once_and_claims_exclusively(postgres_url: str) -> None:
    one, two = Store(postgres_url), Store(postgres_url)  # two consumers, one database
    try:
        row = one.enqueue(
            "reflection:a@x.org:2026-11-05",
            "email",
            "reflection",
            "a@x.org",
            "2026-11-05",
            NOW,
            {},
            NOW,
        )
        assert row is not None
        assert (
            two.enqueue(
                "reflection:a@x.org:2026-11-05",
                "email",
                "reflection",
                "a@x.org",
                "2026-11-05",
                NOW,
                {},
                NOW,
            )
            is None
        )
        assert one.claim(row, NOW, timedelta(minutes=5), "host:1") is not None
        assert two.claim(row, NOW, timedelta(minutes=5), "host:2") is None
        assert one.claim_tick("2026-11-05T15:45", NOW) and not two.claim_tick(
            "2026-11-05T15:45", NOW
        )
    finally:
        one.close()
        two.close()


def test_the_queue_on_redis_carries_row_ids(tmp_path: Path) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        _unavailable("Redis", exc)
    settings = config.load(
        write(tmp_path / "steadyhand.yaml", "queue: redis://127.0.0.1:6379/15\n")
    )
    huey = build_huey(settings)
    assert type(huey).__name__ == "RedisHuey" and huey.utc
    huey.flush()
    seen: list[int] = []

    @huey.task()
    def send(row_id: int) -> None:
        seen.append(row_id)

    send(41)
    send(42)
    assert huey.pending_count() == 2
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
    assert seen == [41, 42]
    huey.flush()
