"""Huey tasks: the per-minute tick, the send task and the sweeper. A few lines each.

Tasks carry only outbox row ids; the store is the source of truth (docs/architecture.md). Huey
delivers a task at most once, so the sweeper re-enqueues rows that are pending past
their due time or whose claim lease expired (a consumer killed mid-send).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from huey import Huey, crontab

from worker.core.wording import plural
from worker.cycle import run as cycle
from worker.cycle.deliver import Delivery, deliver
from worker.cycle.runtime import Runtime
from worker.cycle.sync import SyncReport
from worker.queue.app import one_line

logger = logging.getLogger(__name__)

#: A pending row is the sweeper's once it is this late (the tick enqueues new ones itself).
SWEEP_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Tasks:
    tick: Any
    send: Any
    sweep: Any


def register(huey: Huey, rt: Runtime) -> Tasks:
    """Attach steadyhand's tasks to ``huey``, bound to the runtime ``rt``."""

    @huey.task(name="send")
    def send(row_id: int) -> str:
        try:
            result = deliver(rt, row_id, rt.clock())
        except Exception as exc:  # deliver records a row's own failure; this is the store's
            # The row's lease expires and the sweeper re-enqueues it: never claimed for good.
            logger.error("task send row=%s failed: %s", row_id, one_line(exc))
            logger.debug("task send row=%s traceback", row_id, exc_info=exc)
            return "error"
        what = _what(result, rt.transport.name)
        logger.info("task send row=%s %s: %s", row_id, result.key or "-", what)
        return result.outcome

    @huey.periodic_task(crontab(minute="*"), name="tick")
    def tick() -> None:
        now = rt.clock()
        minute = f"{now:%Y-%m-%d %H:%M}Z"
        try:
            if not rt.store.claim_tick(now.strftime("%Y-%m-%dT%H:%M"), now):
                logger.info("task tick %s: done already (here or by another consumer)", minute)
                return
            reports, decided = cycle.tick(rt, now)
        except Exception as exc:  # the next minute's tick tries again; the sweeper still sends
            logger.error("task tick %s failed: %s", minute, one_line(exc))
            logger.debug("task tick %s traceback", minute, exc_info=exc)
            return
        logger.info(
            "task tick %s: %s; %s",
            minute,
            _synced(reports),
            f"{plural(len(decided), 'email')} decided",
        )
        for row_id in decided:
            send(row_id)

    @huey.periodic_task(crontab(minute="*"), name="sweep")
    def sweep() -> None:
        try:
            ids = rt.store.due_ids(rt.clock() - SWEEP_GRACE)
        except Exception as exc:
            logger.error("task sweep failed: %s", one_line(exc))
            return
        if ids:
            logger.info("task sweep: %s re-enqueued", plural(len(ids), "row"))
        for row_id in ids:
            send(row_id)

    once = threading.Lock()

    @huey.on_startup()
    def at_start() -> None:
        # Every worker thread runs startup hooks; the first one starts a tick and a sweep
        # at once, so a fresh consumer does not wait for the next minute.
        if once.acquire(blocking=False):
            try:
                tick()
                sweep()
            except Exception as exc:  # the queue is down: the consumer says so, and retries
                logger.info(
                    "first tick not enqueued (%s); the scheduler enqueues one a minute",
                    one_line(exc),
                )

    return Tasks(tick=tick, send=send, sweep=sweep)


def _what(delivery: Delivery, transport: str) -> str:
    """What a send did, in words: ``sent via smtp``, ``skipped: unsubscribed``,
    ``dropped: more than one working day late: …``, ``retry: …``."""
    if delivery.outcome == "sent":
        return f"sent via {transport}"
    if delivery.outcome == "written":
        return "written"
    if delivery.outcome == "unsubscribed":
        return "skipped: unsubscribed"
    return f"{delivery.outcome}: {delivery.detail}"


def _synced(reports: list[SyncReport]) -> str:
    """``2 calendars read, 1 unchanged, 1 failed`` (only the outcomes there are)."""
    if not reports:
        return "no calendar due"
    counts = {o: sum(r.outcome == o for r in reports) for o in ("read", "unchanged", "failed")}
    said = [f"{n} {o}" for o, n in counts.items() if n]
    return f"{plural(len(reports), 'calendar')} synced ({', '.join(said)})"
