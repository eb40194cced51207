"""The ``protect:`` rules of the settings, typed for the planner (:mod:`worker.core.planning`)."""

from __future__ import annotations

from datetime import time, timedelta

from worker.config import ProtectRule, Settings
from worker.core import planning
from worker.core.model import Transparency

#: Where lunch goes when its rule names no window.
LUNCH_WINDOW = (time(11, 30), time(14, 0))


def rules_for(settings: Settings, email: str) -> list[planning.Rule]:
    """The ``protect:`` rules that apply to ``email``, typed for the planner."""
    out = []
    for index, rule in enumerate(settings.protect):
        if email not in settings.audience(rule.for_):
            continue
        out.append(_rule(index, rule))
    return out


def _rule(index: int, r: ProtectRule) -> planning.Rule:
    window = days = None
    if r.window is not None:
        window, days = r.window.time, r.window.days
    elif r.rule == "lunch":
        window = LUNCH_WINDOW
    counts = {k: v for k, v in (("week", r.per_week), ("day", r.per_day)) if isinstance(v, int)}
    goals = {
        k: v for k, v in (("week", r.per_week), ("day", r.per_day)) if isinstance(v, timedelta)
    }
    return planning.Rule(
        kind=r.rule,
        index=index,
        duration=r.max_duration or r.duration or timedelta(0),  # 0: the kind's default
        title=r.title or "",
        transparency=Transparency.FREE if r.show_as == "free" else Transparency.BUSY,
        defend=r.defend,
        per_week=counts.get("week"),
        per_day=counts.get("day"),
        goal_per_day=goals.get("day"),
        goal_per_week=goals.get("week"),
        min_block=r.min_block or r.min_duration,
        days=days,
        window=window,
        earliest=r.earliest,
        latest=r.latest,
        after_chain=r.after_chain,
        after_overloaded_day=r.after_overloaded_day,
    )
