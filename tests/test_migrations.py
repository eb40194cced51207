"""The store's schema under Alembic: a store made before migrations existed (the tables
of the last release, with data in every one) is upgraded by `steadyhand upgrade` without
losing a row, on SQLite and PostgreSQL; the migrations give the same schema as the
metadata a new store is made from; commands refuse a store that is behind, or ahead."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, insert, select, text

from tests.conftest import write
from worker.core.errors import UserError
from worker.store import Store, migrations
from worker.store.tables import metadata

#: One row for every table of the last release's schema (the baseline, 0001).
ROWS: dict[str, dict[str, Any]] = {
    "events": {
        "calendar_key": "ana@example.com:ics:cal.ics#1",
        "id": "e1",
        "owner": "ana@example.com",
        "start_ts": 1_793_000_000.0,
        "end_ts": 1_793_003_600.0,
        "all_day": False,
        "status": "confirmed",
        "response": "accepted",
        "transparency": "opaque",
        "event_type": "default",
        "attendees": '["ana@example.com", "bo@example.com"]',
        "organizer": "bo@example.com",
        "series_id": "s1",
        "etag": '"etag-1"',
        "owned_block_id": None,
        "title": "Planning",
        "details": None,
    },
    "sync_state": {
        "calendar_key": "ana@example.com:ics:cal.ics#1",
        "owner": "ana@example.com",
        "kind": "ics",
        "token": None,
        "etag": "W/1",
        "last_modified": "Thu, 05 Nov 2026 15:00:00 GMT",
        "fingerprint": "f" * 64,
        "window_start": 1_790_000_000.0,
        "window_end": 1_800_000_000.0,
        "last_attempt_ts": 1_793_000_100.0,
        "last_ok_ts": 1_793_000_100.0,
        "last_error": None,
        "event_count": 1,
    },
    "sync_notes": {"calendar_key": "ana@example.com:ics:cal.ics#1", "truncated": "more than 1"},
    "read_notes": {
        "calendar_key": "ana@example.com:ics:cal.ics#1",
        "position": 0,
        "text": "an event without an end",
        "count": 1,
        "events": "cal.ics UID x1",
    },
    "outbox": {
        "id": 7,
        "key": "reflection:ana@example.com:2026-11-05",
        "kind": "email",
        "program": "reflection",
        "recipient": "ana@example.com",
        "period": "2026-11-05",
        "due_ts": 1_793_000_000.0,
        "payload": '{"name": "Ana"}',
        "status": "done",
        "lease_until_ts": None,
        "claimed_by": "host:1",
        "attempts": 1,
        "result": "maildir:1.eml",
        "last_error": None,
        "created_ts": 1_793_000_000.0,
        "done_ts": 1_793_000_050.0,
    },
    "audit": {
        "id": 3,
        "at_ts": 1_793_000_050.0,
        "actor": "steadyhand",
        "person": "ana@example.com",
        "action": "bundled",
        "subject": "bundle:ana@example.com:2026-11-05",
        "detail": '{"parts": []}',
    },
    "blocks": {
        "block_id": "b1",
        "owner": "ana@example.com",
        "calendar_key": "ana@example.com:vdir:cal",
        "rule": "focus",
        "event_id": "ev-b1",
        "start_ts": 1_793_100_000.0,
        "end_ts": 1_793_107_200.0,
        "title": "Focus",
        "status": "managed",
        "updated_ts": 1_793_000_000.0,
        "fingerprint": "a" * 64,
        "writes": 2,
    },
    "unsubscribes": {"email": "cy@example.com", "program": "*", "at_ts": 1_793_000_000.0},
    "ticks": {"minute": "2026-11-05T16:45", "at_ts": 1_793_000_000.0},
}

BEHIND = "is at schema 0001, this steadyhand needs 0003 — run: steadyhand upgrade -c FILE"


def engine_of(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def old_store(url: str) -> None:
    """A store as the last release left it: the baseline's tables, a row in each, and no
    record of a revision (that release had no migrations)."""
    engine = engine_of(url)
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    found = MetaData()
    found.reflect(engine)
    with engine.begin() as conn:
        for name, row in ROWS.items():
            conn.execute(insert(found.tables[name]).values(**row))
    engine.dispose()


def table_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = engine_of(url)
    found = MetaData()
    found.reflect(engine)
    with engine.connect() as conn:
        rows = {
            name: [dict(r._mapping) for r in conn.execute(select(table))]
            for name, table in found.tables.items()
        }
    engine.dispose()
    return rows


def revision_of(url: str) -> list[str]:
    engine = engine_of(url)
    with engine.connect() as conn:
        found = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    engine.dispose()
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield request.getfixturevalue("postgres_url")
    else:
        yield f"sqlite:///{tmp_path / 'var' / 'steadyhand.db'}"


@pytest.fixture
def config(project: Path, store_url: str) -> Path:
    (project / "var").mkdir(mode=0o700, exist_ok=True)
    return write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
store: {store_url}
people: [{{email: ana@example.com, name: Ana Lima}}]
mail: {{from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox}}
emails:
  reflection: {{to: everyone, at: "16:30"}}
""",
    )


def test_upgrade_keeps_every_row_of_a_store_made_before_migrations(
    run_cli, config: Path, store_url: str
) -> None:
    old_store(store_url)
    before = table_rows(store_url)
    assert all(before[name] for name in ROWS)  # data in every table

    done = run_cli("upgrade", "-c", str(config))

    assert done.code == 0, done.err
    assert done.out.startswith("store ") and done.out.rstrip().endswith(
        "upgraded from 0001 to 0003"
    )
    after = table_rows(store_url)
    assert {name: after[name] for name in before} == before
    assert after["answers"] == [] and after["preferences"] == []
    assert revision_of(store_url) == [migrations.HEAD]
    again = run_cli("upgrade", "-c", str(config))
    assert again.code == 0 and again.out.rstrip().endswith("is up to date (0003)")
    store = Store(store_url)  # opens, and its queries read the rows kept
    try:
        assert store.known_keys(["reflection:ana@example.com:2026-11-05"])
        assert store.is_unsubscribed("cy@example.com", "digest")
        assert [b.writes for b in store.blocks_of("ana@example.com")] == [2]
    finally:
        store.close()


def test_upgrade_takes_a_store_stamped_at_the_baseline_too(
    run_cli, config: Path, store_url: str
) -> None:
    engine = engine_of(store_url)
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    engine.dispose()
    assert revision_of(store_url) == ["0001"]
    done = run_cli("upgrade", "-c", str(config))
    assert done.code == 0, done.err
    assert done.out.rstrip().endswith("upgraded from 0001 to 0003")
    assert revision_of(store_url) == ["0003"]


@pytest.mark.parametrize("command", [["run", "--once"], ["sync"]])
def test_a_command_on_a_store_behind_says_to_upgrade_in_one_line(
    run_cli, config: Path, store_url: str, command: list[str]
) -> None:
    old_store(store_url)
    done = run_cli(*command, "-c", str(config), "--now", "2026-11-05T16:45+01:00")
    assert done.code == 2
    assert BEHIND in done.err and done.err.count("\n") == 1, done.err
    assert table_rows(store_url)["outbox"] == [ROWS["outbox"]]  # nothing written


def test_a_store_made_by_a_newer_steadyhand_is_refused(
    run_cli, config: Path, store_url: str
) -> None:
    Store(store_url).close()
    engine = engine_of(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(UserError) as info:
        Store(store_url)
    assert "is at schema 0099, made by a newer steadyhand" in str(info.value)
    done = run_cli("upgrade", "-c", str(config))
    assert done.code == 1
    assert "could not upgrade the store" in done.err and "made by a newer steadyhand" in done.err
    assert revision_of(store_url) == ["0099"]  # left as it was
    run = run_cli("run", "--once", "-c", str(config))
    assert run.code == 2 and "made by a newer steadyhand" in run.err


def test_a_new_store_opens_at_the_last_revision(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        (tmp_path / "var").mkdir(mode=0o700)
    Store(store_url).close()
    assert revision_of(store_url) == [migrations.HEAD]
    Store(store_url).close()  # and opens again


def test_upgrade_makes_a_new_store_from_the_migrations(run_cli, config: Path) -> None:
    done = run_cli("upgrade", "-c", str(config))
    assert done.code == 0, done.err
    assert done.out.rstrip().endswith("created at schema 0003")


def test_the_migrations_give_the_schema_a_new_store_is_made_from(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        Path(store_url[len("sqlite:///") :]).parent.mkdir(mode=0o700)
    engine = engine_of(store_url)
    with engine.begin() as conn:
        migrations.upgrade(conn)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_the_baseline_is_the_last_releases_schema(store_url: str) -> None:
    """0001 makes the tables of today's metadata but the ones later revisions added."""
    if store_url.startswith("sqlite"):
        Path(store_url[len("sqlite:///") :]).parent.mkdir(mode=0o700)
    baseline = MetaData()
    for table in metadata.sorted_tables:
        if table.name in migrations.ADDED["0001"]:
            table.to_metadata(baseline)
    assert set(baseline.tables) == migrations.ADDED["0001"]
    engine = engine_of(store_url)
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), baseline) == []
    engine.dispose()


def test_the_last_migration_is_the_revision_a_store_needs() -> None:
    assert migrations.script_head() == migrations.HEAD == migrations.REVISIONS[-1]
    added = set().union(*migrations.ADDED.values())
    assert added == set(metadata.tables)


def test_a_store_from_before_migrations_with_every_table_opens_and_is_stamped(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = engine_of(url)
    metadata.create_all(engine)  # what steadyhand made before it had migrations
    engine.dispose()
    Store(url).close()
    assert revision_of(url) == [migrations.HEAD]


def test_an_upgrade_that_fails_half_way_leaves_the_store_as_it_was(
    run_cli, config: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_store(store_url)
    before = table_rows(store_url)
    real = migrations.upgrade

    def fails_after_running(conn: Any, revision: str = "head") -> None:
        real(conn, revision)
        raise OSError("disk full")

    monkeypatch.setattr(migrations, "upgrade", fails_after_running)
    done = run_cli("upgrade", "-c", str(config))
    assert done.code == 1
    assert "could not upgrade the store" in done.err and "disk full" in done.err
    assert table_rows(store_url) == before  # no new table, no stamp, every row


def test_serve_on_a_store_behind_refuses_to_start_and_says_to_upgrade(
    config: Path, store_url: str
) -> None:
    old_store(store_url)
    env = {**os.environ, "STEADYHAND_SECRET_KEY": "k" * 44}
    env.pop("STEADYHAND_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "serve", "-c", str(config)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert BEHIND in done.stderr


def test_doctor_on_a_store_behind_says_to_upgrade_not_to_start_the_database(
    run_cli, config: Path, store_url: str
) -> None:
    old_store(store_url)
    done = run_cli("doctor", "-c", str(config))
    assert "not usable" in done.out
    assert "steadyhand upgrade" in done.out + done.err
    assert "start the database" not in done.out + done.err
