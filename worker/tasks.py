"""Huey tasks: the per-minute tick, the send task and the sweeper. A few lines each.

Tasks carry only outbox row ids; the store is the source of truth (DESIGN §6). Huey
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

from worker import services

logger = logging.getLogger(__name__)

#: A pending row is the sweeper's once it is this late (the tick enqueues new ones itself).
SWEEP_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Tasks:
    tick: Any
    send: Any
    sweep: Any


def register(huey: Huey, rt: services.Runtime) -> Tasks:
    """Attach steadyhand's tasks to ``huey``, bound to the runtime ``rt``."""

    @huey.task(name="send")
    def send(row_id: int) -> str:
        try:
            result = services.deliver(rt, row_id, rt.clock())
        except Exception as exc:  # deliver records a row's own failure; this is the store's
            # The row's lease expires and the sweeper re-enqueues it: never claimed for good.
            logger.error("task send row=%s failed: %s", row_id, _line(exc))
            logger.debug("task send row=%s traceback", row_id, exc_info=exc)
            return "error"
        logger.info("task send row=%s: %s", row_id, result.outcome)
        return result.outcome

    @huey.periodic_task(crontab(minute="*"), name="tick")
    def tick() -> None:
        now = rt.clock()
        try:
            if not rt.store.claim_tick(now.strftime("%Y-%m-%dT%H:%M"), now):
                logger.info("task tick %s: another consumer has this minute", now)
                return
            reports, decided = services.tick(rt, now)
        except Exception as exc:  # the next minute's tick tries again; the sweeper still sends
            logger.error("task tick %s failed: %s", now, _line(exc))
            logger.debug("task tick %s traceback", now, exc_info=exc)
            return
        logger.info("task tick %s: %d synced, %d decided", now, len(reports), len(decided))
        for row_id in decided:
            send(row_id)

    @huey.periodic_task(crontab(minute="*"), name="sweep")
    def sweep() -> None:
        try:
            ids = rt.store.due_ids(rt.clock() - SWEEP_GRACE)
        except Exception as exc:
            logger.error("task sweep failed: %s", _line(exc))
            return
        logger.info("task sweep: %d rows re-enqueued", len(ids))
        for row_id in ids:
            send(row_id)

    once = threading.Lock()

    @huey.on_startup()
    def at_start() -> None:
        # Every worker thread runs startup hooks; the first one starts a tick and a sweep
        # at once, so a fresh consumer does not wait for the next minute.
        if once.acquire(blocking=False):
            tick()
            sweep()

    return Tasks(tick=tick, send=send, sweep=sweep)


def _line(exc: Exception) -> str:
    """One line about ``exc``, for the log (no traceback: that is at DEBUG)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
