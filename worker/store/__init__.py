"""The store: the source of truth for events, sync state, the outbox and the audit log.

SQLAlchemy Core on SQLite (WAL) by default, PostgreSQL for the scale-out mode.
Tables are created on first use. Every public method is one transaction, so a crash
leaves either the old state or the new one, never half of each.

Outbox rows (docs/architecture.md, *Once per key*) move
``pending -> claimed (lease) -> done | failed``. A row is
written in the same transaction as the decision to send or write, keyed by an
idempotency key (``program:recipient:period`` for email); inserting a key that exists
is a no-op, so deciding twice sends once.

The queries live beside the tables they read: :mod:`.events` (calendars, events, sync
state, read notes), :mod:`.outbox` (the rows' states, sweeps, stuck claims),
:mod:`.ledger` (idempotency keys, emails sent, unsubscribes, ticks, blocks written),
:mod:`.audit` (the audit log), :mod:`.answers` (what people answered through the web
service, and their pause), :mod:`.forget` (erasing a person); :class:`Store` composes
them over one engine.

The schema is under Alembic migrations (:mod:`.migrations`): :func:`upgrade` (``steadyhand
upgrade``) brings a store made by an older steadyhand up to the revision this one needs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from connectors.secrets import private_file
from worker.core.errors import Problem, UserError
from worker.core.model import redact_location
from worker.store import migrations
from worker.store.answers import Answer, AnswerQueries
from worker.store.audit import AuditQueries
from worker.store.events import CalendarStatus, EventQueries
from worker.store.figures import FigureQueries
from worker.store.forget import ForgetQueries, ForgetReport
from worker.store.ledger import BlockRecord, LedgerQueries
from worker.store.migrations import ADDED, HEAD, REVISIONS, version_table
from worker.store.outbox import OutboxQueries, OutboxRow
from worker.store.tables import blocks, events, metadata, sync_state

__all__ = [
    "Answer",
    "BlockRecord",
    "CalendarStatus",
    "ForgetReport",
    "OutboxRow",
    "Store",
    "upgrade",
]

logger = logging.getLogger(__name__)


class Store(
    EventQueries,
    OutboxQueries,
    LedgerQueries,
    AuditQueries,
    AnswerQueries,
    ForgetQueries,
    FigureQueries,
):
    """One database. ``url`` is a SQLAlchemy URL (``sqlite:////abs/path.db``, ``postgresql://…``).

    Opening it checks its schema (:meth:`_open`): a brand-new database gets the tables and
    the stamp of the revision this steadyhand needs; a store behind it, or made by a newer
    steadyhand, is refused in one line (``steadyhand upgrade`` brings one up)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        try:
            self._open()
            self._redact_feed_keys()
        except BaseException:
            self.engine.dispose()  # refused: no connection left open
            raise

    def _open(self, again: bool = True) -> None:
        """Create a new store's tables, or check an existing one is at :data:`HEAD`."""
        try:
            revision, names, stamped = _revision(self.engine, self.url)
            if revision is None or (revision == HEAD and not stamped):
                # Brand-new: the tables from the metadata (faster than the migrations, and
                # the same: tests/test_migrations.py); or made complete before migrations.
                with self.engine.begin() as conn:
                    metadata.create_all(conn)
                    _stamp(conn, HEAD)
                if revision is None:
                    return
        except (IntegrityError, OperationalError, ProgrammingError):
            if not again:
                raise
            self._open(again=False)  # another process made it at the same moment
            return
        if revision != HEAD:
            raise UserError(_not_at_head(self.url, revision))
        missing = [t for t in metadata.sorted_tables if t.name not in names]
        if missing:  # a table dropped by hand: made again, empty
            metadata.create_all(self.engine, tables=missing)
        self._check_schema()

    def _check_schema(self) -> None:
        """A store at :data:`HEAD` whose tables lack columns (an older steadyhand's, stamped
        by hand, or a column dropped) is refused in one line, before any query fails
        half-way: migrations record a revision, not what the tables hold."""
        _check_columns(self.engine, self.url, metadata.tables)

    def _redact_feed_keys(self) -> None:
        """Rename the keys of feeds stored by steadyhand before feed keys were redacted
        (``…:ics:https://host/…/private-<hex>/basic.ics#<hash>``) to what
        :meth:`Settings.calendar_ref` makes now (the hash was of the whole address then
        too), so no secret stays in the store and no calendar is counted twice."""
        like = sync_state.c.calendar_key.like("%:ics:%://%")
        with self.engine.begin() as conn:
            keys = set(conn.execute(select(sync_state.c.calendar_key).where(like)).scalars())
            renames = {}
            for key in keys:
                owner, _, rest = key.partition(":ics:")
                address, sep, digest = rest.rpartition("#")
                new = f"{owner}:ics:{redact_location(address).partition('?')[0]}#{digest}"
                if sep and new != key:
                    renames[key] = new
            for old, new in sorted(renames.items()):
                taken = new in keys or bool(
                    conn.execute(select(events.c.id).where(events.c.calendar_key == new).limit(1))
                    .scalars()
                    .first()
                )
                for table in (events, sync_state, blocks):
                    where = table.c.calendar_key == old
                    if taken and table is not blocks:  # read again at the next sync
                        conn.execute(delete(table).where(where))
                    else:
                        conn.execute(update(table).where(where).values(calendar_key=new))
                keys.add(new)
        if renames:
            logger.info("store: %d feed keys renamed without their secrets", len(renames))
            if self.engine.dialect.name == "sqlite":  # no old page keeps the secret either
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM")
                    c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.engine.dispose()


def upgrade(url: str) -> tuple[str | None, str]:
    """Run the migrations the store at ``url`` lacks, in one transaction (on SQLite too);
    ``(the revision it was at, None for a new one; the revision it is at now)``. A store
    made before migrations existed counts as the last revision whose tables it has."""
    engine = _engine(url, atomic_ddl=True)
    try:
        revision, _names, stamped = _revision(engine, url)
        if revision is not None and revision not in REVISIONS:
            raise UserError(_not_at_head(url, revision))
        if revision != HEAD or not stamped:
            with engine.begin() as conn:
                migrations.upgrade(conn)
    finally:
        engine.dispose()
    Store(url).close()  # what it holds checked (a table lacking columns is refused)
    return revision, HEAD


def _engine(url: str, atomic_ddl: bool = False) -> Engine:
    """The engine for ``url`` (``postgresql://`` through psycopg 3; a SQLite file 0600 in
    a 0700 folder, SQLite gives its -wal and -shm the same mode). ``atomic_ddl``: on SQLite,
    a transaction holds its CREATE and ALTER statements too (the driver lets them commit
    on their own otherwise), so a migration that fails half-way leaves the store as it was."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        private_file(Path(url[len("sqlite:///") :].partition("?")[0]))
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if atomic_ddl:
            event.listen(engine, "connect", _sqlite_own_transactions)
            event.listen(engine, "begin", _sqlite_begin)
    return engine


def _revision(engine: Engine, url: str) -> tuple[str | None, set[str], bool]:
    """``(the store's revision, its tables, whether it is stamped)``; the revision is None
    for a brand-new store (none of steadyhand's tables). A store made before migrations
    existed has no stamp: its tables are checked first (an older steadyhand's may lack
    columns no migration adds), then it counts as the last revision whose tables it has."""
    names = set(inspect(engine).get_table_names())
    if version_table.name in names:
        with engine.connect() as conn:
            found = sorted(conn.execute(select(version_table.c.version_num)).scalars())
        if found:
            return "+".join(found), names, True
    present = names & set(metadata.tables)
    if not present:
        return None, names, False
    # Compared with today's tables: true while no migration after the baseline changes the
    # columns of the baseline's tables (tests/test_migrations.py fails the day one does).
    _check_columns(engine, url, present)
    revision, tables = REVISIONS[0], set[str]()
    for candidate in REVISIONS:
        tables |= ADDED[candidate]
        if not tables <= names:
            break
        revision = candidate
    return revision, names, False


def _stamp(conn: Connection, revision: str) -> None:
    version_table.create(conn, checkfirst=True)
    conn.execute(delete(version_table))
    conn.execute(insert(version_table).values(version_num=revision))


def _not_at_head(url: str, revision: str) -> Problem:
    where = redact_location(url)
    if revision in REVISIONS:
        return Problem(
            f"the store {where} is at schema {revision}, this steadyhand needs {HEAD}",
            "run: steadyhand upgrade -c FILE",
        )
    return Problem(
        f"the store {where} is at schema {revision}, made by a newer steadyhand "
        f"(this one knows schemas up to {HEAD})",
        "run that newer steadyhand, or a copy of the store made before it",
    )


def _check_columns(engine: Engine, url: str, names: Collection[str]) -> None:
    """Refuse in one line a store whose tables ``names`` lack columns of this steadyhand's."""
    found = inspect(engine)
    for table in metadata.sorted_tables:
        if table.name not in names:
            continue
        have = {c["name"] for c in found.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise UserError(
                Problem(
                    f"the store {redact_location(url)} was made by another version of "
                    f"steadyhand (table {table.name} lacks {', '.join(missing)})",
                    "move the file aside and run again: events are read again from the "
                    "calendars (the ledger of sent emails starts afresh)",
                )
            )


def _sqlite_own_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours (_sqlite_begin)


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
