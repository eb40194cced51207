"""One person's plan that breaks (any exception, not only ours) is that person's alone:
`plan` and `apply` show and write the others and name the one in one line (exit 1), and
the worker's re-plan goes on to the other people, and its tick to the emails."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_protection import (
    blocks_on_disk,
    team,  # noqa: F401 (a fixture)
)
from worker import config
from worker.cycle import protect as protection
from worker.cycle import sync as syncing
from worker.cycle.run import tick
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store


@pytest.fixture
def bo_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    original = protection.plan_person

    def plan_person(rt: Any, person: Any, *args: Any, **kwargs: Any) -> Any:
        if person.email == "bo@example.com":
            raise OverflowError("date value out of range")
        return original(rt, person, *args, **kwargs)

    monkeypatch.setattr(protection, "plan_person", plan_person)


@pytest.mark.usefixtures("team")
def test_plan_shows_the_others_and_names_the_person_whose_plan_broke(
    run_cli,
    project: Path,
    bo_breaks: None,
) -> None:
    result = run_cli("plan", "--horizon", "1w")
    assert result.code == 1
    assert "Ana Lima <ana@example.com> — vdir:" in result.out
    assert result.err.strip().splitlines() == [
        "error: bo@example.com: cannot plan: OverflowError: date value out of range"
    ]


@pytest.mark.usefixtures("team")
def test_apply_writes_the_others_blocks_when_one_persons_plan_breaks(
    run_cli,
    project: Path,
    bo_breaks: None,
) -> None:
    result = run_cli("apply", "--horizon", "1w")
    assert result.code == 1
    assert len(blocks_on_disk(project / "cal" / "ana")) == 8
    assert blocks_on_disk(project / "cal" / "bo") == {}
    assert "error: bo@example.com: cannot plan: OverflowError" in result.err


@pytest.mark.usefixtures("team")
def test_the_worker_re_plans_the_others_and_its_tick_goes_on(
    project: Path,
    bo_breaks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = config.load(project / "steadyhand.yaml")
    now = datetime(2026, 11, 2, 8, 0, tzinfo=settings.persons()[0].tz)
    rt = Runtime(settings, Store(settings.store_url), build_transport(settings), lambda: now)
    try:
        with caplog.at_level(logging.WARNING, logger="worker.cycle.protect"):
            reports = syncing.sync(rt, now)
            written = protection.replan(rt, now, reports)
        assert written and all(d.outcome == "written" for d in written)
        assert len(blocks_on_disk(project / "cal" / "ana")) > 0
        (line,) = [r.getMessage() for r in caplog.records if "bo@example.com" in r.getMessage()]
        assert line == "re-plan of bo@example.com failed: OverflowError: date value out of range"
        (audit,) = [a for a in rt.store.audit_entries() if a["action"] == "plan_failed"]
        assert audit["person"] == "bo@example.com"
        later = now + timedelta(hours=9)  # a tick re-plans bo again: it goes on to decide
        reports, _ = tick(rt, later)
        assert {r.owner for r in reports} == {"ana@example.com", "bo@example.com"}
    finally:
        rt.close()
