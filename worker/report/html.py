"""The HTML load report of ``steadyhand analyze --format html``.

:func:`render_html` turns the JSON dict of docs/metrics.md (exactly what ``--format json``
prints) into ONE self-contained HTML page: inline CSS, no script, no font, image or any
other resource from anywhere (a Content-Security-Policy of ``default-src 'none'`` makes
the browser refuse one even if a template override tried).

All the wording and number formatting happens here, in Python; ``templates/report.html.j2``
only lays out the plain dict :func:`view` builds. The template runs in Jinja2's immutable
sandbox with autoescape on and ``StrictUndefined``, so names, emails, time zones and team
names from the config are always escaped.

Decisions
---------
* **Columns** are the dates the people's days cover (normally every date of the period);
  a person without a figure for a date gets an empty "no data" cell.
* **Colour** grades ``meeting_load`` relative to ``max_meeting_load``: six steps, the two
  darkest above the limit. A day off has no load, so its colour grades its meeting minutes
  against a nominal 8-hour day. The colour is never the only signal: every cell prints its
  hours and its load (or "day off" / "away"), an overloaded cell has a "!" mark and a red
  outline, and its reasons are listed in words below the table.
* **Thresholds** are the ``overload:`` section (numbers, ``timedelta`` or ``"5m"``
  strings); a missing key is shown with its default (docs/metrics.md). An optional
  ``min_team_size`` key gives ``privacy.min_team_size`` for the note shown when no team
  figures are in the report.
* **No attendee data.** A person whose ``attendees`` is ``absent`` while meetings come
  from attendees (``meetings_from: attendees``) has meetings that were not counted: the
  page says so beside the name, shows their meeting hours as "–" (not counted) rather
  than 0, and never claims "No overloaded day" without saying for whom it is unknown.
  With ``meetings_from: busy`` the note says busy events were counted as meetings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from worker.core.wording import as_written as _g
from worker.core.wording import percent as _pct
from worker.core.wording import reason_text
from worker.resources import shipped

__all__ = ["TEMPLATE", "reason_text", "render_html", "view"]

TEMPLATE = "report.html.j2"

_DEFAULTS: dict[str, float] = {
    "max_meeting_load": 0.6,
    "max_chain_minutes": 180,
    "back_to_back_gap": 5,
    "focus_min": 120,
    "min_focus_minutes": 60,
    "max_after_hours_minutes": 30,
}
_NOMINAL_DAY_MINUTES = 480.0  # grades the colour of meetings on a day off
_LEVELS = 5  # colour steps above "no meetings"
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*$")


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(shipped("templates"))),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(
    report: Mapping[str, Any],
    *,
    generated_at: str,
    thresholds: Mapping[str, Any],
    names: Mapping[str, str] | None = None,
    side_by_side: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report page for ``report`` (the JSON dict of docs/metrics.md) as one HTML string.

    ``generated_at`` is printed as given; ``thresholds`` is the overload policy shown in
    the legend and quoted in the reasons; ``names`` maps an email to a display name;
    ``side_by_side`` is the "Load and pulse" section (:func:`worker.report.sentiment.section`).
    """
    context = view(report, generated_at=generated_at, thresholds=thresholds, names=names)
    context["side_by_side"] = list(side_by_side)
    return _environment().get_template(TEMPLATE).render(**context)


# -- the view model ----------------------------------------------------------------------


def view(
    report: Mapping[str, Any],
    *,
    generated_at: str,
    thresholds: Mapping[str, Any],
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The plain dict the template sees: every figure already worded and formatted."""
    names = names or {}
    limits = _limits(thresholds)
    people: Sequence[Mapping[str, Any]] = report.get("people") or []
    period = report.get("period") or {}
    dates = _columns(people, period)

    def name_of(email: str) -> str:
        return names.get(email) or email

    rows: list[dict[str, Any]] = []
    overloaded: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for person in people:
        email = str(person["email"])
        by_date = {str(day["date"]): day for day in person.get("days") or []}
        note = _source_note(person, name_of(email))
        uncounted = note is not None and note["uncounted"]
        if note is not None:
            notes.append(note)
        cells = []
        for d in dates:
            day = by_date.get(d.isoformat())
            cell = _cell(day, d, name_of(email), limits, uncounted=uncounted)
            cells.append(cell)
            if day is not None and day.get("overloaded"):
                overloaded.append(
                    {
                        "name": name_of(email),
                        "email": email,
                        "date": _long_date(d),
                        "iso": d.isoformat(),
                        "reasons": [_split_reason(r) for r in cell["reasons"]],
                    }
                )
        week = person.get("week") or {}
        days = list(by_date.values())
        week_minutes = float(
            week.get("meeting_minutes", sum(float(x["meeting_minutes"]) for x in days))
        )
        rows.append(
            {
                "name": name_of(email),
                "email": email,
                "show_email": name_of(email) != email,
                "timezone": str(person.get("timezone") or ""),
                "badge": note["badge"] if note else "",
                "cells": cells,
            }
        )
        summary.append(
            {
                "name": name_of(email),
                "email": email,
                "minutes": 0.0 if uncounted else week_minutes,
                "hours": _hours(week_minutes),
                "counted": not uncounted,
                "overloaded_days": int(
                    week.get("overloaded_days", sum(1 for x in days if x.get("overloaded")))
                ),
                "away_days": sum(1 for x in days if x.get("away")),
                "days_off": sum(
                    1 for x in days if not x.get("away") and not float(x["working_minutes"])
                ),
                "days": len(days),
            }
        )
    top = max((s["minutes"] for s in summary), default=0.0)
    for s in summary:
        s["bar"] = f"{100 * s['minutes'] / top:.0f}" if top > 0 else "0"

    teams = [_team(team, name_of) for team in report.get("teams") or []]
    period_label = _period_label(period, dates)
    return {
        "title": f"Calendar load, {period_label}",
        "period_label": period_label,
        "generated_at": generated_at,
        "columns": [
            {
                "iso": d.isoformat(),
                "weekday": _WEEKDAYS[d.weekday()],
                "label": f"{d.day} {_MONTHS[d.month - 1]}",
                "weekend": d.weekday() >= 5,
            }
            for d in dates
        ],
        "rows": rows,
        "summary": summary,
        "overloaded": overloaded,
        "overloaded_by_person": _group(overloaded),
        "overloaded_people": len({o["email"] for o in overloaded}),
        "teams": teams,
        "notes": notes,
        "uncounted": [n for n in notes if n["uncounted"]],
        "min_team_size": limits["min_team_size"],
        "legend": _legend(limits),
        "limit_pct": _pct(float(limits["max_meeting_load"])),
        "scale": _scale(limits),
    }


def _source_note(person: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """What the page says about where a person's meetings come from, or None when they
    come from attendee data as usual (docs/metrics.md, "No attendee data")."""
    absent = person.get("attendees") == "absent"
    busy = person.get("meetings_from") == "busy"
    if not absent and not busy:
        return None
    hours = _hours(sum(float(d["busy_minutes"]) for d in person.get("days") or []))
    if absent and not busy:
        badge = "no attendee data: meetings not counted"
        text = (
            f"{name}'s calendar has no attendee data (attendees: absent): no event in this "
            f"period names an attendee or organizer, so its {hours} h of busy events are not "
            "counted as meetings and its meeting figures are unknown, not zero. To count busy "
            "events as meetings, set meetings: busy on this person's calendar: (or on its "
            "account)."
        )
    elif absent:
        badge = "no attendee data: busy events counted as meetings"
        text = (
            f"{name}'s calendar has no attendee data (attendees: absent); its {hours} h of "
            "busy events are counted as meetings (meetings: busy)."
        )
    else:
        badge = "busy events counted as meetings"
        text = (
            f"{name}: every busy event counts as a meeting, with or without another person "
            "on it (meetings: busy)."
        )
    return {
        "name": name,
        "email": str(person["email"]),
        "badge": badge,
        "text": text,
        "uncounted": absent and not busy,
    }


def _group(overloaded: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Overloaded days grouped by person, in report order."""
    groups: dict[str, dict[str, Any]] = {}
    for item in overloaded:
        group = groups.setdefault(
            item["email"],
            {
                "name": item["name"],
                "email": item["email"],
                "show_email": item["name"] != item["email"],
                "days": [],
            },
        )
        group["days"].append(item)
    return list(groups.values())


def _limits(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    for key, default in _DEFAULTS.items():
        value = thresholds.get(key)
        limits[key] = default if value is None else _as_number(value, key)
    size = thresholds.get("min_team_size")
    limits["min_team_size"] = None if size is None else int(size)
    return limits


def _as_number(value: Any, key: str) -> float:
    """A number, a ``timedelta`` (in minutes) or a duration string like ``1h30m``."""
    if isinstance(value, timedelta):
        return value.total_seconds() / 60
    if isinstance(value, bool):
        raise TypeError(f"threshold {key} is not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            hours, minutes = match.groups()
            return float(hours or 0) * 60 + float(minutes or 0)
        return float(value)
    raise TypeError(f"threshold {key} is not a number: {value!r}")


def _columns(people: Iterable[Mapping[str, Any]], period: Mapping[str, Any]) -> list[date]:
    found = {date.fromisoformat(str(day["date"])) for p in people for day in p.get("days") or []}
    if not found and period.get("start") and period.get("end"):
        first = date.fromisoformat(str(period["start"]))
        last = date.fromisoformat(str(period["end"]))
        found = {first + timedelta(days=i) for i in range((last - first).days + 1)}
    return sorted(found)


def _cell(
    day: Mapping[str, Any] | None,
    d: date,
    name: str,
    limits: Mapping[str, Any],
    *,
    uncounted: bool = False,
) -> dict[str, Any]:
    when = _long_date(d)
    if day is None:
        return {
            "kind": "none",
            "iso": d.isoformat(),
            "hours": "–",
            "unit": False,
            "note": "no data",
            "level": 0,
            "overloaded": False,
            "reasons": [],
            "title": f"{name}, {when}: no figures",
        }
    minutes = float(day["meeting_minutes"])
    working = float(day["working_minutes"])
    load = day.get("meeting_load")
    away = bool(day.get("away"))
    overloaded = bool(day.get("overloaded"))
    reasons = [reason_text(code, day, limits) for code in day.get("reasons") or []]
    hours = _hours(minutes)
    if load is not None and working > 0:
        kind = "away" if away else "work"
        share = float(load) / float(limits["max_meeting_load"])
        level = _level(share, float(load) > 0 or minutes > 0)
        load_text = f"{_pct(float(load))} %"
        described = f"{hours} h of meetings, {load_text} of working time"
    else:
        kind = "away" if away else "off"
        level = _level(minutes / _NOMINAL_DAY_MINUTES / 0.6, minutes > 0)
        load_text = ""
        described = f"{hours} h of meetings on a day off"
    if uncounted:
        level, hours, load_text = 0, "–", "not counted"
        described = "meetings not counted (no attendee data)"
    note = {"away": "away", "off": "day off"}.get(kind, load_text)
    title = f"{name}, {when}: {described}"
    if away:
        title += "; away (out of office)"
    if overloaded:
        title += ". Overloaded: " + "; ".join(reasons)
    return {
        "kind": kind,
        "iso": d.isoformat(),
        "hours": hours,
        "unit": not uncounted,
        "note": note,
        "level": level,
        "overloaded": overloaded,
        "reasons": reasons,
        "title": title,
    }


def _level(share_of_limit: float, any_meeting: bool) -> int:
    """0 for no meeting, then 1..5: up to 1/3, 2/3 and 3/3 of the limit, then above it."""
    if not any_meeting:
        return 0
    for level, bound in enumerate((1 / 3, 2 / 3, 1.0, 4 / 3), start=1):
        if share_of_limit <= bound:
            return level
    return _LEVELS


def _scale(limits: Mapping[str, Any]) -> list[dict[str, Any]]:
    limit = float(limits["max_meeting_load"])
    bounds = [0.0, limit / 3, 2 * limit / 3, limit, 4 * limit / 3]
    steps = [{"level": 0, "label": "none", "over": False}]
    for level in range(1, _LEVELS):
        steps.append(
            {"level": level, "label": f"≤ {_pct(bounds[level])} %", "over": level > _LEVELS - 2}
        )
    steps.append({"level": _LEVELS, "label": f"> {_pct(bounds[-1])} %", "over": True})
    return steps


def _split_reason(text: str) -> dict[str, str]:
    code, _, words = text.partition(": ")
    return {"code": code, "words": words, "text": text}


def _legend(limits: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "code": "meeting_load",
            "text": f"more than {_pct(float(limits['max_meeting_load']))} % of working time "
            "in meetings",
            "setting": f"overload.max_meeting_load: {_g(float(limits['max_meeting_load']))}",
        },
        {
            "code": "back_to_back",
            "text": f"meetings back to back for more than {_g(limits['max_chain_minutes'])} "
            f"min (gaps of up to {_g(limits['back_to_back_gap'])} min do not break a run)",
            "setting": f"overload.max_chain_minutes: {_g(limits['max_chain_minutes'])}, "
            f"back_to_back_gap: {_g(limits['back_to_back_gap'])}m",
        },
        {
            "code": "no_focus",
            "text": f"less than {_g(limits['min_focus_minutes'])} min of focus time on a "
            f"working day (focus time: free stretches of at least "
            f"{_g(limits['focus_min'])} min inside working hours)",
            "setting": f"overload.min_focus_minutes: {_g(limits['min_focus_minutes'])}, "
            f"focus_min: {_g(limits['focus_min'])}m",
        },
        {
            "code": "after_hours",
            "text": f"more than {_g(limits['max_after_hours_minutes'])} min of meetings "
            "outside working hours",
            "setting": f"overload.max_after_hours_minutes: {_g(limits['max_after_hours_minutes'])}",
        },
        {
            "code": "double_booked",
            "text": "any minute covered by two meetings at once",
            "setting": "always on",
        },
    ]


def _team(team: Mapping[str, Any], name_of: Any) -> dict[str, Any]:
    ratio = team.get("max_over_median")
    above = [str(e) for e in team.get("above_1_5x_median") or []]
    return {
        "name": str(team["name"]),
        "median_hours": _hours(float(team["median_meeting_minutes"])),
        "max_over_median": "–" if ratio is None else f"{float(ratio):.1f}×",
        "above": [{"name": name_of(e), "email": e, "show_email": name_of(e) != e} for e in above],
    }


# -- formatting --------------------------------------------------------------------------


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f}"


def _long_date(d: date) -> str:
    return f"{_WEEKDAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def _period_label(period: Mapping[str, Any], dates: Sequence[date]) -> str:
    try:
        first = date.fromisoformat(str(period["start"]))
        last = date.fromisoformat(str(period["end"]))
    except (KeyError, ValueError):
        if not dates:
            return "no days"
        first, last = dates[0], dates[-1]
    if first == last:
        return _long_date(first)[4:]
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {_MONTHS[last.month - 1]} {last.year}"
    if first.year == last.year:
        return f"{first.day} {_MONTHS[first.month - 1]} – {_long_date(last)[4:]}"
    return f"{_long_date(first)[4:]} – {_long_date(last)[4:]}"
