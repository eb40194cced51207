"""`steadyhand doctor` as a health check: exit 0 when all is well, 1 when something needs a
person, with one line per problem and its fix; the queue is checked for real."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, write
from worker.core.model import UTC
from worker.store import Store

NOW = "2026-11-05T16:45:00+01:00"


def config(folder: Path, extra: str = "") -> None:
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", folder / "ana.ics")
    write(
        folder / "steadyhand.yaml",
        "timezone: Europe/Berlin\n"
        + extra
        + "people:\n  - {email: ana@example.com, calendar: {ics: ana.ics}}\n",
    )


def needs(out: str) -> list[str]:
    return [line[4:] for line in out.splitlines() if line.startswith("  - ")]


def test_all_well_exits_0_and_says_so(run_cli, project: Path) -> None:
    config(project)
    assert run_cli("sync", "--now", NOW).code == 0
    result = run_cli("doctor")
    assert result.code == 0, result.out
    assert "queue  sqlite:///var/queue.db: ok, 0 waiting" in result.out
    assert result.out.strip().endswith("All well.")


def test_a_calendar_never_synced_needs_a_person(run_cli, project: Path) -> None:
    config(project)
    result = run_cli("doctor")
    assert result.code == 1
    assert "1 thing needs a person:" in result.out
    assert needs(result.out) == [
        "ana@example.com:ics:ana.ics: never synced — run `steadyhand sync`"
    ]


def test_a_failing_calendar_needs_a_person(run_cli, project: Path) -> None:
    config(project)
    assert run_cli("sync", "--now", NOW).code == 0
    (project / "ana.ics").write_text("not a calendar\n")
    assert run_cli("sync", "--now", NOW).code == 2
    result = run_cli("doctor")
    assert result.code == 1
    (line,) = needs(result.out)
    assert line.startswith("ana@example.com:ics:ana.ics: ") and "not an iCalendar file" in line


def test_an_unreachable_queue_needs_a_person(run_cli, project: Path) -> None:
    pytest.importorskip("redis")
    config(project, "queue: redis://127.0.0.1:6399/0\n")  # nothing listens there
    assert run_cli("sync", "--now", NOW).code == 0
    result = run_cli("doctor")
    assert result.code == 1
    assert "queue  redis://127.0.0.1:6399/0: cannot be reached" in result.out
    (line,) = needs(result.out)
    assert line.startswith("queue redis://127.0.0.1:6399/0: cannot be reached (")
    assert "start it (redis-server) or fix queue: in the config" in line


def test_failed_and_stuck_outbox_rows_need_a_person(run_cli, project: Path) -> None:
    config(project)
    assert run_cli("sync", "--now", NOW).code == 0
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    past = datetime.now(UTC) - timedelta(hours=2)
    try:
        for key in (
            "reflection:ana@example.com:2026-11-04",
            "reflection:ana@example.com:2026-11-05",
        ):
            store.enqueue(key, "email", "reflection", "ana@example.com", key[-10:], past, {}, past)
        first, second = (r.id for r in store.outbox_rows())
        store.claim(first, past, timedelta(minutes=5), "elsewhere:1")
        store.fail(first, "SMTP 550 mailbox unavailable", past, None)
        store.claim(second, past, timedelta(minutes=5), "elsewhere:2")  # its worker died
    finally:
        store.close()
    result = run_cli("doctor")
    assert result.code == 1
    assert "outbox 0 pending, 1 failed, 1 stuck" in result.out
    assert needs(result.out) == [
        "outbox row reflection:ana@example.com:2026-11-04 failed: SMTP 550 mailbox "
        "unavailable — fix the cause; `steadyhand audit` tells more",
        "outbox row reflection:ana@example.com:2026-11-05 is claimed by a worker that "
        "stopped — start `steadyhand run` (its sweeper takes it over)",
    ]
