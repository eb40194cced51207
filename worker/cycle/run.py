"""The cycle: one tick, or one full cycle inline, crossing the cycle's steps in order.

sync the calendars (:mod:`worker.cycle.sync`) → re-plan and write the protected blocks
(:mod:`worker.cycle.protect`) → decide the due emails into the outbox
(:mod:`worker.cycle.decide`) → carry out the due rows (:mod:`worker.cycle.deliver`).
Entry points (CLI commands, Huey tasks) resolve settings into a
:class:`~worker.cycle.runtime.Runtime` and call one function here or in a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Closes
from worker.cycle import decide, protect
from worker.cycle.deliver import Delivery, deliver
from worker.cycle.runtime import Runtime
from worker.cycle.sync import SyncReport, sync


@dataclass(frozen=True, slots=True)
class CycleReport:
    syncs: Sequence[SyncReport]
    decided: Sequence[int]
    deliveries: Sequence[Delivery]


def tick(rt: Runtime, now: datetime) -> tuple[list[SyncReport], list[int]]:
    """The per-minute work: sync calendars that are due, re-plan the protected blocks of
    the people whose calendar was just read (writing the changes), decide due emails."""
    reports = sync(rt, now, only_due=True)
    protect.replan(rt, now, reports)
    return reports, decide.decide(rt, now)


def run_cycle(rt: Runtime, now: datetime) -> CycleReport:
    """One full cycle inline: sync everything, re-plan blocks, decide, deliver every due row."""
    reports = sync(rt, now)
    written = protect.replan(rt, now, reports)
    decided = decide.decide(rt, now)
    try:
        deliveries = written + [deliver(rt, row_id, now) for row_id in rt.store.due_ids(now)]
    finally:
        close = rt.transport.close if isinstance(rt.transport, Closes) else None
        if close is not None:
            close()  # the batch is over: hang up
    return CycleReport(reports, decided, deliveries)
