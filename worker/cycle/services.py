"""The old orchestration module's names, kept importable while callers move to the
modules that now hold them: :mod:`worker.cycle.runtime`, :mod:`~worker.cycle.figures`,
:mod:`~worker.cycle.deliver`, :mod:`~worker.cycle.decide`, :mod:`~worker.cycle.run` and
:mod:`~worker.cycle.sync`. New code imports from those; nothing is defined here but
:func:`decide_emails`.
"""

from __future__ import annotations

from datetime import datetime

from worker.cycle import decide
from worker.cycle.decide import Upcoming, reflection_context
from worker.cycle.deliver import (
    CLAIMER,
    LEASE,
    MAX_ATTEMPTS,
    NOT_SENT,
    NOT_TRANSIENT,
    RETRY_BASE,
    RETRY_CAP,
    Delivery,
    deliver,
)
from worker.cycle.figures import ensure_synced, load_report
from worker.cycle.run import CycleReport, run_cycle, tick
from worker.cycle.runtime import (
    LIMITED_KINDS,
    Runtime,
    build_transport,
    day_metrics,
    person_events,
    policy,
    select,
)
from worker.cycle.sync import SyncReport, sync, sync_window

__all__ = [
    "CLAIMER",
    "LEASE",
    "LIMITED_KINDS",
    "MAX_ATTEMPTS",
    "NOT_SENT",
    "NOT_TRANSIENT",
    "RETRY_BASE",
    "RETRY_CAP",
    "CycleReport",
    "Delivery",
    "Runtime",
    "SyncReport",
    "Upcoming",
    "build_transport",
    "day_metrics",
    "decide_emails",
    "deliver",
    "ensure_synced",
    "load_report",
    "person_events",
    "policy",
    "reflection_context",
    "run_cycle",
    "select",
    "sync",
    "sync_window",
    "tick",
]


def decide_emails(rt: Runtime, now: datetime) -> list[int]:
    """Write an outbox row for every send that is due and not yet decided; return new ids
    (the programs and their rules are in :mod:`worker.cycle.decide`)."""
    return decide.decide(rt, now)
