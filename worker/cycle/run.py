"""The cycle: one tick, or one full cycle inline, crossing the cycle's steps in order.

sync the calendars (:mod:`worker.cycle.sync`) → re-plan and write the protected blocks
(:mod:`worker.cycle.protect`) → decide the due emails into the outbox
(:mod:`worker.cycle.decide`) → carry out the due rows (:mod:`worker.cycle.deliver`);
and once a day, the purge of answers older than ``privacy.keep_answers``.
Entry points (CLI commands, Huey tasks) resolve settings into a
:class:`~worker.cycle.runtime.Runtime` and call one function here or in a step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.base import Closes
from worker.core.wording import plural
from worker.cycle import decide, protect
from worker.cycle.deliver import Delivery, deliver
from worker.cycle.runtime import Runtime
from worker.cycle.sync import SyncReport, sync

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CycleReport:
    syncs: Sequence[SyncReport]
    decided: Sequence[int]
    deliveries: Sequence[Delivery]


def tick(rt: Runtime, now: datetime) -> tuple[list[SyncReport], list[int]]:
    """The per-minute work: sync calendars that are due, re-plan the protected blocks of
    the people whose calendar was just read (writing the changes), decide due emails (and
    the day's purge, :func:`purge_daily`)."""
    reports = sync(rt, now, only_due=True)
    protect.replan(rt, now, reports)
    decided = decide.decide(rt, now)
    purge_daily(rt, now)
    return reports, decided


def run_cycle(rt: Runtime, now: datetime) -> CycleReport:
    """One full cycle inline: sync everything, re-plan blocks, decide, deliver every due row."""
    reports = sync(rt, now)
    written = protect.replan(rt, now, reports)
    decided = decide.decide(rt, now)
    purge_daily(rt, now)
    try:
        deliveries = written + [deliver(rt, row_id, now) for row_id in rt.store.due_ids(now)]
    finally:
        close = rt.transport.close if isinstance(rt.transport, Closes) else None
        if close is not None:
            close()  # the batch is over: hang up
    return CycleReport(reports, decided, deliveries)


def purge_daily(rt: Runtime, now: datetime) -> int | None:
    """Delete the answers last changed more than ``privacy.keep_answers`` ago, once a UTC
    day across every consumer (the first tick of the day claims ``purge:DAY``); how many
    went, or None when the day's purge was done already. A failure is logged, not raised:
    the tick's other work is done, and tomorrow's purge deletes what today's did not."""
    day = now.astimezone(UTC).date().isoformat()
    try:
        if not rt.store.claim_tick(f"purge:{day}", now):
            return None
        before = now - rt.settings.privacy.keep_answers
        count = rt.store.purge_answers(before)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        logger.error("purge of old answers failed: %s: %s", type(exc).__name__, reason)
        return None
    logger.info(
        "purged %s last changed before %s (privacy.keep_answers)",
        plural(count, "answer"),
        before.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
    )
    return count
