"""Scalar values of ``steadyhand.yaml``: durations, clocks, days, working hours, zones,
addresses and URLs. Each parser raises ``ValueError("what — how to fix")``."""

from __future__ import annotations

import difflib
import functools
import itertools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import time, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

from worker.config import reader as config_yaml
from worker.core.errors import UserError
from worker.core.model import WEEKDAYS, WorkingHours

logger = logging.getLogger(__name__)

ENV_VAR = "STEADYHAND_CONFIG"
#: The key that signs one-click unsubscribe links (and encrypts tokens: connectors.secrets).
SECRET_KEY_ENV = "STEADYHAND_SECRET_KEY"
DEFAULT_NAME = "steadyhand.yaml"
SECRET_KEYS = frozenset(
    {"password", "secret", "client_secret", "token", "access_token", "refresh_token", "api_key"}
)


# -- scalar parsers: each raises ValueError("what — how to fix") ------------------------

#: One ``NUMBER UNIT`` part of a duration; a whole duration is one or more of them in
#: the order w, d, h, m, s. No two quantifiers can match the same text, so matching is linear.
_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])\s*")
_DURATION_WHOLE = re.compile(r"(?:\d+\s*[wdhms]\s*)+")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
#: No duration anywhere may be longer than this (a timedelta overflows far beyond it).
MAX_ANY_DURATION = timedelta(weeks=520)


def _said(span: timedelta, weeks: bool) -> str:
    """``timedelta(weeks=260)`` -> ``260w``; ``timedelta(hours=25)`` -> ``1d1h``."""
    seconds = int(span.total_seconds())
    if weeks and seconds and seconds % _UNIT_SECONDS["w"] == 0:
        return f"{seconds // _UNIT_SECONDS['w']}w"
    out = ""
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        out += f"{count}{unit}" if count else ""
    return out or "0m"


def parse_duration(
    value: Any,
    *,
    weeks: bool = False,
    most: timedelta = MAX_ANY_DURATION,
    least: timedelta = timedelta(0),
    most_said: str = "",
) -> timedelta:
    """``45m``, ``2h``, ``1h30m``, ``1d`` (and ``4w`` where ``weeks``) -> a timedelta within
    ``least``..``most``; else ValueError("what — fix"). Never OverflowError, whatever the digits."""
    if isinstance(value, timedelta):
        span = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        form = "45m, 2h, 1h30m or 4w" if weeks else "45m, 2h, 1h30m or 1d"
        if not _DURATION_WHOLE.fullmatch(text):
            raise ValueError(f"{_shown(value)} is not a duration — write it like {form}")
        parts = _DURATION_PART.findall(text)
        units = [unit for _, unit in parts]
        order = [u for u in "wdhms" if u in units]
        if units != order or ("w" in units and not weeks):
            raise ValueError(f"{_shown(value)} is not a duration — write it like {form}")
        most_text = most_said or _said(most, weeks)
        if any(len(digits.lstrip("0")) > 15 for digits, _ in parts):
            raise ValueError(f"{_shown(value)} is too long — the most is {most_text}")
        seconds = sum(int(digits) * _UNIT_SECONDS[unit] for digits, unit in parts)
        if seconds > most.total_seconds():
            raise ValueError(f"{_shown(value)} is too long — the most is {most_text}")
        span = timedelta(seconds=seconds)
    if span > most:
        raise ValueError(
            f"{_shown(value)} is too long — the most is {most_said or _said(most, weeks)}"
        )
    if span < least:
        raise ValueError(f"{_shown(value)} is too short — the least is {_said(least, weeks)}")
    return span


def _parse_weeks(value: Any) -> timedelta:
    return parse_duration(value, weeks=True)


def _duration(
    most: timedelta, least: timedelta = timedelta(0), weeks: bool = False, said: str = ""
) -> Callable[[Any], timedelta]:
    """A pydantic before-validator reading a duration between ``least`` and ``most``."""

    def parse(value: Any) -> timedelta:
        return parse_duration(value, weeks=weeks, most=most, least=least, most_said=said)

    return parse


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages (never raises)."""
    try:
        text = repr(value)
    except Exception:  # an int too long for str(), an object whose repr fails
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and 0 <= value < 24 * 60:  # YAML 1.1 reads 16:30 as 990
        return time(value // 60, value % 60)
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
    if not match or int(match[1]) > 24 or int(match[2]) > 59:
        raise ValueError(f'{value!r} is not a time of day — write it as HH:MM, e.g. "16:30"')
    hour, minute = int(match[1]), int(match[2])
    if hour == 24:
        if minute:
            raise ValueError(f"{value!r} is past midnight — the latest time is 24:00")
        return time(23, 59, 59, 999999)
    return time(hour, minute)


def parse_days(value: Any) -> frozenset[int]:
    """``mon-fri``, ``mon,wed,fri``, ``[tue, thu]`` -> weekday numbers (0 = Monday)."""
    parts = value if isinstance(value, list) else str(value).split(",")
    days: set[int] = set()
    for part in (str(p).strip().lower() for p in parts):
        first, _, last = part.partition("-")
        for name in (first, last or first):
            if name not in WEEKDAYS:
                close = difflib.get_close_matches(name, WEEKDAYS, 1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"{name!r} is not a day — {hint}use mon, tue, wed, thu, fri, sat, sun"
                )
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def parse_working_hours(value: Any) -> WorkingHours:
    if isinstance(value, WorkingHours):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(
            'working hours must be a mapping — write e.g. {mon-fri: "09:00-17:00", sat: off}'
        )
    days: dict[int, list[tuple[time, time]]] = {}
    for spec, ranges in value.items():
        weekdays = parse_days(spec)
        parsed: list[tuple[time, time]] = []
        if ranges not in (False, None, "off", "") and str(ranges).strip().lower() != "off":
            parsed.extend(_clock_range(chunk) for chunk in str(ranges).split(","))
        for day in weekdays:
            days[day] = parsed
    hours = WorkingHours.of(days)
    for ranges in hours.days.values():
        for (_, first_end), (second_start, _) in itertools.pairwise(ranges):
            if second_start < first_end:
                raise ValueError("two working ranges overlap — make them follow each other")
    return hours


def parse_time_range(value: Any) -> tuple[time, time]:
    """One range of the day, ``"13:00-17:00"`` -> ``(time(13), time(17))`` (a ``protect:``
    rule's ``window.time``), with the messages of :func:`parse_working_hours`."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, time) for v in value):
        start, end = value
        if end <= start:
            raise ValueError(f"'{start:%H:%M}-{end:%H:%M}' ends before it starts — swap the times")
        return (start, end)
    if not isinstance(value, str):
        raise ValueError(f"input should be a valid string (got {_shown(value)}) — write it as text")
    if "," in value:
        raise ValueError(
            f"{value.strip()!r} is more than one time range — write one, HH:MM-HH:MM, "
            "and give each other range a rule of its own"
        )
    return _clock_range(value)


def _clock_range(chunk: str) -> tuple[time, time]:
    start, sep, end = chunk.partition("-")
    if not sep:
        raise ValueError(f"{chunk.strip()!r} is not a time range — write it as HH:MM-HH:MM")
    s, e = parse_clock(start), parse_clock(end)
    if e <= s:
        raise ValueError(f"{chunk.strip()!r} ends before it starts — swap the times")
    return (s, e)


@functools.cache
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def check_timezone(value: Any) -> str:
    name = str(value) if isinstance(value, str) else _shown(value)
    try:
        if len(name) > 100:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        close = _close(name, _zone_names()) if len(name) <= 100 else None
        hint = f"did you mean {close!r}?" if close else "use an IANA name like Europe/Berlin"
        raise ValueError(f"unknown time zone {_shown(name)} — {hint}") from None
    return name


def check_env_name(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(value)):
        raise ValueError(
            f"{value!r} is not an environment variable name — put the secret in an environment "
            "variable and write its name here, e.g. SMTP_PASSWORD"
        )
    return str(value)


DAY, WEEK = timedelta(days=1), timedelta(weeks=1)
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: sync.past / sync.future: at most 5 years
LongDuration = Annotated[
    timedelta, BeforeValidator(_duration(260 * WEEK, weeks=True, said="260w (5 years)"))
]
#: how long something stored is kept (privacy.keep_answers): 1d to 5 years
KeepDuration = Annotated[
    timedelta, BeforeValidator(_duration(260 * WEEK, DAY, weeks=True, said="260w (5 years)"))
]
#: how often calendars are read: 1m to 1d
SyncEvery = Annotated[timedelta, BeforeValidator(_duration(DAY, timedelta(minutes=1)))]
#: a block, a gap, a chain, a send window: at most a day
DayDuration = Annotated[timedelta, BeforeValidator(_duration(DAY))]
#: a send window that must be open at all: 1m to 1d
SendWindow = Annotated[timedelta, BeforeValidator(_duration(DAY, timedelta(minutes=1)))]
#: a wait or a look ahead: at most a week (7d)
WeekDuration = Annotated[timedelta, BeforeValidator(_duration(WEEK, said="7d"))]
Clock = Annotated[time, BeforeValidator(parse_clock)]
Days = Annotated[frozenset[int], BeforeValidator(parse_days)]
Hours = Annotated[WorkingHours, BeforeValidator(parse_working_hours)]
#: one range of the day, "13:00-17:00": (start, end)
TimeRange = Annotated[tuple[time, time], BeforeValidator(parse_time_range)]
TimeZone = Annotated[str, BeforeValidator(check_timezone)]
EnvName = Annotated[str, BeforeValidator(check_env_name)]


#: What may not appear in any value (the reader flags a tree that has one).
_CONTROL = config_yaml.CONTROL


def _control_message(value: str) -> str | None:
    """What is wrong with ``value`` if it holds a control character, as "what — fix"."""
    bad = _CONTROL.search(value)
    if bad is None:
        return None
    what = "a line break" if bad[0] in "\r\n\x85\u2028\u2029" else f"U+{ord(bad[0]):04X}"
    return (
        f"contains {what} — remove it: a value is one line of text without control "
        "characters (in an email header a line break would start a new header)"
    )


def _one_line(value: str) -> str:
    message = _control_message(value)
    if message:
        raise ValueError(message)
    return value


def _web_url(
    value: str,
    schemes: tuple[str, ...] = ("http", "https"),
    fix: str = "write it like https://steadyhand.example.com/path",
) -> str:
    """An http(s) URL with a host, no whitespace or angle brackets, and a valid port."""
    _one_line(value)
    if len(value) > 2000:
        raise ValueError("the URL is longer than 2000 characters — shorten it")
    if re.search(r"[\s<>\"]", value):
        raise ValueError(f"{_shown(value)} has a space, a quote or an angle bracket — {fix}")
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{_shown(value)} is not a valid URL — {fix}") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"{_shown(value)} is not an {'/'.join(schemes)} URL — {fix}")
    if not host:
        raise ValueError(f"{_shown(value)} has no host name — {fix}")
    return value


def _feed_or_path(value: str) -> str:
    """``ics:``: a file path, or an http/https/webcal feed URL that later parses."""
    _one_line(value)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        fix = "write a file path, or a feed URL like https://calendar.example.com/team.ics"
        _web_url(value, ("http", "https", "webcal"), fix)
    return value


def _audience(value: Any) -> Any:
    """``leaders | everyone | team:NAME | [emails]``: one error for a wrong shape (not one per
    member of the union). A control character in a list item is said at the item's own line by
    the text check of the file; an address with one matches nobody anyway."""
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(
        f"{_shown(value)} is not an audience — write leaders, everyone, team:NAME or a list "
        "of addresses"
    )


def _url_of(*prefixes: str, example: str) -> Callable[[str], str]:
    """A store or queue URL: one of ``prefixes`` (what ``run`` can open), one line."""

    def check(value: str) -> str:
        _one_line(value)
        if not value.startswith(prefixes):
            raise ValueError(
                f"{_shown(value)} is not supported — write {example} (it starts with "
                + " or ".join(prefixes)
                + ")"
            )
        return value

    return check


Text = Annotated[str, AfterValidator(_one_line)]
StoreUrl = Annotated[
    str,
    AfterValidator(
        _url_of(
            "sqlite:///",
            "postgresql://",
            "postgresql+psycopg://",
            example="sqlite:///var/steadyhand.db or postgresql://user@host/db",
        )
    ),
]
QueueUrl = Annotated[
    str,
    AfterValidator(
        _url_of(
            "sqlite:///",
            "redis://",
            "rediss://",
            example="sqlite:///var/queue.db or redis://host:6379/0",
        )
    ),
]
WebUrl = Annotated[str, AfterValidator(_web_url)]
Audience = Annotated[str | list[str], BeforeValidator(_audience)]
Feed = Annotated[str, AfterValidator(_feed_or_path)]


#: How many "did you mean …?" hints one check computes (each compares against many names).
MAX_SUGGESTIONS = 20
#: Above this many candidates, a hint compares against names of about the same length only.
MAX_CANDIDATES = 2000
_suggestions_left: ContextVar[int] = ContextVar("suggestions_left", default=MAX_SUGGESTIONS)


def _close(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to ``word``, within this check's budget of hints; else None."""
    left = _suggestions_left.get()
    if left <= 0 or len(word) > 200:
        return None
    _suggestions_left.set(left - 1)
    if len(candidates) > MAX_CANDIDATES:
        near = [c for c in candidates if abs(len(c) - len(word)) <= 2]
        candidates = near[:MAX_CANDIDATES]
    close = difflib.get_close_matches(word, candidates, 1, cutoff=cutoff)
    return close[0] if close else None


def parse_bytes(value: Any) -> int:
    """``25MB``, ``512KB``, ``1GB`` or a plain number of bytes -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size — write it like 25MB, 512KB or 1GB")
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d{1,12})\s*([kmg]?b?)\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a size — write it like 25MB, 512KB or 1GB")
    unit = match[2].lower().rstrip("b")
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


Bytes = Annotated[int, BeforeValidator(parse_bytes)]


#: The longest address (RFC 5321) and display name accepted.
MAX_EMAIL, MAX_NAME = 254, 200
#: What an address may not hold: whitespace, controls, and what would make it more than one
#: address or a display name in a header (``<>,;:"()[]\``).
_ADDRESS = re.compile(
    r"[^@\s<>,;:\"()\[\]\\\x00-\x1f\x7f]+@[^@\s<>,;:\"()\[\]\\\x00-\x1f\x7f]+"
    r"\.[^@\s<>,;:\"()\[\]\\\x00-\x1f\x7f]+"
)


def _address(value: Any) -> str:
    """One bare address (``name@example.com``), lower-cased; else ValueError."""
    if not isinstance(value, str):
        return value  # type: ignore[no-any-return]  # pydantic says it is not text
    message = _control_message(value)
    if message:
        raise ValueError(message)
    if len(value) > MAX_EMAIL or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{_shown(value)} is not an email address — write it as name@example.com")
    return value.lower()


def _one_sender(value: str) -> str:
    """``mail.from``: exactly one address, as the mail module will read it when sending."""
    _one_line(value)
    from worker import mail  # here, not at the top: mail is heavier and imports jinja2

    try:
        mail.address(value)
    except UserError as exc:
        what = exc.problems[0].what if exc.problems else "not one address"
    except Exception:  # whatever the email package makes of it, it cannot send from it
        what = f"{_shown(value)} is not one address"
    else:
        return value
    raise ValueError(f'{what} — write one address, e.g. "Steadyhand <steadyhand@example.com>"')


class _Section(BaseModel):
    """The base of every section of the YAML: frozen, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )
