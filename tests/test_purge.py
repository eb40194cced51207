"""``privacy.keep_answers``: the tick deletes answers older than that once a day, and says
how many in one log line that never holds what they said."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import write
from tests.tz import BERLIN
from worker import config as config_mod
from worker.core.errors import ConfigError
from worker.cycle import run as cycle
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

NOW = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
CONFIG = """\
timezone: Europe/Berlin
people: [{email: ana@example.com, name: Ana Lima}]
mail: {from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox}
privacy: {keep_answers: 30d}
"""
SECRET = "the launch slipped again"


@pytest.fixture
def rt(project: Path) -> Runtime:
    settings = config_mod.load(write(project / "steadyhand.yaml", CONFIG))
    (project / "var").mkdir(mode=0o700)
    runtime = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: NOW)
    yield runtime
    runtime.close()


def answer(rt: Runtime, period: str, at: datetime) -> None:
    rt.store.record_answers(
        "ana@example.com", "reflection", period, {"score": 2, "dampened": SECRET}, at
    )


def periods(rt: Runtime) -> list[str]:
    return sorted({a.period for a in rt.store.answers_of("ana@example.com")})


def test_the_tick_purges_answers_older_than_keep_answers_and_keeps_the_recent(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    answer(rt, "2026-09-30", NOW - timedelta(days=36))
    answer(rt, "2026-10-07", NOW - timedelta(days=29))
    with caplog.at_level(logging.INFO, logger="worker"):
        cycle.tick(rt, NOW)
    assert periods(rt) == ["2026-10-07"]
    (line,) = [r.getMessage() for r in caplog.records if "purged" in r.getMessage()]
    assert line.startswith("purged 2 answers last changed before 2026-10-06 14:45Z")
    assert SECRET not in caplog.text


def test_the_purge_runs_once_a_day_whatever_the_number_of_ticks(rt: Runtime) -> None:
    answer(rt, "2026-09-30", NOW - timedelta(days=36))
    assert cycle.purge_daily(rt, NOW) == 2
    answer(rt, "2026-09-29", NOW - timedelta(days=37))  # old, but today's purge is done
    assert cycle.purge_daily(rt, NOW + timedelta(minutes=1)) is None
    cycle.tick(rt, NOW + timedelta(minutes=2))
    assert periods(rt) == ["2026-09-29"]
    assert cycle.purge_daily(rt, NOW + timedelta(days=1)) == 2  # the next day's
    assert periods(rt) == []


def test_run_once_purges_too(run_cli, rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    answer(rt, "2026-09-30", NOW - timedelta(days=36))
    done = run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00", "--log-level", "info")
    assert done.code == 0, done.err
    assert "purged 2 answers" in caplog.text and SECRET not in caplog.text + done.out
    assert periods(rt) == []


def test_keep_answers_defaults_to_180_days_and_is_at_least_a_day(project: Path) -> None:
    default = config_mod.load(write(project / "a.yaml", CONFIG.replace("30d", "180d")))
    assert default.privacy.keep_answers == timedelta(days=180)
    unset = config_mod.load(write(project / "b.yaml", CONFIG.replace("privacy", "# privacy")))
    assert unset.privacy.keep_answers == timedelta(days=180)
    with pytest.raises(ConfigError) as info:
        config_mod.load(write(project / "c.yaml", CONFIG.replace("30d", "12h")))
    assert "privacy.keep_answers" in str(info.value) and "the least is 1d" in str(info.value)
