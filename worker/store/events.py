"""The store: the source of truth for events, sync state, the outbox and the audit log.

SQLAlchemy Core on SQLite (WAL) by default, PostgreSQL for the scale-out mode.
Tables are created on first use. Every public method is one transaction, so a crash
leaves either the old state or the new one, never half of each.

Outbox rows (docs/architecture.md, *Once per key*) move
``pending -> claimed (lease) -> done | failed``. A row is
written in the same transaction as the decision to send or write, keyed by an
idempotency key (``program:recipient:period`` for email); inserting a key that exists
is a no-op, so deciding twice sends once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    case,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from connectors.secrets import private_file
from worker.core.errors import Problem, UserError
from worker.core.model import (
    UTC,
    Event,
    EventType,
    ReadNote,
    Response,
    Status,
    SyncState,
    TimeRange,
    Transparency,
    redact_location,
)
from worker.store.tables import (
    _dt,
    _ts,
    audit_log,
    blocks,
    events,
    metadata,
    outbox,
    read_notes,
    sync_notes,
    sync_state,
    ticks,
    unsubscribes,
)

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    calendar_key: str
    owner: str
    kind: str
    event_count: int
    last_ok: datetime | None
    last_error: str | None
    truncated: str | None = None  # why the last good read kept only part of it
    notes: tuple[ReadNote, ...] = ()  # what the last read read around


class Store:
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

    # -- events and sync state -------------------------------------------------------
    def sync_state(self, calendar_key: str) -> SyncState | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sync_state).where(sync_state.c.calendar_key == calendar_key)
            ).first()
        if row is None or row.last_ok_ts is None:
            return None
        window = None
        if row.window_start is not None and row.window_end is not None:
            window = TimeRange(_dt(row.window_start), _dt(row.window_end))
        return SyncState(row.token, row.etag, row.last_modified, row.fingerprint, window)

    def save_sync(
        self,
        calendar_key: str,
        owner: str,
        kind: str,
        state: SyncState,
        changed: Sequence[Event],
        removed: Iterable[str],
        full: bool,
        now: datetime,
        store_titles: bool,
        truncated: str | None = None,
        read: bool = True,
        notes: Sequence[ReadNote] = (),
    ) -> int:
        """Store one sync's outcome in one transaction; return the calendar's event count.

        Values are fitted to their columns on every database alike (:func:`_event_row`):
        an over-long id is kept as a prefix and its hash, NULs are dropped, long text cut;
        of two events with the same (fitted) id the later one is kept. ``truncated`` says
        why a read kept only part of the calendar and ``notes`` what it read around; when
        nothing was read (``read`` False) what the last read said stays."""
        fitted = {}
        for e in changed:
            row = _event_row(calendar_key, owner, e, store_titles)
            fitted[row["id"]] = row
        rows = list(fitted.values())
        with self.engine.begin() as conn:
            where = events.c.calendar_key == calendar_key
            if full:
                conn.execute(delete(events).where(where))
            else:
                ids = list({_fit_id(i, _ID) or "" for i in [*removed, *(e.id for e in changed)]})
                for chunk in _chunks(ids, 500):
                    conn.execute(delete(events).where(where, events.c.id.in_(chunk)))
            for chunk in _chunks(rows, 1000):
                conn.execute(insert(events), chunk)
            count = len(conn.execute(select(events.c.id).where(where)).all())
            values = {
                "owner": owner,
                "kind": kind,
                "token": state.token,
                "etag": state.etag,
                "last_modified": state.last_modified,
                "fingerprint": state.fingerprint,
                "window_start": _ts(state.window.start) if state.window else None,
                "window_end": _ts(state.window.end) if state.window else None,
                "last_attempt_ts": _ts(now),
                "last_ok_ts": _ts(now),
                "last_error": None,
                "event_count": count,
            }
            self._upsert_sync(conn, calendar_key, values)
            if read:
                conn.execute(delete(sync_notes).where(sync_notes.c.calendar_key == calendar_key))
                if truncated:
                    note = {"calendar_key": calendar_key, "truncated": _fit_text(truncated, 1000)}
                    conn.execute(insert(sync_notes).values(**note))
                conn.execute(delete(read_notes).where(read_notes.c.calendar_key == calendar_key))
                for position, said in enumerate(notes):
                    row = {
                        "calendar_key": calendar_key,
                        "position": position,
                        "text": _fit_text(said.text, 1000),
                        "count": said.count,
                        "events": _fit_text("\n".join(said.events), 4000),
                    }
                    conn.execute(insert(read_notes).values(**row))
        return count

    def record_sync_error(
        self, calendar_key: str, owner: str, kind: str, error: str, now: datetime
    ) -> None:
        """Remember a failed sync; the events read last time stay as they were."""
        values = {
            "owner": owner,
            "kind": kind,
            "last_attempt_ts": _ts(now),
            "last_error": _fit_text(error, 1000),
        }
        with self.engine.begin() as conn:
            self._upsert_sync(conn, calendar_key, values)

    @staticmethod
    def _upsert_sync(conn: Any, calendar_key: str, values: dict[str, Any]) -> None:
        found = conn.execute(
            update(sync_state).where(sync_state.c.calendar_key == calendar_key).values(**values)
        )
        if found.rowcount == 0:
            conn.execute(
                insert(sync_state).values(calendar_key=calendar_key, **{"event_count": 0, **values})
            )

    def calendars(self) -> list[CalendarStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sync_state).order_by(sync_state.c.calendar_key)).all()
            found = conn.execute(select(sync_notes.c.calendar_key, sync_notes.c.truncated))
            notes = {key: why for key, why in found}
            said: dict[str, list[ReadNote]] = {}
            n = read_notes.c
            query = select(n.calendar_key, n.text, n.count, n.events).order_by(n.position)
            for key, text, count, events in conn.execute(query):
                said.setdefault(key, []).append(ReadNote(text, count, tuple(events.splitlines())))
        return [
            CalendarStatus(
                r.calendar_key,
                r.owner,
                r.kind,
                r.event_count,
                _dt(r.last_ok_ts) if r.last_ok_ts else None,
                r.last_error,
                notes.get(r.calendar_key),
                tuple(said.get(r.calendar_key, ())),
            )
            for r in rows
        ]

    def events_for(self, owner: str, span: TimeRange, tz: Any = UTC) -> list[Event]:
        """The owner's events overlapping ``span`` (all-day ones land on midnights in ``tz``)."""
        query = select(events).where(
            events.c.owner == owner,
            events.c.start_ts < _ts(span.end),
            events.c.end_ts > _ts(span.start),
        )
        with self.engine.connect() as conn:
            return [_event_from(row, tz) for row in conn.execute(query)]

    # -- outbox ---------------------------------------------------------------------
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
        without sending, unsubscribed or dropped, not counted)."""
        query = select(outbox.c.id).where(
            outbox.c.kind == "email",
            outbox.c.recipient == recipient,
            outbox.c.status == "done",
            outbox.c.done_ts >= _ts(span.start),
            outbox.c.done_ts < _ts(span.end),
            or_(outbox.c.result.is_(None), ~outbox.c.result.like("bundled:%")),
            or_(outbox.c.result.is_(None), outbox.c.result != "unsubscribed"),
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

    # -- ticks and audit ------------------------------------------------------------
    def claim_tick(self, minute: str, now: datetime) -> bool:
        """True for the first caller of this minute across every consumer; False after."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ticks).values(minute=minute, at_ts=_ts(now)))
        except IntegrityError:
            return False
        return True

    def audit(
        self,
        action: str,
        now: datetime,
        *,
        actor: str = "steadyhand",
        person: str | None = None,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at_ts=_ts(now),
                    actor=actor,
                    person=person,
                    action=action,
                    subject=subject,
                    detail=json.dumps(detail or {}, sort_keys=True, default=str),
                )
            )

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

    def recent_failures(self, action: str, limit: int = 500) -> list[tuple[str, str, str, int]]:
        """``(person, subject, last error, times)`` of the latest ``limit`` audit entries
        of ``action`` (e.g. ``decide_failed``), newest first, one per person and subject."""
        query = (
            select(audit_log.c.person, audit_log.c.subject, audit_log.c.detail)
            .where(audit_log.c.action == action)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        found: dict[tuple[str, str], list[Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                key = (r.person or "", r.subject or "")
                if key not in found:
                    error = json.loads(r.detail or "{}").get("error", "")
                    found[key] = [str(error), 0]
                found[key][1] += 1
        return [(p, s, e, n) for (p, s), (e, n) in found.items()]

    def audit_entries(self, person: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if person:
            query = query.where(audit_log.c.person == person)
        with self.engine.connect() as conn:
            return [_audit_from(r) for r in conn.execute(query)]

    def audit_since(self, action: str, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` entries of ``action`` (e.g. ``dropped``) at or after
        ``since``, newest first, as :meth:`audit_entries` gives them."""
        query = (
            select(audit_log)
            .where(audit_log.c.action == action, audit_log.c.at_ts >= _ts(since))
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_audit_from(r) for r in conn.execute(query)]


def _audit_from(row: Any) -> dict[str, Any]:
    return {
        "at": _dt(row.at_ts),
        "actor": row.actor,
        "person": row.person,
        "action": row.action,
        "subject": row.subject,
        "detail": json.loads(row.detail or "{}"),
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_ID = 500  # the length of the events table's id columns
_TITLE = 1000  # characters of a title kept


def _clean(value: str) -> str:
    """``value`` without NUL bytes (PostgreSQL text cannot hold them) and without lone
    surrogates (not UTF-8), the same on SQLite so both stores hold the same values."""
    value = value.replace("\0", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _fit_id(value: str | None, size: int) -> str | None:
    """An id its column can hold, stable from sync to sync: cleaned, and when longer than
    ``size`` a prefix of it, ``#`` and the sha256 of the whole."""
    if value is None:
        return None
    clean = _clean(value)
    if len(clean) <= size:
        return clean
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{clean[: size - len(digest) - 1]}#{digest}"


def _fit_text(value: str | None, size: int) -> str | None:
    """Text its column can hold: cleaned, and cut to ``size`` characters."""
    if value is None:
        return None
    clean = _clean(value)
    return clean if len(clean) <= size else clean[: size - 1] + "…"


def _event_row(calendar_key: str, owner: str, e: Event, store_titles: bool) -> dict[str, Any]:
    title = e.title if store_titles or e.owned_block_id else None
    return {
        "calendar_key": calendar_key,
        "id": _fit_id(e.id, _ID),
        "owner": owner,
        "start_ts": _ts(e.start),
        "end_ts": _ts(e.end),
        "all_day": e.all_day,
        "status": e.status.value,
        "response": e.response.value,
        "transparency": e.transparency.value,
        "event_type": e.event_type.value,
        "attendees": json.dumps([_fit_text(a, 320) for a in e.attendees]),
        "organizer": _fit_text(e.organizer, 320),
        "series_id": _fit_id(e.series_id, _ID),
        "etag": _fit_id(e.etag, 200),
        "owned_block_id": _fit_id(e.owned_block_id, 200),
        "title": _fit_text(title, _TITLE),
        "details": e.details if e.owned_block_id else None,  # our digest: fits String(64)
    }


def _event_from(row: Any, tz: Any) -> Event:
    return Event(
        id=row.id,
        calendar_id=row.calendar_key,
        start=_dt(row.start_ts).astimezone(tz),
        end=_dt(row.end_ts).astimezone(tz),
        all_day=row.all_day,
        status=Status(row.status),
        response=Response(row.response),
        transparency=Transparency(row.transparency),
        event_type=EventType(row.event_type),
        attendees=tuple(json.loads(row.attendees)),
        organizer=row.organizer,
        series_id=row.series_id,
        etag=row.etag,
        owned_block_id=row.owned_block_id,
        title=row.title,
        details=row.details,
    )


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
