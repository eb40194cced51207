"""The load report: the JSON of docs/metrics.md, and its table and CSV forms.

:func:`build` turns per-person day metrics into the report dict (exactly the names of
docs/metrics.md); :func:`to_json`, :func:`to_csv` and :func:`table` present it. The HTML
page is :mod:`worker.report.html`. Nothing here reads the store or the clock.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from rich.console import Group
from rich.text import Text

from worker.core import analysis
from worker.core.errors import Problem, UserError
from worker.core.model import Person, Team
from worker.report import tables as report_table

#: Our per-day figures in the CSV, in minutes as in the JSON.
OUR_FIGURES = (
    "working_minutes",
    "meeting_minutes",
    "busy_minutes",
    "meeting_load",
    "after_hours_meeting_minutes",
    "double_booked_minutes",
    "longest_chain_minutes",
    "focus_minutes",
    "fragmented_minutes",
)
#: CSV columns: Viva Insights' names where one exists, then ours.
CSV_COLUMNS = (
    "PersonId",
    "MetricDate",
    "TimeZone",
    "Meeting_hours",
    "After_hours_meeting_hours",
    "Conflicting_meeting_hours",
    "Uninterrupted_hours",
    *OUR_FIGURES,
    "away",
    "overloaded",
    "reasons",
    "attendees",
    "meetings_from",
)


def build(
    start: date,
    end: date,
    people: Sequence[tuple[Person, Sequence[analysis.DayMetrics]]],
    teams: Sequence[Team],
    min_team_size: int,
    *,
    sources: Mapping[str, analysis.MeetingSource] | None = None,
) -> dict[str, Any]:
    """The report of docs/metrics.md for ``start``..``end`` (inclusive).

    ``week`` of each person rolls up the whole period (a week by default). A team's
    spread covers its leader and members, and appears only for a team of at least
    ``min_team_size`` people all of whom are in ``people``. ``sources`` gives each
    person's ``attendees`` and ``meetings_from`` (default: present, attendees).
    """
    rolled = {p.email: analysis.roll_up(days) for p, days in people}
    known = sources or {}
    out_people = [
        {
            "email": p.email,
            "timezone": p.timezone,
            **known.get(p.email, _WITH_ATTENDEES).as_dict(),
            "days": [d.as_dict() for d in days],
            "week": {
                "meeting_minutes": rolled[p.email].meeting_minutes,
                "overloaded_days": rolled[p.email].overloaded_days,
            },
        }
        for p, days in people
    ]
    out_teams = []
    for team in teams:
        members = team.everyone
        if len(members) < min_team_size or any(m not in rolled for m in members):
            continue
        spread = analysis.team_spread(team.name, {m: rolled[m].meeting_minutes for m in members})
        out_teams.append(
            {
                "name": spread.name,
                "median_meeting_minutes": spread.median_meeting_minutes,
                "max_over_median": spread.max_over_median,
                "above_1_5x_median": list(spread.above_1_5x_median),
            }
        )
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "people": out_people,
        "teams": out_teams,
    }


_WITH_ATTENDEES = analysis.MeetingSource("present", "attendees")


def notes(report: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """One line per person whose meeting figures need a word of explanation: a calendar
    without attendee data (``attendees: absent``), or meetings counted from busy events
    (``meetings_from: busy``). Printed below the table; the HTML page says the same."""
    lines = []
    for person in report["people"]:
        attendees = person.get("attendees", "present")
        busy = person.get("meetings_from", "attendees") == "busy"
        if attendees != "absent" and not busy:
            continue
        name = names.get(person["email"], person["email"])
        hours = sum(float(d["busy_minutes"]) for d in person["days"]) / 60
        if attendees == "absent" and not busy:
            lines.append(
                f"Note: {name}'s calendar has no attendee data (attendees: absent): no event "
                f"in this period names an attendee or organizer, so its {hours:.1f} h of busy "
                "events are not counted as meetings. To count them, set `meetings: busy` on "
                "this person's `calendar:` (or on its account); see docs/metrics.md."
            )
        elif attendees == "absent":
            lines.append(
                f"Note: {name}'s calendar has no attendee data (attendees: absent); its "
                f"{hours:.1f} h of busy events are counted as meetings (meetings: busy)."
            )
        else:
            lines.append(
                f"Note: {name}: every busy event counts as a meeting, with or without "
                "another person on it (meetings: busy)."
            )
    return lines


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def to_csv(report: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for person in report["people"]:
        for d in person["days"]:
            writer.writerow(
                [
                    person["email"],
                    d["date"],
                    person["timezone"],
                    _h(d["meeting_minutes"]),
                    _h(d["after_hours_meeting_minutes"]),
                    _h(d["double_booked_minutes"]),
                    _h(d["focus_minutes"]),
                    *(_n(d[k]) for k in OUR_FIGURES),
                    str(d["away"]).lower(),
                    str(d["overloaded"]).lower(),
                    ";".join(d["reasons"]),
                    person.get("attendees", "present"),
                    person.get("meetings_from", "attendees"),
                ]
            )
    return buffer.getvalue()


def _h(minutes: float) -> str:
    return f"{minutes / 60:.4g}"


def _n(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}"


#: Each reason of an overloaded day with its figure (the emails word them the same way).
reason_words = report_table.reason_words


def table(
    report: Mapping[str, Any], names: Mapping[str, str], title: str, by: str | None = None
) -> Group:
    """The load table a leader reads at a glance, in the layout ``by`` (``day``,
    ``week``, or ``None`` for the one that suits the period and the width; see
    :mod:`worker.report.tables`), then the team figures."""
    parts: list[Any] = [Text(title, style="bold"), report_table.LoadTable(report, names, by)]
    for team in report["teams"]:
        ratio = team["max_over_median"]
        above = ", ".join(names.get(e, e) for e in team["above_1_5x_median"]) or "nobody"
        parts.append(
            Text(
                f"Team {team['name']}: median {team['median_meeting_minutes'] / 60:.1f} h of "
                f"meetings, the most loaded at {ratio:.1f}× the median; above 1.5× the "
                f"median: {above}"
                if ratio is not None
                else f"Team {team['name']}: no meetings in the period"
            )
        )
    return Group(*parts)


def resolve_period(
    today: date, start: str | None, end: str | None, week: str | None
) -> tuple[date, date]:
    """``--from``/``--to`` (inclusive), or ``--week 2026-W48``, or the week of ``today``."""
    if week and (start or end):
        raise UserError(Problem("give either --week or --from/--to, not both"))
    if week:
        try:
            year, _, number = week.upper().partition("-W")
            first = date.fromisocalendar(int(year), int(number), 1)
        except ValueError:
            raise UserError(
                Problem(f"--week {week!r} is not an ISO week", "write it like 2026-W48")
            ) from None
        return first, first + timedelta(days=6)
    if start or end:
        if not (start and end):
            raise UserError(Problem("--from and --to go together", "give both dates"))
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise UserError(Problem(f"{exc}", "write dates like 2026-11-23")) from None
        if last < first:
            raise UserError(Problem(f"--to {end} is before --from {start}", "swap them"))
        if (last - first).days > 366:
            raise UserError(Problem("the period is longer than a year", "analyse a shorter one"))
        return first, last
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=6)
