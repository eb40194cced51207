"""`steadyhand forget EMAIL`: everything stored about a person goes, but their opt-outs
(no email to them starts again) and the keys of the emails decided for them (none is sent
twice); it says what it deleted, what it kept and why, in plain words."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import ROOT, write
from tests.tz import BERLIN
from worker import config as config_mod
from worker.store import Store
from worker.store.tables import audit_log, events, experiments, read_notes, sync_state

ANA, BO = "ana@example.com", "bo@example.com"
THURSDAY = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
CONFIG = """\
timezone: Europe/Berlin
people:
  - {email: ana@example.com, name: Ana Lima, calendar: {ics: cal/ana.ics}}
  - {email: bo@example.com, name: Bo Berg, calendar: {ics: cal/bo.ics}}
mail: {from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox}
emails:
  reflection: {to: everyone, at: "16:30"}
"""


@pytest.fixture
def team(run_cli, project: Path) -> Path:
    """Two people whose calendars were read and whose Thursday reflections went out, with
    answers, a pause, a block record, audit entries and an email still to go stored."""
    (project / "cal").mkdir()
    for name in ("ana", "bo"):
        shutil.copyfile(ROOT / "config" / "demo" / f"{name}.ics", project / "cal" / f"{name}.ics")
    config = write(project / "steadyhand.yaml", CONFIG)
    done = run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00")
    assert done.code == 0, done.err
    assert len(sent(project)) == 2
    with opened(config) as store:
        for person in (ANA, BO):
            store.record_answers(
                person, "reflection", "2026-11-05", {"score": 4, "moved": "the plan"}, THURSDAY
            )
            start = THURSDAY + timedelta(days=1)
            store.record_block(
                f"b-{person}",
                person,
                f"{person}:vdir:x",
                "focus",
                None,
                start,
                start + timedelta(hours=2),
                "Focus",
                "managed",
                THURSDAY,
            )
            store.audit("taken_over", THURSDAY, person=person, subject=f"b-{person}")
        store.set_pause(ANA, date(2026, 11, 2), THURSDAY)
        store.enqueue(
            f"overload:{ANA}:2026-11-06",
            "email",
            "overload",
            ANA,
            "2026-11-06",
            THURSDAY + timedelta(days=1),
            {"email": ANA, "days": ["Friday"]},
            THURSDAY,
        )
        store.enqueue(
            f"digest:{BO}:2026-W45",
            "email",
            "digest",
            BO,
            "2026-W45",
            THURSDAY,
            {"members": [{"email": ANA, "hours": 31}]},
            THURSDAY,
            status="done",
            result="sent",
        )
    return config


@contextmanager
def opened(config: Path) -> Iterator[Store]:
    store = Store(config_mod.load(config).store_url)
    try:
        yield store
    finally:
        store.close()


def sent(project: Path) -> list[str]:
    keys = []
    for path in (project / "var" / "outbox" / "new").glob("*.eml"):
        keys.append(
            str(BytesParser(policy=default).parsebytes(path.read_bytes())["X-Steadyhand-Key"])
        )
    return sorted(keys)


def count(store: Store, query: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def stored(store: Store, person: str) -> dict[str, int]:
    """How much is stored about ``person``, kind by kind."""
    n = func.count()
    return {
        "events": count(store, select(n).select_from(events).where(events.c.owner == person)),
        "calendars": count(
            store, select(n).select_from(sync_state).where(sync_state.c.owner == person)
        ),
        "notes": count(
            store,
            select(n).select_from(read_notes).where(read_notes.c.calendar_key.like(f"{person}:%")),
        ),
        "blocks": len(store.blocks_of(person)),
        "answers": store.count_answers(person),
        "paused": int(store.paused_until(person) is not None),
        "audit": len(store.audit_entries(person)),
    }


def test_forget_deletes_what_it_says_and_keeps_the_keys_and_the_opt_out(
    run_cli, project: Path, team: Path
) -> None:
    assert run_cli("unsubscribe", ANA, "--program", "digest").code == 0
    with opened(team) as store:
        before = stored(store, ANA)
        of_bo = stored(store, BO)
    assert before["events"] > 0 and before["answers"] == 2 and before["paused"] == 1

    done = run_cli("forget", ANA, "--yes")

    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith(f"Forgot {ANA} in the store sqlite:///")
    assert (
        f"  deleted {before['events']} events and the sync state of 1 calendar of theirs"
        in done.out
    )
    assert "  deleted 1 record of protected blocks on their calendar" in lines
    assert "  deleted 2 answers and their pause" in lines
    assert "  emptied 2 emails to them (1 not sent yet: cancelled)" in lines
    assert "  emptied 1 email to other people that named them" in lines
    assert "Kept, and why:" in lines
    assert (
        "  the keys of 2 emails decided for them and how each ended (what they said is gone): "
        "so no email is decided and sent to them twice" in lines
    )
    assert "  their opt-out (from digest): so no email to them starts again" in lines
    assert "  the blocks already written on their calendar: forget changes no calendar" in lines
    assert f"{ANA} is still under people: in {team}" in done.out
    assert "the next sync reads their calendar again" in done.out

    with opened(team) as store:
        assert stored(store, ANA) == dict.fromkeys(before, 0)
        assert stored(store, BO) == of_bo  # the other person's data is theirs
        rows = {r.key: r for r in store.outbox_rows()}
        mine = [r for r in rows.values() if r.recipient == ANA]
        assert sorted(r.key for r in mine) == [
            f"overload:{ANA}:2026-11-06",
            f"reflection:{ANA}:2026-11-05",
        ]
        assert all(r.payload == {} and r.status == "done" for r in mine)
        assert rows[f"overload:{ANA}:2026-11-06"].result == "forgotten"
        assert rows[f"digest:{BO}:2026-W45"].payload == {}
        assert rows[f"reflection:{BO}:2026-11-05"].payload != {}
        assert store.is_unsubscribed(ANA, "digest")
        with store.engine.connect() as conn:
            (entry,) = conn.execute(
                select(audit_log).where(audit_log.c.action == "forgotten")
            ).all()
        assert entry.person is None and ANA not in (entry.detail or "")
        assert json.loads(entry.detail)["answers"] == 2


def test_forget_sends_nothing_again_and_starts_no_email_after_an_opt_out(
    run_cli, project: Path, team: Path
) -> None:
    assert run_cli("unsubscribe", ANA).code == 0  # from every email
    for person in (ANA, BO):
        assert run_cli("forget", person, "--yes").code == 0
    # Still in the config: read again, but Bo's Thursday email is not sent twice and
    # Ana's opt-out holds.
    again = run_cli("run", "--once", "--now", "2026-11-05T16:50:00+01:00")
    assert again.code == 0, again.err
    friday = run_cli("run", "--once", "--now", "2026-11-06T16:45:00+01:00")
    assert friday.code == 0, friday.err
    assert sent(project) == [
        f"reflection:{ANA}:2026-11-05",
        f"reflection:{BO}:2026-11-05",
        f"reflection:{BO}:2026-11-06",
    ]


def test_forget_says_the_opt_out_it_kept_and_that_someone_gone_from_the_config_stays_gone(
    run_cli, project: Path, team: Path
) -> None:
    assert run_cli("unsubscribe", ANA).code == 0
    write(team, CONFIG.replace("  - {email: ana@example.com", "  # - {email: ana@example.com"))
    token = write(project / "var" / "tokens" / f"google_work_{ANA}.token", "encrypted")
    done = run_cli("forget", "Ana@Example.com", "--yes")
    assert done.code == 0, done.err
    assert "  their opt-out (from every email): so no email to them starts again" in done.out
    assert "still under people" not in done.out
    assert (
        f"  their sign-in token (steadyhand connect) is a file, not in the store: {token} — "
        "delete it when they leave" in done.out
    )


def test_forget_asks_first_and_a_no_deletes_nothing(
    run_cli, project: Path, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(team) as store:
        before = stored(store, ANA)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    done = run_cli("forget", ANA)
    assert done.code == 1
    assert f"Stored about {ANA}:" in done.out and "deleted 2 answers and their pause" in done.out
    assert "Nothing deleted." in done.out
    with opened(team) as store:
        assert stored(store, ANA) == before
        assert store.audit_since("forgotten", THURSDAY - timedelta(days=1)) == []


def test_forgetting_someone_never_stored_says_so(run_cli, project: Path, team: Path) -> None:
    done = run_cli("forget", "zed@example.com", "--yes")
    assert done.code == 0, done.err
    assert "  nothing was stored about them to delete" in done.out
    assert "  no opt-out: they had not opted out of any email" in done.out
    bad = run_cli("forget", "not-an-address", "--yes")
    assert bad.code == 2 and "is not an email address" in bad.err


def test_forget_deletes_their_dashboard_sign_ins_and_takes_their_name_off_experiments(
    run_cli, project: Path, team: Path
) -> None:
    now = datetime(2026, 11, 5, 12, tzinfo=BERLIN)
    with opened(team) as store:
        store.add_sign_in("a" * 64, ANA, now)
        store.add_sign_in("b" * 64, BO, now)
        store.add_experiment(
            "Platform", "No-meeting Wednesdays", "2026-11-04", ["meeting_hours"], ANA, now
        )

    done = run_cli("forget", ANA, "--yes")

    assert done.code == 0, done.err
    assert "  deleted 1 dashboard sign-in link sent to them" in done.out.splitlines()
    assert (
        "  took their name off 1 experiment they recorded (kept for their team)"
        in done.out.splitlines()
    )
    with opened(team) as store:
        assert store.count_sign_ins(ANA, now - timedelta(days=1)) == 0
        assert store.count_sign_ins(BO, now - timedelta(days=1)) == 1
        assert [e.name for e in store.experiments_of(["Platform"])] == ["No-meeting Wednesdays"]
        with store.engine.connect() as conn:
            assert list(conn.execute(select(experiments.c.created_by)).scalars()) == [""]
