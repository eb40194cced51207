"""The week roll-up of day metrics, and how unevenly a team's meeting minutes are spread.

* **Team spread.** The median is ``statistics.median`` (mean of the two middle values
  for an even count); with no member it is 0. ``max_over_median`` is None when the
  median is 0. ``above_1_5x_median`` lists members strictly above 1.5 x the median,
  sorted; with a median of 0 that is everyone with any meeting minute.

Pure: imports only the standard library and :mod:`worker.core`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.core.analysis import DayMetrics


@dataclass(frozen=True, slots=True)
class WeekMetrics:
    """Sums over a run of days (usually a week) and how many of them were overloaded."""

    meeting_minutes: float
    busy_minutes: float
    after_hours_meeting_minutes: float
    focus_minutes: float
    overloaded_days: int
    days: tuple[DayMetrics, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready sums and ``overloaded_days`` (the days are listed separately)."""
        return {
            "meeting_minutes": self.meeting_minutes,
            "busy_minutes": self.busy_minutes,
            "after_hours_meeting_minutes": self.after_hours_meeting_minutes,
            "focus_minutes": self.focus_minutes,
            "overloaded_days": self.overloaded_days,
        }


@dataclass(frozen=True, slots=True)
class TeamSpread:
    """How unevenly a team's weekly meeting minutes are spread."""

    name: str
    median_meeting_minutes: float
    max_over_median: float | None
    above_1_5x_median: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "median_meeting_minutes": self.median_meeting_minutes,
            "max_over_median": self.max_over_median,
            "above_1_5x_median": list(self.above_1_5x_median),
        }


def roll_up(days: Sequence[DayMetrics]) -> WeekMetrics:
    """Sum a run of days; ``overloaded_days`` counts the days with a reason."""
    return WeekMetrics(
        meeting_minutes=sum(d.meeting_minutes for d in days),
        busy_minutes=sum(d.busy_minutes for d in days),
        after_hours_meeting_minutes=sum(d.after_hours_meeting_minutes for d in days),
        focus_minutes=sum(d.focus_minutes for d in days),
        overloaded_days=sum(1 for d in days if d.overloaded),
        days=tuple(days),
    )


def team_spread(name: str, weekly_meeting_minutes: Mapping[str, float]) -> TeamSpread:
    """Median weekly meeting minutes, max / median, and who is above 1.5 x the median."""
    values = list(weekly_meeting_minutes.values())
    median = float(statistics.median(values)) if values else 0.0
    ratio = max(values) / median if median else None
    above = tuple(sorted(m for m, v in weekly_meeting_minutes.items() if v > 1.5 * median))
    return TeamSpread(name, median, ratio, above)
