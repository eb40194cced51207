"""Sync: every calendar (or some) read through its connector into the store, each one a
unit of its own. A calendar that fails, whatever the exception, is reported, logged once
and recorded for ``doctor``; its stored events stay, and the others still sync.
Calendars are read at once (``sync.concurrency``, :mod:`worker.cycle.parallel`); the store is
written only by the calling thread.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from connectors.base import BatchSync, CalendarConnector, ParallelReads
from worker.config import Settings
from worker.core.errors import SteadyhandError, UserError
from worker.core.model import UTC, CalendarRef, ReadNote, SyncResult, SyncState, TimeRange
from worker.cycle.parallel import Job, run_bounded
from worker.cycle.runtime import Runtime

logger = logging.getLogger(__name__)

#: Marks the WARNING that says a calendar's outcome (failed, or read with notes): a
#: command that prints the outcome itself (its table, its lines) keeps that WARNING off
#: the terminal, so each is said once (``cli_common.sync_outcomes_said_by_command``).
SAID_BY_COMMAND = "steadyhand_sync_outcome"
_OUTCOME = {SAID_BY_COMMAND: True}


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
    on_total: Callable[[int], None] | None = None,
    concurrency: int | None = None,
) -> list[SyncReport]:
    """Sync every calendar (or one person's, or ``refs``). A calendar that fails, whatever
    the exception (a bad file, a library's OverflowError, MemoryError, a store DataError),
    is reported, logged once and recorded; its previously stored events stay, and the
    others still sync.

    Calendars are read at once, up to ``concurrency`` (``sync.concurrency``) of them, each
    on a thread of its own, and at most ``parallel_reads`` at a time of one connector
    (:class:`~connectors.base.ParallelReads`; one at a time without it). Calendars of a
    connector that can batch (``sync_many``) go through it together, as one read. The
    store is written here, in the calling thread: each calendar as soon as its read ends,
    while the others are still read. ``on_total`` hears how many calendars will be read,
    ``on_done`` each one's report as it is stored; the list returned is in config order.
    ``window`` replaces the configured one (``analyze`` of a period outside it)."""
    window = window or sync_window(rt.settings, now)
    due_before = now - rt.settings.sync.every
    last_ok = {c.calendar_key: c.last_ok for c in rt.store.calendars()} if only_due else {}
    wanted = []
    for ref in rt.refs(person) if refs is None else refs:
        seen = last_ok.get(ref.key)
        if not (only_due and seen is not None and seen > due_before):
            wanted.append(ref)
    if on_total:
        on_total(len(wanted))
    reports: dict[int, SyncReport] = {}

    def finish(ref: CalendarRef, outcome: SyncResult | Exception, seconds: float) -> None:
        started = time.perf_counter() - seconds  # _record counts from the read's start
        try:
            report = _record(rt, ref, outcome, now, started)
        except Exception as exc:  # storing it failed (a DataError): that calendar only
            report = _record(rt, ref, exc, now, started)
        reports[id(ref)] = report
        if on_done:
            on_done(report)

    reads = _reads(rt, wanted, window, finish)
    workers = concurrency or rt.settings.sync.concurrency
    for index, got in run_bounded([r.job for r in reads], workers):
        read = reads[index]
        outcome = (  # a job's own failure: the calendars' boundary, never KeyboardInterrupt
            _Outcome([got] * len(read.refs), [0.0] * len(read.refs))
            if isinstance(got, Exception)
            else got
        )
        for ref, one, seconds in zip(read.refs, outcome.results, outcome.seconds, strict=True):
            finish(ref, one, seconds)
    return [reports[id(ref)] for ref in wanted if id(ref) in reports]


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one read gave: a result (or the exception) and the seconds, per calendar."""

    results: Sequence[SyncResult | Exception]
    seconds: Sequence[float]


@dataclass(frozen=True, slots=True)
class _Read:
    """One job of :func:`sync`: one calendar, or a connector's batch of them."""

    refs: Sequence[CalendarRef]
    job: Job[_Outcome]


def _reads(
    rt: Runtime,
    wanted: Sequence[CalendarRef],
    window: TimeRange,
    finish: Callable[[CalendarRef, SyncResult | Exception, float], None],
) -> list[_Read]:
    """The jobs for ``wanted``, in its order: one per calendar, or one for all of a
    connector's calendars when it batches (``sync_many``). Connectors are built and sync
    states read here, in the calling thread; a calendar whose connector cannot be built
    (a missing extra) is finished at once, alone."""
    groups: dict[int, list[CalendarRef]] = {}
    connectors: dict[int, CalendarConnector] = {}
    for ref in wanted:
        try:
            connector = rt.connector(ref)
        except Exception as exc:  # no connector for it: that calendar only
            finish(ref, exc, 0.0)
            continue
        connectors[id(connector)] = connector
        groups.setdefault(id(connector), []).append(ref)
    reads = []
    for key, group in groups.items():
        connector = connectors[key]
        items = [(ref, window, rt.store.sync_state(ref.key)) for ref in group]
        if len(group) > 1 and isinstance(connector, BatchSync):
            reads.append(_Read(group, Job(key, 1, functools.partial(_many, connector, items))))
            continue
        limit = connector.parallel_reads if isinstance(connector, ParallelReads) else 1
        limit = limit if isinstance(limit, int) and limit >= 1 else 1
        for item in items:
            reads.append(
                _Read([item[0]], Job(key, limit, functools.partial(_one, connector, *item)))
            )
    return reads


def _many(
    connector: CalendarConnector,
    items: Sequence[tuple[CalendarRef, TimeRange, SyncState | None]],
) -> _Outcome:
    """A batch read: each calendar's result, and the batch's time for each."""
    started = time.perf_counter()
    batch: BatchSync = connector  # type: ignore[assignment]
    results = list(batch.sync_many(items))
    if len(results) != len(items):  # a connector's bug: its calendars fail, not the sync
        raise RuntimeError(f"sync_many gave {len(results)} results for {len(items)} calendars")
    return _Outcome(results, [time.perf_counter() - started] * len(items))


def _one(
    connector: CalendarConnector, ref: CalendarRef, window: TimeRange, state: SyncState | None
) -> _Outcome:
    started = time.perf_counter()
    result: SyncResult | Exception
    try:
        result = connector.sync(ref, window, state)
    except Exception as exc:  # the calendar's boundary: never KeyboardInterrupt
        result = exc
    return _Outcome([result], [time.perf_counter() - started])


def _record(
    rt: Runtime, ref: CalendarRef, outcome: SyncResult | Exception, now: datetime, started: float
) -> SyncReport:
    """Store one calendar's sync outcome and say what happened (named by ``ref.shown``)."""
    if isinstance(outcome, Exception):
        error = _error_line(outcome)
        logger.warning("sync %s failed: %s", ref.key, error, extra=_OUTCOME)
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
        logger.warning("sync %s: read, %s", ref.key, report.said, extra=_OUTCOME)
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
