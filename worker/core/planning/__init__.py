"""Protected blocks: events + rules -> desired blocks; reconcile -> block changes
(docs/architecture.md, *Protected blocks*). The planner lives in
:mod:`worker.core.planning.place`; this package names what callers use."""

from worker.core.planning.place import (
    DEFAULT_DURATIONS,
    DEFAULT_MIN_BLOCK,
    DEFAULT_TITLES,
    KINDS,
    RECOVERY_REACH,
    Plan,
    Rule,
    Unprotectable,
    block_id,
    horizon_end,
    plan,
    reconcile,
)

__all__ = [
    "DEFAULT_DURATIONS",
    "DEFAULT_MIN_BLOCK",
    "DEFAULT_TITLES",
    "KINDS",
    "RECOVERY_REACH",
    "Plan",
    "Rule",
    "Unprotectable",
    "block_id",
    "horizon_end",
    "plan",
    "reconcile",
]
