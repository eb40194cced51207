"""The store: events without titles, sync state, the outbox ledger, ticks and the audit log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.tz import BERLIN, at
from worker.core.model import Event, SyncState, TimeRange
from worker.store import Store

NOW = at(BERLIN, "2026-11-05 16:45")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'var' / 'steadyhand.db'}")


def event(eid: str, hour: int, title: str = "Secret project") -> Event:
    start = at(BERLIN, f"2026-11-05 {hour:02}:00")
    return Event(eid, "cal", start, start + timedelta(hours=1), attendees=("a@x.org",), title=title)


def test_store_is_created_on_first_run_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "var" / "steadyhand.db"
    store = Store(f"sqlite:///{path}")
    assert path.exists()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_titles_are_not_stored_unless_privacy_allows(store: Store) -> None:
    span = TimeRange(NOW - timedelta(days=1), NOW + timedelta(days=1))
    store.save_sync(
        "k", "ana@example.com", "ics", SyncState(), [event("1", 9)], [], True, NOW, False
    )
    assert [e.title for e in store.events_for("ana@example.com", span)] == [None]
    store.save_sync(
        "k", "ana@example.com", "ics", SyncState(), [event("1", 9)], [], True, NOW, True
    )
    assert [e.title for e in store.events_for("ana@example.com", span)] == ["Secret project"]


def test_full_sync_replaces_and_delta_sync_patches(store: Store) -> None:
    span = TimeRange(NOW - timedelta(days=1), NOW + timedelta(days=1))
    store.save_sync(
        "k",
        "ana@example.com",
        "ics",
        SyncState(token="1"),
        [event("1", 9), event("2", 10)],
        [],
        True,
        NOW,
        False,
    )
    store.save_sync(
        "k",
        "ana@example.com",
        "ics",
        SyncState(token="2"),
        [event("3", 11)],
        ["1"],
        False,
        NOW,
        False,
    )
    assert sorted(e.id for e in store.events_for("ana@example.com", span)) == ["2", "3"]
    state = store.sync_state("k")
    assert state is not None and state.token == "2"
    store.save_sync(
        "k", "ana@example.com", "ics", SyncState(token="3"), [event("9", 12)], [], True, NOW, False
    )
    assert [e.id for e in store.events_for("ana@example.com", span)] == ["9"]


def test_a_failed_sync_keeps_the_events_read_before(store: Store) -> None:
    span = TimeRange(NOW - timedelta(days=1), NOW + timedelta(days=1))
    store.save_sync(
        "k",
        "ana@example.com",
        "ics",
        SyncState(fingerprint="f"),
        [event("1", 9)],
        [],
        True,
        NOW,
        False,
    )
    store.record_sync_error(
        "k", "ana@example.com", "ics", "bo.ics: not a valid iCalendar file", NOW
    )
    assert [e.id for e in store.events_for("ana@example.com", span)] == ["1"]
    (status,) = store.calendars()
    assert status.last_error == "bo.ics: not a valid iCalendar file"
    assert status.event_count == 1
    assert store.sync_state("k") == SyncState(fingerprint="f")


def test_outbox_key_is_decided_once(store: Store) -> None:
    first = store.enqueue(
        "reflection:a@x.org:2026-11-05",
        "email",
        "reflection",
        "a@x.org",
        "2026-11-05",
        NOW,
        {"n": 1},
        NOW,
    )
    second = store.enqueue(
        "reflection:a@x.org:2026-11-05",
        "email",
        "reflection",
        "a@x.org",
        "2026-11-05",
        NOW,
        {"n": 2},
        NOW,
    )
    assert first is not None and second is None
    (row,) = store.outbox_rows()
    assert row.payload == {"n": 1}


def test_a_claim_is_exclusive_until_its_lease_expires(store: Store) -> None:
    row_id = store.enqueue("k1", "email", "reflection", "a@x.org", "p", NOW, {}, NOW)
    assert row_id is not None
    assert store.claim(row_id, NOW, timedelta(minutes=5)) is not None
    assert store.claim(row_id, NOW + timedelta(minutes=1), timedelta(minutes=5)) is None
    assert store.due_ids(NOW + timedelta(minutes=1)) == []
    # the claimer died: after the lease the sweeper sees it and another worker may claim it
    assert store.due_ids(NOW + timedelta(minutes=6)) == [row_id]
    again = store.claim(row_id, NOW + timedelta(minutes=6), timedelta(minutes=5))
    assert again is not None and again.attempts == 2
    store.complete(row_id, "<id@x>", NOW)
    assert store.claim(row_id, NOW + timedelta(hours=1), timedelta(minutes=5)) is None
    assert store.due_ids(NOW + timedelta(hours=1)) == []


def test_a_transient_failure_returns_the_row_to_pending_later(store: Store) -> None:
    row_id = store.enqueue("k1", "email", "reflection", "a@x.org", "p", NOW, {}, NOW)
    assert row_id is not None and store.claim(row_id, NOW, timedelta(minutes=5))
    store.fail(row_id, "421 try later", NOW, NOW + timedelta(minutes=2))
    assert store.claim(row_id, NOW + timedelta(minutes=1), timedelta(minutes=5)) is None
    assert store.claim(row_id, NOW + timedelta(minutes=2), timedelta(minutes=5)) is not None
    store.fail(row_id, "550 no such user", NOW, None)
    (row,) = store.outbox_rows()
    assert (row.status, row.last_error) == ("failed", "550 no such user")


def test_the_tick_of_a_minute_runs_once_across_consumers(store: Store, tmp_path: Path) -> None:
    other = Store(store.url)  # a second consumer on the same database
    assert store.claim_tick("2026-11-05T15:45", NOW)
    assert not other.claim_tick("2026-11-05T15:45", NOW)
    assert other.claim_tick("2026-11-05T15:46", NOW)


def test_audit_log_records_who_did_what(store: Store) -> None:
    store.audit("send_failed", NOW, person="a@x.org", subject="k", detail={"error": "boom"})
    (entry,) = store.audit_entries("a@x.org")
    assert entry["action"] == "send_failed" and entry["detail"] == {"error": "boom"}


def test_event_range_is_exact_across_a_fall_back_night() -> None:
    from tests.tz import NEW_YORK

    start = at(NEW_YORK, "2026-11-01 01:30")  # EDT
    end = at(NEW_YORK, "2026-11-01 01:15", fold=1)  # EST, 45 real minutes later
    assert Event("e", "c", start, end).range.duration == timedelta(minutes=45)


def test_a_store_from_another_version_is_refused_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    from worker.core.errors import UserError

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, key TEXT)")
    with pytest.raises(UserError) as info:
        Store(f"sqlite:///{path}")
    (problem,) = info.value.problems
    assert "table outbox lacks kind, program" in problem.what
    assert "move the file aside" in problem.fix
