"""The report's "Load and pulse" section: per team and ISO week, meeting hours and
overloaded days beside each pulse question's mean and response rate.

The pulse figures come in from the caller (the store is above this layer), as
:class:`PulseFigure` values: who answered (not what) and how many gave each score. Every
figure goes through :func:`worker.core.privacy.shown` with all the others of its question
and period, so the report shows nothing the dashboard would withhold. Load figures are
shown only for teams of at least ``privacy.min_team_size`` people, as the team spread is.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from worker.core import privacy, schedule


@dataclass(frozen=True, slots=True)
class PulseFigure:
    question: str
    period: str  # an ISO week, 2026-W45
    respondents: frozenset[str]
    histogram: Mapping[int, int]


week_of = schedule.iso_week


def _week(day: Mapping[str, Any]) -> str:
    return week_of(date.fromisoformat(str(day["date"])))


def section(
    report: Mapping[str, Any],
    teams: Sequence[tuple[str, Sequence[str]]],
    pulse: Mapping[str, Sequence[PulseFigure]],
    questions: Sequence[tuple[str, str]],
    min_size: int,
) -> list[dict[str, Any]]:
    """One entry per team: its weeks, each with load and the pulse cells (in words)."""
    days_of: dict[str, list[Mapping[str, Any]]] = {
        str(p["email"]): list(p.get("days") or []) for p in report.get("people") or []
    }
    weeks = sorted({_week(d) for ds in days_of.values() for d in ds})
    figures = [
        privacy.Figure(name, f.question, f.period, f.respondents)
        for name, found in pulse.items()
        for f in found
    ]
    decided = privacy.decided(figures, min_size)
    counts = {(name, f.question, f.period): f for name, found in pulse.items() for f in found}
    out = []
    for name, members in teams:
        big = len(members) >= min_size
        rows = []
        for week in weeks:
            hours, overloaded = [], 0
            for m in members:
                mine = [
                    d
                    for d in days_of.get(m, [])
                    if week_of(date.fromisoformat(str(d["date"]))) == week
                ]
                hours.append(sum(float(d["meeting_minutes"]) for d in mine) / 60)
                overloaded += sum(1 for d in mine if d.get("overloaded"))
            cells = []
            for qid, text in questions:
                figure, decision = counts.get((name, qid, week)), decided.get((name, qid, week))
                if figure is None or decision is None:
                    cells.append({"question": text, "text": "No answers"})
                elif not decision.shown:
                    cells.append({"question": text, "text": decision.reason})
                else:
                    total = sum(figure.histogram.values())
                    mean = sum(s * n for s, n in figure.histogram.items()) / total
                    cells.append(
                        {
                            "question": text,
                            "text": f"{mean:.1f} ({len(figure.respondents)} of "
                            f"{len(members)} answered)",
                        }
                    )
            rows.append(
                {
                    "week": week,
                    "hours": f"{statistics.median(hours):.1f} h" if big and hours else "–",
                    "overloaded": str(overloaded) if big else "–",
                    "pulse": cells,
                }
            )
        out.append({"name": name, "load_shown": big, "rows": rows})
    return out
