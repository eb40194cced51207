"""The outbox: one row per send or calendar write, ``pending -> claimed (lease) -> done |
failed``, the sweeps that find due rows and the claims a dead worker left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from worker.store.tables import _dt, _ts, outbox


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    key: str
    kind: str
    program: str
    recipient: str
    period: str
    due: datetime
    payload: dict[str, Any]
    status: str
    attempts: int
    result: str | None
    last_error: str | None


class OutboxQueries:
    """The outbox part of :class:`worker.store.Store`."""

    engine: Engine

    def enqueue(
        self,
        key: str,
        kind: str,
        program: str,
        recipient: str,
        period: str,
        due: datetime,
        payload: dict[str, Any],
        now: datetime,
        status: str = "pending",
        result: str | None = None,
    ) -> int | None:
        """Insert a pending row; None when the key exists already (decided before).
        A row that is decided and settled at once (bundled into another email) is
        inserted ``done`` with its ``result``."""
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(
                    insert(outbox).values(
                        key=key,
                        kind=kind,
                        program=program,
                        recipient=recipient,
                        period=period,
                        due_ts=_ts(due),
                        payload=json.dumps(payload, sort_keys=True, default=str),
                        status=status,
                        result=result,
                        attempts=0,
                        created_ts=_ts(now),
                        done_ts=_ts(now) if status == "done" else None,
                    )
                )
                row_id = inserted.inserted_primary_key
                return int(row_id[0]) if row_id else None
        except IntegrityError:
            return None

    def claim(
        self, row_id: int, now: datetime, lease: timedelta, owner: str | None = None
    ) -> OutboxRow | None:
        """Take a pending row, or one whose lease expired; None if another worker has it.
        ``owner`` (``host:pid``) lets :meth:`release_dead_claims` free it after a crash."""
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == row_id,
                    outbox.c.due_ts <= _ts(now),
                    or_(
                        outbox.c.status == "pending",
                        and_(outbox.c.status == "claimed", outbox.c.lease_until_ts <= _ts(now)),
                    ),
                )
                .values(
                    status="claimed",
                    lease_until_ts=_ts(now + lease),
                    claimed_by=owner,
                    attempts=outbox.c.attempts + 1,
                )
                .returning(*outbox.c)
            )
            row = claimed.first()
        return _outbox_from(row) if row is not None else None

    def release_dead_claims(self, host: str, alive: Callable[[int], bool]) -> list[int]:
        """Return to pending the claims taken on ``host`` by processes that are gone
        (a crashed ``apply``), so a rerun need not wait for their lease to expire."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.claimed_by).where(
                    outbox.c.status == "claimed", outbox.c.claimed_by.like(f"{host}:%")
                )
            ).all()
            dead = [r.id for r in rows if not alive(int(r.claimed_by.rsplit(":", 1)[1]))]
            if dead:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(dead), outbox.c.status == "claimed")
                    .values(status="pending", lease_until_ts=None, claimed_by=None)
                )
        return dead

    def complete(self, row_id: int, result: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(status="done", result=result, done_ts=_ts(now), lease_until_ts=None)
            )

    def fail(self, row_id: int, error: str, now: datetime, retry_at: datetime | None) -> None:
        """A transient failure goes back to pending at ``retry_at``; None means give up."""
        values: dict[str, Any] = {"last_error": error, "lease_until_ts": None}
        if retry_at is None:
            values.update(status="failed", done_ts=_ts(now))
        else:
            values.update(status="pending", due_ts=_ts(retry_at))
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))

    def due_ids(self, now: datetime, limit: int = 1000) -> list[int]:
        """Rows a sweeper should (re)enqueue: pending and due, or claimed with an expired lease."""
        query = (
            select(outbox.c.id)
            .where(
                or_(
                    and_(outbox.c.status == "pending", outbox.c.due_ts <= _ts(now)),
                    and_(outbox.c.status == "claimed", outbox.c.lease_until_ts <= _ts(now)),
                )
            )
            .order_by(outbox.c.due_ts, outbox.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [r.id for r in conn.execute(query)]

    def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        query = select(outbox).order_by(outbox.c.id)
        if status:
            query = query.where(outbox.c.status == status)
        with self.engine.connect() as conn:
            return [_outbox_from(r) for r in conn.execute(query)]

    def stuck_claims(self, now: datetime) -> list[OutboxRow]:
        """Rows claimed by a worker whose lease ran out (it died mid-send): the sweeper
        takes them over while a worker runs; if they stay, no worker is running."""
        query = (
            select(outbox)
            .where(and_(outbox.c.status == "claimed", outbox.c.lease_until_ts <= _ts(now)))
            .order_by(outbox.c.id)
        )
        with self.engine.connect() as conn:
            return [_outbox_from(r) for r in conn.execute(query)]


def _outbox_from(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row.id,
        key=row.key,
        kind=row.kind,
        program=row.program,
        recipient=row.recipient,
        period=row.period,
        due=_dt(row.due_ts),
        payload=json.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        result=row.result,
        last_error=row.last_error,
    )
