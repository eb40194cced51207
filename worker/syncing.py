"""Sync: every calendar (or some) read through its connector into the store, each one a
unit of its own. A calendar that fails, whatever the exception, is reported, logged once
and recorded for ``doctor``; its stored events stay, and the others still sync.
:mod:`worker.services` re-exports :func:`sync`, :class:`SyncReport` and :func:`sync_window`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from connectors.base import (
    SteadyhandError,
    UserError,
)
from worker.config import Settings
from worker.model import (
    UTC,
    CalendarRef,
    ReadNote,
    SyncResult,
    TimeRange,
)

if TYPE_CHECKING:
    from worker.services import Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncReport:
    calendar_key: str
    owner: str
    kind: str
    location: str
    outcome: str  # read | unchanged | failed
    events: int
    changed: int
    removed: int
    seconds: float
    error: str | None = None
    fixable: bool = False  # the error is the user's to fix (a bad file), not a passing fault
    truncated: str | None = None  # read, but only part of it: why
    notes: tuple[ReadNote, ...] = ()  # what was read around (an unknown zone, a bad event)

    @property
    def said(self) -> str:
        """What the read said beyond ``read``: ``truncated: …; 1 event skipped (…)``."""
        parts = [f"truncated: {self.truncated}"] if self.truncated else []
        return "; ".join([*parts, *(note.text for note in self.notes)])


def sync_window(settings: Settings, now: datetime) -> TimeRange:
    """The stored window, aligned to UTC midnight so it changes once a day, not each tick."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return TimeRange(midnight - settings.sync.past, midnight + settings.sync.future)


def sync(
    rt: Runtime,
    now: datetime,
    person: str | None = None,
    only_due: bool = False,
    on_done: Callable[[SyncReport], None] | None = None,
    refs: Sequence[CalendarRef] | None = None,
    window: TimeRange | None = None,
) -> list[SyncReport]:
    """Sync every calendar (or one person's, or ``refs``). A calendar that fails, whatever
    the exception (a bad file, a library's OverflowError, MemoryError, a store DataError),
    is reported, logged once and recorded; its previously stored events stay, and the
    others still sync.
    ``window`` replaces the configured one (``analyze`` of a period outside it).
    Calendars of a connector that can batch (``sync_many``) go through it together."""
    window = window or sync_window(rt.settings, now)
    due_before = now - rt.settings.sync.every
    last_ok = {c.calendar_key: c.last_ok for c in rt.store.calendars()} if only_due else {}
    wanted = []
    for ref in rt.refs(person) if refs is None else refs:
        seen = last_ok.get(ref.key)
        if not (only_due and seen is not None and seen > due_before):
            wanted.append(ref)
    groups: dict[int, list[CalendarRef]] = {}
    unbuilt: list[tuple[CalendarRef, Exception]] = []
    for ref in wanted:
        try:
            groups.setdefault(id(rt.connector(ref)), []).append(ref)
        except Exception as exc:  # no connector for it (a missing extra): that calendar only
            unbuilt.append((ref, exc))
    reports = []

    def finish(ref: CalendarRef, outcome: SyncResult | Exception, started: float) -> None:
        try:
            report = _record(rt, ref, outcome, now, started)
        except Exception as exc:  # storing it failed (a DataError): that calendar only
            report = _record(rt, ref, exc, now, started)
        reports.append(report)
        if on_done:
            on_done(report)

    for ref, error in unbuilt:
        finish(ref, error, time.perf_counter())
    for group in groups.values():
        connector = rt.connector(group[0])
        started = time.perf_counter()
        if len(group) > 1 and hasattr(connector, "sync_many"):
            items = [(r, window, rt.store.sync_state(r.key)) for r in group]
            outcomes: list[SyncResult | Exception]
            try:
                outcomes = list(connector.sync_many(items))
            except Exception as exc:  # the calendars' boundary: never KeyboardInterrupt
                outcomes = [exc] * len(group)
            for ref, outcome in zip(group, outcomes, strict=True):
                finish(ref, outcome, started)
                started = time.perf_counter()
            continue
        for ref in group:  # each stored before the next is read
            started = time.perf_counter()
            one: SyncResult | Exception
            try:
                one = connector.sync(ref, window, rt.store.sync_state(ref.key))
            except Exception as exc:  # the calendar's boundary: never KeyboardInterrupt
                one = exc
            finish(ref, one, started)
    return reports


def _record(
    rt: Runtime, ref: CalendarRef, outcome: SyncResult | Exception, now: datetime, started: float
) -> SyncReport:
    """Store one calendar's sync outcome and say what happened (named by ``ref.shown``)."""
    if isinstance(outcome, Exception):
        error = _error_line(outcome)
        logger.warning("sync %s failed: %s", ref.key, error)
        logger.debug("sync %s failed", ref.key, exc_info=outcome)
        try:
            rt.store.record_sync_error(ref.key, ref.owner, ref.kind, error, now)
        except Exception as exc:
            logger.error("sync %s: cannot record the failure: %s", ref.key, _error_line(exc))
        return SyncReport(
            ref.key,
            ref.owner,
            ref.kind,
            ref.shown,
            "failed",
            0,
            0,
            0,
            time.perf_counter() - started,
            error,
            fixable=isinstance(outcome, UserError),
        )
    result = outcome
    events, truncated = result.events, result.truncated
    cap = rt.settings.sync.max_events
    if len(events) > cap:  # any connector: a provider's huge calendar is bounded too
        events = events[:cap]
        truncated = truncated or f"more than {cap} events (sync.max_events)"
    count = rt.store.save_sync(
        ref.key,
        ref.owner,
        ref.kind,
        result.state,
        events,
        result.removed,
        result.full,
        now,
        rt.settings.privacy.store_titles,
        truncated=truncated,
        read=not result.unchanged,
        notes=result.notes,
    )
    elapsed = time.perf_counter() - started
    state = "unchanged" if result.unchanged else "read"
    report = SyncReport(
        ref.key,
        ref.owner,
        ref.kind,
        ref.shown,
        state,
        count,
        len(events),
        len(result.removed),
        elapsed,
        truncated=truncated,
        notes=result.notes,
    )
    if report.said:  # once per calendar; the connector named each event at INFO
        logger.warning("sync %s: read, %s", ref.key, report.said)
    logger.info("sync %s: %s, %d events stored, %.3fs", ref.key, state, count, elapsed)
    return report


def _error_line(exc: BaseException) -> str:
    """One line for a failure: ours as it is (it names the place and the fix); anyone
    else's as its type and first line, without the SQL and parameters of a database
    error or what a message quotes (it may be a file's content)."""
    if isinstance(exc, SteadyhandError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(source).strip().splitlines()
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "…", lines[0])[:160] if lines else ""
    name = type(source).__name__
    return f"{name}: {first}" if first else name
