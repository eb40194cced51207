"""The email programs' contexts: plain dicts of the values each template pair may use.

Pure: imports only the standard library, :mod:`worker.core.model`, :mod:`worker.core.analysis` and
:mod:`worker.report`; no I/O, no clock (every date arrives as an argument). Every
function returns a dict of plain ``str``/``int``/``float``/``bool``/``None``/``list``/
``dict`` values, never a model object, settings or a client (docs/privacy.md): the templates
run in a sandbox and see only this. templates/README.md lists the values per program.

Programs (docs/architecture.md): ``recognition`` (weekly, to a leader: concrete signals per member
and whom to thank for what), ``recognize`` (a leader's own note to a member),
``followup`` (after a 1:1, to both people), ``overload`` (the coming day or week is
overloaded) and ``digest`` (weekly team load as an email-safe heat map).

Names are shown with their whitespace collapsed (a name with a line break cannot break
the ``Subject:`` line); times are shown in the recipient's own zone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from worker.core.analysis import DayMetrics, Policy, roll_up
from worker.core.model import Event, Person, Status
from worker.core.wording import plural
from worker.report import reason_words

__all__ = [
    "AGENDA",
    "PROMPTS",
    "agenda_topic",
    "commitments",
    "digest_context",
    "first_name",
    "followup_context",
    "is_one_on_one",
    "overload_context",
    "recognition_context",
    "recognize_context",
]

AGENDA = ("wins", "challenges", "development")
"""The rotating agenda of a 1:1: the n-th follow-up proposes ``AGENDA[n % 3]``."""

PROMPTS: Mapping[str, tuple[str, ...]] = {
    "wins": (
        "What went well since you last met, and what made it work?",
        "What are you proud of that others may not have seen?",
        "Who helped along the way and deserves a thank-you?",
    ),
    "challenges": (
        "What is getting in the way right now?",
        "Where would help, or fewer interruptions, make the biggest difference?",
        "What would you try differently next time?",
    ),
    "development": (
        "What would you like to get better at in the next three months?",
        "Which piece of work would stretch you in a good way?",
        "What support (time, a mentor, a course) would help?",
    ),
}
"""Two or three questions that open each agenda topic."""

TOPIC_LABELS = {"wins": "Wins", "challenges": "Challenges", "development": "Development"}

#: Upper bounds that keep a context (and so the email) small whatever the input.
MAX_COMMITMENTS = 20
MAX_COMMITMENT_CHARS = 300
MAX_NOTE_CHARS = 5000
MAX_SUGGESTIONS = 3

# -- small helpers ----------------------------------------------------------------------


def _norm(email: str) -> str:
    return email.strip().casefold()


def _clean(text: str) -> str:
    """One line: whitespace (line breaks included) collapsed, control characters dropped."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def first_name(person: Person) -> str:
    """The first word of the name as shown (blank, control characters: the email)."""
    name = _clean(person.name)
    return name.split()[0] if name else person.email


_first_name = first_name


def _name(person: Person) -> str:
    return _clean(person.name) or person.email


def _who(person: Person) -> dict[str, str]:
    """The values every program gives about its recipient."""
    return {
        "name": _name(person),
        "first_name": _first_name(person),
        "email": person.email,
        "timezone": person.timezone,
    }


def _hours(minutes: float) -> float:
    return round(minutes / 60, 1)


def _day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def _short_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _period_label(start: date, end: date) -> str:
    if start == end:
        return f"{start.day} {start:%B %Y}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {end:%B %Y}"
    if start.year == end.year:
        return f"{start.day} {start:%B} – {end.day} {end:%B %Y}"
    return f"{start.day} {start:%B %Y} – {end.day} {end:%B %Y}"


def _reason_text(day: Mapping[str, Any]) -> list[str]:
    """``reason_words`` without the reason codes: ``75 % of working time in meetings``,
    ``only 30 min of focus time`` (``no focus time`` for none)."""
    out = []
    for code, words in zip(day["reasons"], reason_words(day), strict=True):
        prefix = f"{code} ("
        text = words[len(prefix) : -1] if words.startswith(prefix) else words
        if code == "no_focus":
            text = "no focus time" if round(day["focus_minutes"]) == 0 else f"only {text}"
        out.append(text)
    return out


# -- follow-up: agenda, commitments, 1:1 detection ----------------------------------------


def agenda_topic(count_before: int) -> str:
    """The agenda topic of the next 1:1 after ``count_before`` earlier follow-ups."""
    return AGENDA[count_before % len(AGENDA)]


_TAG = re.compile(r"<[^>]*>")
_HTML = re.compile(
    r"</?(?:br|p|div|span|li|ul|ol|b|i|u|em|strong|a|font|h[1-6]|html|body|table|tr|td)\b[^>]*>",
    re.IGNORECASE,
)
_BREAK = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|li|h[1-6]|tr)\s*)>", re.IGNORECASE)
_CHECKBOX = "- [ ]"
_MARKER = re.compile(r"(?:TODO\b|Action:)", re.IGNORECASE)


def _plain_lines(description: str) -> list[str]:
    """The description's lines; an HTML description (Google, Graph: it has HTML tags) is
    reduced to text, while ``<the room>`` in a plain one stays as written."""
    text = description.replace("\r\n", "\n").replace("\r", "\n")
    if _HTML.search(text):
        text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
    return [line.replace("\xa0", " ").strip() for line in text.split("\n")]


def commitments(description: str | None) -> list[str]:
    """The lines of a 1:1's description that are commitments, with the marker removed.

    A commitment line starts (after leading spaces) with ``- [ ]``, ``TODO`` or
    ``Action:`` (``TODO`` and ``Action:`` in any case; ``TODO`` as a word, so
    ``Todoist`` is not one); a ``:`` or ``-`` after ``TODO`` goes with the marker. Lines
    left empty are dropped. An HTML description is read as text first. At most
    ``MAX_COMMITMENTS`` lines of at most ``MAX_COMMITMENT_CHARS`` characters each.
    """
    if not description:
        return []
    out: list[str] = []
    for line in _plain_lines(description):
        if line.startswith(_CHECKBOX):
            rest = line[len(_CHECKBOX) :]
        elif match := _MARKER.match(line):
            rest = line[match.end() :].lstrip()
            if match.group(0).upper() == "TODO":
                rest = rest.removeprefix(":").removeprefix("-")
        else:
            continue
        item = _clean(rest)
        if item:
            if len(item) > MAX_COMMITMENT_CHARS:
                item = item[: MAX_COMMITMENT_CHARS - 1].rstrip() + "…"
            out.append(item)
            if len(out) == MAX_COMMITMENTS:
                break
    return out


_ONE_ON_ONE = re.compile(
    r"(?<![\d:])1\s*(?::|-|-?\s*on\s*-?)\s*1(?![\d:])|\bone[\s-]*on[\s-]*one\b",
    re.IGNORECASE,
)


def _looks_like_one_on_one(title: str | None) -> bool:
    return bool(title) and _ONE_ON_ONE.search(title or "") is not None


def is_one_on_one(event: Event, leader: str, member: str, title: str | None = None) -> bool:
    """Whether ``event`` is a 1:1 between ``leader`` and ``member``.

    Exactly two people take part (the attendees and the organizer, emails compared
    case-insensitively, blanks ignored) and they are the leader and the member; the
    event is not cancelled; and it recurs (``series_id`` set) or its title looks like a
    1:1 (``1:1``, ``1-1``, ``1on1``, ``1 on 1``, ``one on one``, any case). ``title``
    is the title read at send time when titles are not stored; it defaults to
    ``event.title``.
    """
    if event.status == Status.CANCELLED:
        return False
    pair = {_norm(leader), _norm(member)}
    if len(pair) != 2 or "" in pair:
        return False
    people = {_norm(a) for a in (*event.attendees, event.organizer or "")} - {""}
    if people != pair:
        return False
    return event.series_id is not None or _looks_like_one_on_one(
        title if title is not None else event.title
    )


def followup_context(
    recipient: Person,
    other: Person,
    leader: Person,
    start: datetime,
    end: datetime,
    commitments: list[str],
    topic: str,
    skipped_twice: bool,
) -> dict[str, Any]:
    """The follow-up after a 1:1 of ``recipient`` and ``other`` (one of them ``leader``).

    ``commitments`` are the lines :func:`commitments` found (an empty list asks both to
    add theirs); ``topic`` is one of :data:`AGENDA` (see :func:`agenda_topic`);
    ``skipped_twice`` is shown to the leader only. Times are in the recipient's zone.
    """
    if topic not in PROMPTS:
        raise ValueError(f"unknown agenda topic {topic!r}: one of {', '.join(AGENDA)}")
    tz = recipient.tz
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    is_leader = _norm(recipient.email) == _norm(leader.email)
    items = [_clean(c) for c in commitments if _clean(c)][:MAX_COMMITMENTS]
    return {
        **_who(recipient),
        "other_name": _name(other),
        "other_first_name": _first_name(other),
        "is_leader": is_leader,
        "day_label": _day_label(local_start.date()),
        "start_time": f"{local_start:%H:%M}",
        "end_time": f"{local_end:%H:%M}",
        "meeting_label": f"{_day_label(local_start.date())}, {local_start:%H:%M}–{local_end:%H:%M}",
        "commitments": items,
        "topic": topic,
        "topic_label": TOPIC_LABELS[topic],
        "prompts": list(PROMPTS[topic]),
        "skipped_twice": bool(skipped_twice) and is_leader,
    }


# -- recognition ----------------------------------------------------------------------------


def recognition_context(
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
                "name": _name(person),
                "first_name": _first_name(person),
                "email": person.email,
                "meeting_minutes": week.meeting_minutes,
                "meeting_hours": _hours(week.meeting_minutes),
                "overloaded_days": week.overloaded_days,
                "no_focus_days": len(no_focus),
                "focus_hours": _hours(week.focus_minutes),
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
        **_who(leader),
        "week_label": _clean(week_label),
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
    if row is None:
        return None
    return dict(row)


def recognize_context(leader: Person, member: Person, text: str) -> dict[str, Any]:
    """The leader's own note to ``member`` (sent to the member, cc the leader).

    ``text`` keeps its line breaks (``lines``) and its paragraphs (``paragraphs``, each a
    list of lines, split at blank lines); control characters are dropped and it is capped
    at ``MAX_NOTE_CHARS`` characters.
    """
    note = text.replace("\r\n", "\n").replace("\r", "\n")
    note = "".join(c for c in note if c == "\n" or c.isprintable() or c == "\t").strip()
    if len(note) > MAX_NOTE_CHARS:
        note = note[: MAX_NOTE_CHARS - 1].rstrip() + "…"
    lines = [line.rstrip() for line in note.split("\n")]
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return {
        **_who(member),
        "leader_name": _name(leader),
        "leader_first_name": _first_name(leader),
        "leader_email": leader.email,
        "text": note,
        "lines": lines,
        "paragraphs": paragraphs,
    }


# -- overload -------------------------------------------------------------------------------


def _shortened(minutes: int) -> int | None:
    """The "speedy meeting" length: 5 min off up to 30 min, 10 min off longer ones."""
    if minutes < 20:
        return None
    return minutes - 5 if minutes <= 30 else minutes - 10


def overload_context(
    person: Person,
    days: Sequence[DayMetrics],
    heaviest: Sequence[tuple[str, datetime, datetime, int]],
    lookahead_label: str,
) -> dict[str, Any]:
    """The heads-up to ``person`` that the coming day or week (``days``) is overloaded.

    Each overloaded day with its reasons in words (:func:`worker.report.reason_words`).
    ``heaviest`` are candidate meetings ``(label, start, end, attendee_count)`` to move or
    shorten, in the order given (the first three are used), shown in the person's zone.
    A meeting of at most three people on an overloaded day is proposed to move to the
    lightest other working day of ``days`` (not overloaded, not away, with the most focus
    time, at least the meeting's length); any other meeting of 20 minutes or more is
    proposed to be shortened (25 for 30, 50 for 60: a break before the next one).
    """
    tz = person.tz
    overloaded = [d for d in days if d.overloaded]
    day_rows = []
    for d in overloaded:
        as_dict = d.as_dict()
        day_rows.append(
            {
                "label": _day_label(d.date),
                "date": d.date.isoformat(),
                "meeting_hours": _hours(d.meeting_minutes),
                "meeting_load_pct": None if d.meeting_load is None else round(d.meeting_load * 100),
                "focus_hours": _hours(d.focus_minutes),
                "reasons": list(d.reasons),
                "reason_words": reason_words(as_dict),
                "reason_texts": _reason_text(as_dict),
                "reasons_text": ", ".join(_reason_text(as_dict)),
            }
        )
    heavy_dates = {d.date for d in overloaded}
    lighter = sorted(
        (d for d in days if not d.overloaded and not d.away and d.working_minutes > 0),
        key=lambda d: (-d.focus_minutes, d.date),
    )
    meetings = []
    for label, start, end, count in list(heaviest)[:MAX_SUGGESTIONS]:
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        minutes = max(0, round((end - start) / timedelta(minutes=1)))
        name = _clean(label) or "a meeting"
        when = f"{_short_day(local_start.date())} {local_start:%H:%M}–{local_end:%H:%M}"
        target = next(
            (
                d
                for d in lighter
                if d.date != local_start.date() and d.focus_minutes >= max(minutes, 1)
            ),
            None,
        )
        action: str | None
        if target is not None and count <= 3 and local_start.date() in heavy_dates:
            action = "move"
            suggestion = (
                f"Move {name} ({when}) to {_day_label(target.date)}, which still has "
                f"{_hours(target.focus_minutes)} h of uninterrupted time."
            )
            to_minutes = None
        elif (short := _shortened(minutes)) is not None:
            action = "shorten"
            to_minutes = short
            suggestion = (
                f"Shorten {name} ({when}) from {minutes} to {short} min: "
                "a break before whatever comes next."
            )
        else:
            action, to_minutes = None, None
            suggestion = f"Ask whether {name} ({when}) needs you there."
        meetings.append(
            {
                "label": name,
                "when": when,
                "day_label": _day_label(local_start.date()),
                "start_time": f"{local_start:%H:%M}",
                "end_time": f"{local_end:%H:%M}",
                "minutes": minutes,
                "attendees": count,
                "action": action,
                "shorten_to_minutes": to_minutes,
                "move_to": _day_label(target.date) if action == "move" and target else None,
                "suggestion": suggestion,
            }
        )
    return {
        **_who(person),
        "lookahead_label": _clean(lookahead_label),
        "overloaded_count": len(overloaded),
        "days": day_rows,
        "meetings": meetings,
        "suggestions": [m["suggestion"] for m in meetings],
    }


# -- digest ---------------------------------------------------------------------------------

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
        title = "overloaded: " + "; ".join(_reason_text(day))
    return {"text": text, "bg": bg, "fg": fg, "overloaded": overloaded, "title": title}


def digest_context(
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
    team_name = _clean(team) or "your team"
    spread = next((t for t in report["teams"] if t["name"] == team), None)
    people = list(report["people"])
    withheld = spread is None or len(people) < min_team_size
    base: dict[str, Any] = {
        **_who(leader),
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
        name = _clean(names.get(email, "")) or email
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
                lines.append(f"{name}, {_short_day(d)}: " + ", ".join(_reason_text(day)))
        rows.append(
            {
                "name": name,
                "short_name": name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…",
                "timezone": person["timezone"],
                "cells": cells,
                "total_hours": _hours(person["week"]["meeting_minutes"]),
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
            "median_hours": _hours(spread["median_meeting_minutes"]),
            "max_over_median": None if ratio is None else round(ratio, 1),
            "above": [_clean(names.get(e, "")) or e for e in spread["above_1_5x_median"]],
        },
    )
    return base
