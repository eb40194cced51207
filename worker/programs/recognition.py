"""The weekly recognition nudge to a leader: concrete signals per member and whom to
thank for what.

Pure: no I/O, no clock (every date arrives as an argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import date, datetime, time
from typing import Any, Final

from worker.core import schedule
from worker.core.analysis import DayMetrics, Policy, roll_up
from worker.core.model import Person
from worker.core.wording import display_name, first_name, one_line, plural
from worker.programs.base import MAX_SUGGESTIONS, WINDOW, hours, who

NAME: Final = "recognition"
PRIORITY: Final = 4
PREVIEW: Final = True


def context(
    leader: Person,
    week_label: str,
    members: Sequence[tuple[Person, Sequence[DayMetrics]]],
    *,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The weekly recognition nudge to ``leader``: concrete signals per member.

    Per member (in the order given; the email does not rank people): meeting hours,
    overloaded days, days without focus time (the ``no_focus`` reason) and the focus
    minutes those days fell short of ``policy.min_focus_minutes`` (default policy unless
    given), and meeting minutes outside working hours. Highlights name who carried the
    heaviest load (most meeting hours), who lost the most focus time and who worked
    after hours; ``suggestions`` turns them into one to three short lines.
    """
    min_focus = (policy or Policy()).min_focus_minutes
    rows: list[dict[str, Any]] = []
    for person, days in members:
        week = roll_up(days)
        no_focus = [d for d in days if "no_focus" in d.reasons]
        rows.append(
            {
                "name": display_name(person),
                "first_name": first_name(person),
                "email": person.email,
                "meeting_minutes": week.meeting_minutes,
                "meeting_hours": hours(week.meeting_minutes),
                "overloaded_days": week.overloaded_days,
                "no_focus_days": len(no_focus),
                "focus_hours": hours(week.focus_minutes),
                "focus_lost_minutes": round(
                    sum(max(0.0, min_focus - d.focus_minutes) for d in no_focus)
                ),
                "after_hours_minutes": round(week.after_hours_meeting_minutes),
                "away_days": sum(1 for d in days if d.away),
            }
        )
    heaviest = max(
        (r for r in rows if r["meeting_minutes"] > 0),
        key=lambda r: (r["meeting_minutes"], r["overloaded_days"]),
        default=None,
    )
    focus = max((r for r in rows if r["no_focus_days"] > 0), key=_focus_key, default=None)
    after = sorted(
        (r for r in rows if r["after_hours_minutes"] > 0),
        key=lambda r: -int(r["after_hours_minutes"]),
    )
    suggestions: list[str] = []
    named: set[str] = set()  # one line per person: their signals are combined
    if heaviest is not None:
        load = [f"{heaviest['meeting_hours']} h of meetings"]
        if heaviest["overloaded_days"]:
            load.append(plural(heaviest["overloaded_days"], "overloaded day"))
        if heaviest["no_focus_days"]:
            load.append(f"{plural(heaviest['no_focus_days'], 'day')} without focus time")
        suggestions.append(
            f"Recognise {heaviest['first_name']} for carrying the heaviest load: {', '.join(load)}."
        )
        named.add(heaviest["email"])
    focus_other = next(
        (r for r in sorted(rows, key=_focus_key, reverse=True) if r["email"] not in named), None
    )
    if focus_other is not None and focus_other["no_focus_days"] > 0:
        suggestions.append(
            f"Thank {focus_other['first_name']} for keeping things moving with little room "
            f"to think: {plural(focus_other['no_focus_days'], 'working day')} without "
            "focus time. Ask what could come off their calendar."
        )
        named.add(focus_other["email"])
    after_other = next((r for r in after if r["email"] not in named), None)
    if after_other is not None:
        suggestions.append(
            f"Acknowledge the {after_other['after_hours_minutes']} min of meetings "
            f"{after_other['first_name']} took outside working hours, and check it is not "
            "becoming a habit."
        )
    return {
        **who(leader),
        "week_label": one_line(week_label),
        "members": rows,
        "heaviest": _pick(heaviest),
        "most_focus_lost": _pick(focus),
        "after_hours": [{"name": r["name"], "minutes": r["after_hours_minutes"]} for r in after],
        "suggestions": suggestions[:MAX_SUGGESTIONS],
        "min_focus_minutes": round(min_focus),
    }


def _focus_key(row: Mapping[str, Any]) -> tuple[int, int]:
    return int(row["no_focus_days"]), int(row["focus_lost_minutes"])


def _pick(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else dict(row)


def due(
    leader: Person, weekday: int, at: time, now: datetime, away: Set[date]
) -> schedule.Due | None:
    """The leader's next weekly nudge (``emails.recognition.at``: ``weekday`` at ``at``)."""
    return schedule.weekly(NAME, leader, weekday, at, now, away, WINDOW)
