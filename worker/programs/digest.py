"""The weekly team load for a leader: an email-safe heat map of meeting hours per person
and day, withheld for teams below ``privacy.min_team_size``.

Pure: no I/O, no clock (every date arrives as an argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from worker.core import schedule
from worker.core.model import Person
from worker.core.wording import one_line, reason_figures
from worker.programs.base import WINDOW, hours, short_day, who

NAME: Final = "digest"
PRIORITY: Final = 5
PREVIEW: Final = True


def _period_label(start: date, end: date) -> str:
    if start == end:
        return f"{start.day} {start:%B %Y}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {end:%B %Y}"
    if start.year == end.year:
        return f"{start.day} {start:%B} – {end.day} {end:%B %Y}"
    return f"{start.day} {start:%B %Y} – {end.day} {end:%B %Y}"


#: Heat-map colours by meeting load (share of working time in meetings): upper bound,
#: background, text colour, legend label. Sequential blues that print and read in
#: grey; an overloaded cell also carries "!" so colour is never the only signal.
HEAT = (
    (0.2, "#eef4fb", "#1a1a1a", "under 20 %"),
    (0.4, "#c6dbef", "#1a1a1a", "20–40 %"),
    (0.6, "#6baed6", "#1a1a1a", "40–60 %"),
    (0.8, "#2171b5", "#ffffff", "60–80 %"),
    (float("inf"), "#08306b", "#ffffff", "80 % or more"),
)
AWAY = ("#f2f2f2", "#777777")
NAME_WIDTH = 24  # the text table's name column
DAY_OFF = ("#ffffff", "#777777")


def _heat(load: float) -> tuple[str, str]:
    for bound, bg, fg, _ in HEAT:
        if load < bound:
            return bg, fg
    return HEAT[-1][1], HEAT[-1][2]  # pragma: no cover - the last bound is infinite


def _cell(day: Mapping[str, Any]) -> dict[str, Any]:
    hours = day["meeting_minutes"] / 60
    text = f"{hours:.1f}" if hours else "·"
    if day["away"]:
        bg, fg = AWAY
        return {"text": "away", "bg": bg, "fg": fg, "overloaded": False, "title": "away"}
    load = day["meeting_load"]
    if load is None:
        bg, fg = DAY_OFF
        title = "day off" + (f", {hours:.1f} h of meetings" if hours else "")
    else:
        bg, fg = _heat(load)
        title = f"{hours:.1f} h of meetings, {round(load * 100)} % of working time"
    overloaded = bool(day["overloaded"])
    if overloaded:
        title = "overloaded: " + "; ".join(reason_figures(day))
    return {"text": text, "bg": bg, "fg": fg, "overloaded": overloaded, "title": title}


def context(
    leader: Person,
    team: str,
    report: Mapping[str, Any],
    names: Mapping[str, str],
    min_team_size: int,
) -> dict[str, Any]:
    """The weekly team load for ``leader``: a heat map of meeting hours per person and day.

    ``report`` is the load report (docs/metrics.md) for the team's week (``report.build``).
    Team figures
    appear only when the report carries a spread for ``team`` (``report.build`` leaves
    out teams below ``min_team_size`` people) and it lists at least ``min_team_size``
    people; otherwise ``withheld`` is true, ``rows`` and everything per person are empty,
    and ``privacy_line`` explains the threshold.

    ``team`` is the team's name as in the YAML (an empty one reads "your team").
    Columns are the period's weekdays, plus weekend days on which anyone met. Each cell
    is ``{text, bg, fg, overloaded, title}``: hours of meetings (``·`` for none, ``away``),
    its colours by meeting load (:data:`HEAT`), and the reasons when overloaded.
    """
    start = date.fromisoformat(report["period"]["start"])
    end = date.fromisoformat(report["period"]["end"])
    team_name = one_line(team) or "your team"
    spread = next((t for t in report["teams"] if t["name"] == team), None)
    people = list(report["people"])
    withheld = spread is None or len(people) < min_team_size
    base: dict[str, Any] = {
        **who(leader),
        "team": team_name,
        "period_label": _period_label(start, end),
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "min_team_size": min_team_size,
        "withheld": withheld,
        "privacy_line": (
            f"Team figures are shared only for teams of at least {min_team_size} people, "
            f"so that no one's calendar can be singled out. This digest shows no per-person "
            f"figures for {team_name}, which is below that threshold."
        )
        if withheld
        else None,
        "columns": [],
        "rows": [],
        "legend": [{"label": label, "bg": bg, "fg": fg} for _, bg, fg, label in HEAT],
        "overloaded_lines": [],
        "overloaded_days": 0,
        "summary": None,
        "name_width": 0,
    }
    if withheld:
        return base
    dates = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    by_person = {p["email"]: {d["date"]: d for d in p["days"]} for p in people}
    shown = [
        d
        for d in dates
        if d.weekday() < 5
        or any((by_person[e].get(d.isoformat()) or {}).get("meeting_minutes", 0) for e in by_person)
    ]
    rows = []
    lines = []
    for person in people:
        email = person["email"]
        name = one_line(names.get(email, "")) or email
        cells = []
        for d in shown:
            day = by_person[email].get(d.isoformat())
            if day is None:
                cells.append(
                    {
                        "text": "–",
                        "bg": DAY_OFF[0],
                        "fg": DAY_OFF[1],
                        "overloaded": False,
                        "title": "no data",
                    }
                )
                continue
            cell = _cell(day)
            cells.append(cell)
            if cell["overloaded"]:
                lines.append(f"{name}, {short_day(d)}: " + ", ".join(reason_figures(day)))
        rows.append(
            {
                "name": name,
                "short_name": name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…",
                "timezone": person["timezone"],
                "cells": cells,
                "total_hours": hours(person["week"]["meeting_minutes"]),
                "overloaded_days": int(person["week"]["overloaded_days"]),
            }
        )
    assert spread is not None
    ratio = spread["max_over_median"]
    base.update(
        columns=[{"label": f"{d:%a} {d.day}", "date": d.isoformat()} for d in shown],
        rows=rows,
        overloaded_lines=lines,
        overloaded_days=sum(r["overloaded_days"] for r in rows),
        name_width=max(len(r["short_name"]) for r in rows) if rows else 0,
        summary={
            "median_hours": hours(spread["median_meeting_minutes"]),
            "max_over_median": None if ratio is None else round(ratio, 1),
            "above": [one_line(names.get(e, "")) or e for e in spread["above_1_5x_median"]],
        },
    )
    return base


def due(
    leader: Person, weekday: int, at: time, now: datetime, away: Set[date]
) -> schedule.Due | None:
    """The leader's next weekly digest (``emails.digest.at``: ``weekday`` at ``at``)."""
    return schedule.weekly(NAME, leader, weekday, at, now, away, WINDOW)


def empty_week(monday: date) -> dict[str, Any]:
    """The report of a leader who leads no team: the week, nobody in it."""
    period = {"start": monday.isoformat(), "end": (monday + timedelta(days=6)).isoformat()}
    return {"period": period, "people": [], "teams": []}
