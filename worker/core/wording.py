"""Pure: the one place where figures become words: overload reasons, names, and the days
an email speaks of.

Overload reasons (the codes of docs/metrics.md) are worded here for every reader: the
week table's few words (:data:`REASON_LABELS`), the figure behind each one
(:func:`reason_words`, :func:`reason_figures`), a reflection's plain sentence
(:func:`reason_felt`) and the HTML report's words with the limit crossed
(:func:`reason_text`). A person's name as shown and their first name are
:func:`display_name` and :func:`first_name`.

Days in an email are words that are true at the moment it is sent.

An email is decided at one moment and may go out later: the worker was down, the send
was moved into the next working hours, a transient failure was retried. So whatever it
says about "today" or "tomorrow" is worded from two dates in the recipient's own zone,
the day it is about and the local date of the send moment, never from the decision:

* the reflected day: ``today`` when sent that day, else ``your Wednesday`` (and the
  question ``What moved forward on Wednesday?``);
* the next working day: ``today, Thursday`` when sent on it (and only what is left of
  it from the send moment on: no meeting already past is shown as coming),
  ``tomorrow, Friday`` only when it is the next calendar day, else ``on Monday``;
* a weekday name alone is used only within six days of the send date; further away
  the date is named too (``on Monday 16 November``), so no name is ever ambiguous.

No clock is read here: the send moment is a parameter. Imports only the standard
library and :mod:`worker.core.model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from worker.core.model import Person, local_day_range

__all__ = [
    "REASON_FELT",
    "REASON_FIGURES",
    "REASON_LABELS",
    "as_written",
    "coming_day",
    "day_label",
    "display_name",
    "figure",
    "first_name",
    "one_line",
    "percent",
    "plural",
    "reason_felt",
    "reason_figures",
    "reason_labels",
    "reason_text",
    "reason_words",
    "reflected_day",
    "reflection_at_send",
    "reflection_facts",
]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 calendar``, ``2 calendars``; ``many`` for an irregular plural
    (``plural(3, "person", "people")``)."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def one_line(text: str) -> str:
    """One line: whitespace (line breaks included) collapsed, control characters dropped."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def display_name(person: Person) -> str:
    """The name as shown on one line (blank: the email)."""
    return one_line(person.name) or person.email


def first_name(person: Person) -> str:
    """The first word of the name as shown (blank, control characters: the email)."""
    name = one_line(person.name)
    return name.split()[0] if name else person.email


# -- overload reasons -------------------------------------------------------------------

#: Each reason code of docs/metrics.md in a few words, for the week table.
REASON_LABELS = {
    "meeting_load": "meeting load",
    "back_to_back": "back to back",
    "no_focus": "no focus",
    "after_hours": "after hours",
    "double_booked": "double-booked",
}

#: The figure behind each reason (the values of :func:`_figures`).
REASON_FIGURES = {
    "meeting_load": "{pct} % of working time in meetings",
    "back_to_back": "{chain} min back to back",
    "no_focus": "{focus} min of focus time",
    "after_hours": "{after} min of meetings outside working hours",
    "double_booked": "{double} min double-booked",
}

#: Each reason as a reflection says it to the person whose day it was.
REASON_FELT = {
    "meeting_load": "most of your working time went to meetings",
    "back_to_back": "a long run of back-to-back meetings",
    "no_focus": "no stretch of focus time",
    "after_hours": "meetings outside your working hours",
    "double_booked": "meetings that overlapped",
}


def _figures(day: Mapping[str, Any]) -> dict[str, int]:
    return {
        "pct": round((day["meeting_load"] or 0) * 100),
        "chain": round(day["longest_chain_minutes"]),
        "focus": round(day["focus_minutes"]),
        "after": round(day["after_hours_meeting_minutes"]),
        "double": round(day["double_booked_minutes"]),
    }


def reason_words(day: Mapping[str, Any]) -> list[str]:
    """Each reason of an overloaded day (a day dict of docs/metrics.md) with the figure
    behind it: ``meeting_load (75 % of working time in meetings)``."""
    values = _figures(day)
    return [f"{r} ({REASON_FIGURES[r].format(**values)})" for r in day["reasons"]]


def reason_figures(day: Mapping[str, Any]) -> list[str]:
    """Each reason's figure without its code, as the emails say it: ``75 % of working
    time in meetings``, ``only 30 min of focus time`` (``no focus time`` for none)."""
    values = _figures(day)
    out = []
    for code in day["reasons"]:
        text = REASON_FIGURES[code].format(**values)
        if code == "no_focus":
            text = "no focus time" if values["focus"] == 0 else f"only {text}"
        out.append(text)
    return out


def reason_labels(reasons: Sequence[str]) -> str:
    """The week table's words: ``meeting load, no focus`` (an unknown code as it is)."""
    return ", ".join(REASON_LABELS.get(r, r) for r in reasons)


def reason_felt(reasons: Sequence[str]) -> str:
    """A reflection's words: ``most of your working time went to meetings, ...``."""
    return ", ".join(REASON_FELT.get(r, r) for r in reasons)


#: The reasons measured in minutes: (the limit's option, the day's figure, words, bound).
_MINUTE_REASONS = {
    "back_to_back": ("max_chain_minutes", "longest_chain_minutes", "back to back", "limit"),
    "no_focus": ("min_focus_minutes", "focus_minutes", "of focus time", "minimum"),
    "after_hours": (
        "max_after_hours_minutes",
        "after_hours_meeting_minutes",
        "outside working hours",
        "limit",
    ),
}


def reason_text(code: str, day: Mapping[str, Any], limits: Mapping[str, Any]) -> str:
    """One overload reason in plain words, quoting the limit it crossed (``limits``: the
    ``overload:`` settings as numbers), e.g. ``back_to_back: 240 min back to back
    (limit 180)``; an unknown code as it is."""
    if code == "meeting_load":
        limit = float(limits["max_meeting_load"])
        load = float(day.get("meeting_load") or 0.0)
        return (
            f"meeting_load: {percent(load, avoid=limit)} % of working time in meetings "
            f"(limit {percent(limit)} %)"
        )
    if code in _MINUTE_REASONS:
        limit_key, day_key, words, bound = _MINUTE_REASONS[code]
        limit = float(limits[limit_key])
        value = float(day.get(day_key) or 0.0)
        return f"{code}: {figure(value, avoid=limit)} min {words} ({bound} {as_written(limit)})"
    if code == "double_booked":
        value = float(day.get("double_booked_minutes") or 0.0)
        return f"double_booked: {figure(value, avoid=0.0)} min double-booked"
    return str(code)


def figure(value: float, *, avoid: float | None = None) -> str:
    """A whole number when that is honest; more decimals when rounding would make the
    value look equal to the limit it was compared with (e.g. 180.4 vs 180)."""
    for digits in range(4):
        text = f"{value:.{digits}f}"
        if avoid is None or float(text) != avoid or value == avoid:
            return text
    return f"{value:.4f}"


def percent(share: float, *, avoid: float | None = None) -> str:
    """A share as a percentage figure (:func:`figure` of ``100 * share``)."""
    return figure(100 * share, avoid=None if avoid is None else 100 * avoid)


def as_written(value: float) -> str:
    """A configured value as written: ``0.6``, ``180``, ``1.5``."""
    return f"{float(value):g}"


# -- days ---------------------------------------------------------------------------------


def day_label(day: date) -> str:
    """``Thursday 5 November``."""
    return f"{day:%A} {day.day} {day:%B}"


def _near(day: date, sent_on: date) -> bool:
    """Within six days of the send date: a weekday name alone names it."""
    return abs((day - sent_on).days) < 7


def reflected_day(day: date, sent_on: date) -> tuple[str, str]:
    """``(name, on)`` for the day a reflection is about, in an email sent on ``sent_on``:
    ``("today", "today")`` on that day, ``("your Wednesday", "on Wednesday")`` on a later
    one (``your Monday 2 November`` a week or more later)."""
    if day == sent_on:
        return "today", "today"
    name = f"{day:%A}" if _near(day, sent_on) and day < sent_on else day_label(day)
    return f"your {name}", f"on {name}"


def coming_day(day: date, sent_on: date) -> tuple[str, str]:
    """``(when, heading)`` for a working day after the reflected one, in an email sent on
    ``sent_on``: ``today, Thursday`` / ``Today, Thursday 5 November`` when sent on it,
    ``tomorrow, Friday`` / ``Tomorrow, Friday 6 November`` when it is the next calendar
    day, ``on Monday`` / ``On Monday 9 November`` up to six days ahead, and the date in
    both (``on Monday 16 November``) further ahead or for a day already past."""
    label = day_label(day)
    if day == sent_on:
        return f"today, {day:%A}", f"Today, {label}"
    if day == sent_on + timedelta(days=1):
        return f"tomorrow, {day:%A}", f"Tomorrow, {label}"
    if day > sent_on and _near(day, sent_on):
        return f"on {day:%A}", f"On {label}"
    return f"on {label}", f"On {label}"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _union_minutes(spans: Sequence[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for s, e in sorted(spans):
        if end is None or s > end:
            total += (e - s).total_seconds() / 60
            end = e
        elif e > end:
            total += (e - end).total_seconds() / 60
            end = e
    return total


def reflection_facts(
    day: date,
    next_day: date,
    meetings: Sequence[tuple[datetime, datetime]],
    blocks: Sequence[tuple[str, datetime, datetime]],
) -> dict[str, Any]:
    """What a reflection's send-time words are computed from, as plain JSON values:
    the reflected day, the next working day, and that day's meetings and protected
    blocks as aware ``(start, end)`` instants (stored in the outbox row)."""
    return {
        "day": day.isoformat(),
        "next_day": next_day.isoformat(),
        "meetings": [[s.isoformat(), e.isoformat()] for s, e in meetings],
        "blocks": [[title, s.isoformat(), e.isoformat()] for title, s, e in blocks],
    }


def _hours(minutes: float) -> float:
    return round(minutes / 60, 1)


def reflection_at_send(values: Mapping[str, Any], sent: datetime) -> dict[str, Any]:
    """The reflection's values (``values``, as decided, with ``_reflect`` facts from
    :func:`reflection_facts`) with the words that depend on the send moment ``sent``,
    read in the recipient's zone (``values["timezone"]``). templates/README.md lists
    what each value holds. Values decided without facts (an older steadyhand) are worded
    as sent on the reflected day, as they were then."""
    facts = values.get("_reflect")
    tomorrow = dict(values.get("tomorrow") or {})
    if not isinstance(facts, Mapping):
        return {**values, **_legacy(tomorrow, values.get("blocks") or [])}
    tz = ZoneInfo(str(values["timezone"]))
    local = sent.astimezone(tz)
    sent_on = local.date()
    day = date.fromisoformat(facts["day"])
    following = date.fromisoformat(facts["next_day"])
    name, on = reflected_day(day, sent_on)
    when, heading = coming_day(following, sent_on)
    started = following == sent_on
    span = local_day_range(following, tz)
    lo = max(span.start, sent) if started else span.start  # what is left of the day
    meetings = [(_moment(s), _moment(e)) for s, e in facts["meetings"]]
    left = [(max(s, lo), min(e, span.end)) for s, e in meetings if min(e, span.end) > max(s, lo)]
    upcoming = sorted(s for s, _ in meetings if lo <= s < span.end)
    hours = _hours(_union_minutes(left))
    first = upcoming[0].astimezone(tz).strftime("%H:%M") if upcoming else None
    blocks = [
        f"{title} {_moment(s).astimezone(tz):%H:%M}–{_moment(e).astimezone(tz):%H:%M}"
        for title, s, e in facts["blocks"]
        if _moment(e) > lo
    ]
    from_time = f"{local:%H:%M}" if started else None
    day_off = bool(tomorrow.get("day_off"))
    tomorrow.update(
        label=day_label(following),
        when=when,
        heading=heading,
        started=started,
        from_time=from_time,
        meeting_hours=hours,
        first_meeting=first,
        sentence=_sentence(heading, from_time, day_off, hours, first, bool(left)),
    )
    return {
        **values,
        "late": day != sent_on,
        "day_name": name,
        "day_title": name[0].upper() + name[1:],
        "questions": [f"What moved forward {on}?", "What dampened it?"],
        "tomorrow": tomorrow,
        "blocks": blocks,
        "blocks_heading": f"Protected time {'left ' if started else ''}{when}:",
    }


def _sentence(
    heading: str, from_time: str | None, day_off: bool, hours: float, first: str | None, any_: bool
) -> str:
    if day_off:
        return f"{heading}: a day off. Enjoy it."
    if from_time is None:
        if not any_:
            return f"{heading}: no meetings."
        return f"{heading}: {hours} h of meetings" + (f", the first at {first}." if first else ".")
    if not any_:
        return f"{heading}, from {from_time}: no more meetings."
    return f"{heading}, from {from_time}: {hours} h of meetings left" + (
        f", the next at {first}." if first else "."
    )


def _legacy(tomorrow: dict[str, Any], blocks: Sequence[str]) -> dict[str, Any]:
    label = tomorrow.get("label") or "tomorrow"
    heading = f"Tomorrow, {label}"
    hours, first = tomorrow.get("meeting_hours", 0), tomorrow.get("first_meeting")
    tomorrow.update(
        when="tomorrow",
        heading=heading,
        started=False,
        from_time=None,
        sentence=_sentence(heading, None, bool(tomorrow.get("day_off")), hours, first, bool(hours)),
    )
    return {
        "late": False,
        "day_name": "today",
        "day_title": "Today",
        "questions": ["What moved forward today?", "What dampened it?"],
        "tomorrow": tomorrow,
        "blocks": list(blocks),
        "blocks_heading": "Protected time tomorrow:",
    }
