"""The ledgers: which idempotency keys were decided and how many emails reached a
person in a span, who unsubscribed, which minute's tick was taken, and the blocks
steadyhand wrote (what tells a user's edit from ours)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from worker.core.model import TimeRange
from worker.store.tables import _chunks, _dt, _ts, blocks, outbox, ticks, unsubscribes


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A block as steadyhand last wrote it: a different time, title or ``fingerprint``
    on the calendar means the user edited it and took it over. ``writes`` counts the
    writes done to it (each write's idempotency key includes it)."""

    block_id: str
    owner: str
    calendar_key: str
    rule: str
    event_id: str | None
    start: datetime
    end: datetime
    title: str
    status: str
    fingerprint: str | None = None
    writes: int = 0


#: The results of email rows done without sending anything (besides ``dropped: why``).
NOT_SENT_RESULTS = ("unsubscribed", "paused", "forgotten")


class LedgerQueries:
    """The ledger part of :class:`worker.store.Store`."""

    engine: Engine

    # -- what was decided and sent ---------------------------------------------------
    def known_keys(self, keys: Iterable[str]) -> set[str]:
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(list(keys), 500):
                found.update(
                    r.key for r in conn.execute(select(outbox.c.key).where(outbox.c.key.in_(chunk)))
                )
        return found

    def emails_sent(self, recipient: str, span: TimeRange) -> int:
        """Emails that reached ``recipient`` in ``span`` (bundled parts, and rows done
        without sending, unsubscribed, paused, dropped or forgotten, not counted)."""
        query = select(outbox.c.id).where(
            outbox.c.kind == "email",
            outbox.c.recipient == recipient,
            outbox.c.status == "done",
            outbox.c.done_ts >= _ts(span.start),
            outbox.c.done_ts < _ts(span.end),
            or_(outbox.c.result.is_(None), ~outbox.c.result.like("bundled:%")),
            or_(outbox.c.result.is_(None), outbox.c.result.not_in(NOT_SENT_RESULTS)),
            or_(outbox.c.result.is_(None), ~outbox.c.result.like("dropped:%")),
        )
        with self.engine.connect() as conn:
            return len(conn.execute(query).all())

    # -- opt-out ---------------------------------------------------------------------
    def unsubscribe(self, email: str, program: str, now: datetime) -> bool:
        """Record an opt-out (``program`` "*" for every program); False if it was there."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(unsubscribes).values(
                        email=email.lower(), program=program, at_ts=_ts(now)
                    )
                )
        except IntegrityError:
            return False
        return True

    def is_unsubscribed(self, email: str, program: str) -> bool:
        query = select(unsubscribes.c.program).where(
            unsubscribes.c.email == email.lower(), unsubscribes.c.program.in_([program, "*"])
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    # -- ticks ---------------------------------------------------------------------
    def claim_tick(self, minute: str, now: datetime) -> bool:
        """True for the first caller of this minute across every consumer; False after."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ticks).values(minute=minute, at_ts=_ts(now)))
        except IntegrityError:
            return False
        return True

    # -- blocks steadyhand wrote (the ledger that tells a user's edit from ours) ----------
    def record_block(
        self,
        block_id: str,
        owner: str,
        calendar_key: str,
        rule: str,
        event_id: str | None,
        start: datetime,
        end: datetime,
        title: str,
        status: str,
        now: datetime,
        fingerprint: str | None = None,
        writes: int | None = None,
    ) -> None:
        """Remember a block as written (``writes``: the count after this write)."""
        values: dict[str, Any] = {
            "owner": owner,
            "calendar_key": calendar_key,
            "rule": rule,
            "event_id": event_id,
            "start_ts": _ts(start),
            "end_ts": _ts(end),
            "title": title,
            "status": status,
            "updated_ts": _ts(now),
            "fingerprint": fingerprint,
        }
        with self.engine.begin() as conn:
            kept = {}
            if writes is not None:  # never back: a late retry of an older write keeps the count
                kept["writes"] = case((blocks.c.writes > writes, blocks.c.writes), else_=writes)
            found = conn.execute(
                update(blocks).where(blocks.c.block_id == block_id).values(**values, **kept)
            )
            if found.rowcount == 0:
                conn.execute(insert(blocks).values(block_id=block_id, writes=writes or 0, **values))

    def set_block_status(self, block_id: str, status: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(blocks)
                .where(blocks.c.block_id == block_id)
                .values(status=status, updated_ts=_ts(now))
            )

    def blocks_of(self, owner: str) -> list[BlockRecord]:
        query = select(blocks).where(blocks.c.owner == owner).order_by(blocks.c.start_ts)
        with self.engine.connect() as conn:
            return [
                BlockRecord(
                    r.block_id,
                    r.owner,
                    r.calendar_key,
                    r.rule,
                    r.event_id,
                    _dt(r.start_ts),
                    _dt(r.end_ts),
                    r.title,
                    r.status,
                    r.fingerprint,
                    r.writes or 0,
                )
                for r in conn.execute(query)
            ]
