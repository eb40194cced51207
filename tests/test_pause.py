"""A person's pause (``preferences.paused_until``, set through their preferences page):
nothing is decided or sent for a day of the pause, in their zone; their emails resume the
day after; a row decided before the pause and due in it is done without sending."""

from __future__ import annotations

from datetime import date, datetime
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from tests.conftest import write
from tests.tz import BERLIN
from worker import config as config_mod
from worker.core.model import TimeRange
from worker.cycle import decide
from worker.cycle.deliver import deliver
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

CONFIG = """\
timezone: Europe/Berlin
people:
  - {email: ana@example.com, name: Ana Lima}
  - {email: dee@example.com, name: Dee Park, timezone: America/New_York}
mail: {from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox}
emails:
  reflection: {to: everyone, at: "16:30"}
"""
THURSDAY = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)


@pytest.fixture
def config(project: Path) -> Path:
    return write(project / "steadyhand.yaml", CONFIG)


def pause(project: Path, person: str, until: date | None) -> None:
    (project / "var").mkdir(mode=0o700, exist_ok=True)
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        store.set_pause(person, until, THURSDAY)
    finally:
        store.close()


def sent(project: Path) -> list[tuple[str, str]]:
    """(recipient, key) of every email in the Maildir outbox, sorted."""
    found = []
    for path in (project / "var" / "outbox" / "new").glob("*.eml"):
        msg = BytesParser(policy=default).parsebytes(path.read_bytes())
        found.append((str(msg["To"].addresses[0].addr_spec), str(msg["X-Steadyhand-Key"])))
    return sorted(found)


def test_nothing_is_sent_to_a_paused_person_and_it_resumes_the_day_after(
    run_cli, project: Path, config: Path
) -> None:
    pause(project, "ana@example.com", date(2026, 11, 5))  # paused up to Thursday

    thursday = run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00")
    assert thursday.code == 0, thursday.err
    assert "Decided 0 new emails" in thursday.out  # Dee's 16:30 is hours away in New York
    assert sent(project) == []

    friday = run_cli("run", "--once", "--now", "2026-11-06T16:45:00+01:00")
    assert friday.code == 0, friday.err
    # Thursday's reflection is not sent late: it was due in the pause.
    assert sent(project) == [("ana@example.com", "reflection:ana@example.com:2026-11-06")]


def test_a_pause_counts_in_the_recipients_own_zone(run_cli, project: Path) -> None:
    """Dee's reflection at 20:00 in New York on Thursday is 02:00 on Friday in Berlin (and
    UTC): a pause up to Thursday holds it, as Thursday is her day."""
    write(
        project / "steadyhand.yaml",
        CONFIG.replace(
            "timezone: America/New_York}",
            'timezone: America/New_York, working_hours: {mon-fri: "09:00-23:00"}}',
        ).replace('at: "16:30"', 'at: "20:00"'),
    )
    pause(project, "dee@example.com", date(2026, 11, 5))
    done = run_cli("run", "--once", "--now", "2026-11-06T02:15:00+01:00")
    assert done.code == 0, done.err
    assert "Decided 0 new emails; sent 0." in done.out
    assert sent(project) == []
    later = run_cli("run", "--once", "--now", "2026-11-07T02:15:00+01:00")
    assert later.code == 0, later.err
    assert sent(project) == [("dee@example.com", "reflection:dee@example.com:2026-11-06")]


def test_resuming_before_the_end_of_the_pause_sends_again(
    run_cli, project: Path, config: Path
) -> None:
    pause(project, "ana@example.com", date(2026, 11, 30))
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    assert sent(project) == []
    pause(project, "ana@example.com", None)  # "resume" on the preferences page
    assert run_cli("run", "--once", "--now", "2026-11-05T16:50:00+01:00").code == 0
    assert sent(project) == [("ana@example.com", "reflection:ana@example.com:2026-11-05")]


def test_a_row_due_in_a_pause_is_done_as_paused_without_sending(
    project: Path, config: Path
) -> None:
    settings = config_mod.load(config)
    (project / "var").mkdir(mode=0o700)
    store = Store(settings.store_url)
    rt = Runtime(settings, store, build_transport(settings), lambda: THURSDAY)
    try:
        (row_id,) = decide.decide(rt, THURSDAY)  # decided before the pause
        store.set_pause("ana@example.com", date(2026, 11, 6), THURSDAY)

        done = deliver(rt, row_id, THURSDAY)

        assert (done.outcome, done.detail) == ("paused", "paused")
        (row,) = store.outbox_rows()
        assert (row.status, row.result) == ("done", "paused")
        (entry,) = [e for e in store.audit_entries("ana@example.com") if e["action"] == "not_sent"]
        assert entry["subject"] == row.key and entry["detail"] == {"why": "paused"}
        day = TimeRange(datetime(2026, 11, 5, tzinfo=BERLIN), datetime(2026, 11, 6, tzinfo=BERLIN))
        assert store.emails_sent("ana@example.com", day) == 0  # not counted against her quota
        assert deliver(rt, row_id, THURSDAY).outcome == "skipped"  # done: never sent later
    finally:
        rt.close()
    assert sent(project) == []
