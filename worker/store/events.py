"""Calendars and their events: what each calendar's last sync read (sync state, the
notes of what it read around) and the events stored, with every value fitted to its
column alike on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

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
)
from worker.store.tables import (
    _chunks,
    _dt,
    _ts,
    events,
    read_notes,
    sync_notes,
    sync_state,
)


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


class EventQueries:
    """The events part of :class:`worker.store.Store`."""

    engine: Engine

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
