"""The load report (docs/metrics.md), syncing first where the store has no data.

Above :mod:`worker.cycle.sync` (it syncs calendars the store never read) and below the
commands and programs that show figures (``analyze``, ``demo``, ``emails preview``, the
digest email), so :mod:`worker.cycle.runtime` stays below the sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from worker import report
from worker.core import analysis
from worker.core.model import Person, TimeRange, local_day_range
from worker.cycle.runtime import Runtime, person_events, policy, select
from worker.cycle.sync import SyncReport, sync, sync_window


def ensure_synced(
    rt: Runtime, people: Sequence[Person], span: TimeRange, now: datetime
) -> list[SyncReport]:
    """Sync the calendars of ``people`` that were never read, or not for ``span``."""
    default = sync_window(rt.settings, now)
    wanted = TimeRange(min(default.start, span.start), max(default.end, span.end))
    stale = []
    for p in people:
        ref = rt.settings.calendar_ref(p.email)
        if ref is None:
            continue
        state = rt.store.sync_state(ref.key)
        covered = (
            state is not None
            and state.window is not None
            and (state.window.start <= span.start and span.end <= state.window.end)
        )
        if not covered:
            stale.append(ref)
    if not stale:
        return []
    return sync(rt, now, refs=stale, window=wanted)


def load_report(
    rt: Runtime,
    now: datetime,
    start: date,
    end: date,
    person: str | None = None,
    team: str | None = None,
) -> tuple[dict[str, Any], list[SyncReport]]:
    """The load report (docs/metrics.md) for ``start``..``end``, syncing first where the
    store has no data."""
    people, teams = select(rt.settings, person, team)
    span = (
        TimeRange(
            min(local_day_range(start, p.tz).start for p in people),
            max(local_day_range(end, p.tz).end for p in people),
        )
        if people
        else TimeRange(now, now)
    )
    synced = ensure_synced(rt, people, span, now)
    rows, sources = [], {}
    for p in people:
        events = person_events(rt, p, start, end)
        meetings_from = rt.settings.meetings_from(p.email)
        sources[p.email] = analysis.meeting_source(events, p, start, end, meetings_from)
        days = analysis.analyze_days(
            p, events, start, end, policy(rt.settings), meetings_from=meetings_from
        )
        rows.append((p, days))
    built = report.build(
        start, end, rows, teams, rt.settings.privacy.min_team_size, sources=sources
    )
    return built, synced
