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
service, and their pause); :class:`Store` composes them over one engine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, inspect, select, update

from connectors.secrets import private_file
from worker.core.errors import Problem, UserError
from worker.core.model import redact_location
from worker.store.answers import Answer, AnswerQueries
from worker.store.audit import AuditQueries
from worker.store.events import CalendarStatus, EventQueries
from worker.store.ledger import BlockRecord, LedgerQueries
from worker.store.outbox import OutboxQueries, OutboxRow
from worker.store.tables import blocks, events, metadata, sync_state

__all__ = ["Answer", "BlockRecord", "CalendarStatus", "OutboxRow", "Store"]

logger = logging.getLogger(__name__)


class Store(EventQueries, OutboxQueries, LedgerQueries, AuditQueries, AnswerQueries):
    """One database. ``url`` is a SQLAlchemy URL (``sqlite:////abs/path.db``, ``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            # the file 0600 in a 0700 folder (SQLite gives its -wal and -shm the same mode)
            private_file(Path(url[len("sqlite:///") :].partition("?")[0]))
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._check_schema()
        self._redact_feed_keys()

    def _check_schema(self) -> None:
        """A store made by another version of steadyhand is refused in one line, before
        any query fails half-way (create_all makes missing tables, never columns)."""
        found = inspect(self.engine)
        for table in metadata.sorted_tables:
            have = {c["name"] for c in found.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                raise UserError(
                    Problem(
                        f"the store {self.engine.url.render_as_string()} was made by "
                        "another version of steadyhand "
                        f"(table {table.name} lacks {', '.join(missing)})",
                        "move the file aside and run again: events are read again from the "
                        "calendars (the ledger of sent emails starts afresh)",
                    )
                )

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
