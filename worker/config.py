"""``steadyhand.yaml`` -> frozen, typed settings, with every problem reported at once.

The YAML is parsed once (ruamel.yaml, which remembers lines), validated by pydantic v2
models, and cross-checked (teams name known people, calendars name known accounts).
Every problem becomes a :class:`~connectors.base.Problem` rendered as
``FILE:LINE: path.to.key: what is wrong — how to fix``; :func:`load` raises one
:class:`~connectors.base.ConfigError` carrying all of them.

The rest of the program reads :class:`Settings` attributes and the model values it
builds (:meth:`Settings.persons`, :meth:`Settings.calendar_ref`); nobody threads
``conf["a"]["b"]`` around.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import logging
import multiprocessing
import os
import re
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import time, timedelta
from functools import cached_property
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.base import AccountSpec, ConfigError, Problem, UserError
from worker import config_yaml
from worker.config_yaml import YamlMap, YamlSeq
from worker.model import (
    WEEKDAYS,
    CalendarRef,
    Person,
    SyncLimits,
    Team,
    WorkingHours,
    redact_location,
)

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
            for chunk in str(ranges).split(","):
                start, sep, end = chunk.partition("-")
                if not sep:
                    raise ValueError(
                        f"{chunk.strip()!r} is not a time range — write it as HH:MM-HH:MM"
                    )
                s, e = parse_clock(start), parse_clock(end)
                if e <= s:
                    raise ValueError(f"{chunk.strip()!r} ends before it starts — swap the times")
                parsed.append((s, e))
        for day in weekdays:
            days[day] = parsed
    hours = WorkingHours.of(days)
    for ranges in hours.days.values():
        for (_, first_end), (second_start, _) in itertools.pairwise(ranges):
            if second_start < first_end:
                raise ValueError("two working ranges overlap — make them follow each other")
    return hours


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
TimeZone = Annotated[str, BeforeValidator(check_timezone)]
EnvName = Annotated[str, BeforeValidator(check_env_name)]


#: What may not appear in any value (the reader flags a tree that has one): see config_yaml.
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


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )


# -- sections ----------------------------------------------------------------------------


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


class SyncSettings(_Section):
    past: LongDuration = timedelta(weeks=4)
    future: LongDuration = timedelta(weeks=8)
    every: SyncEvery = timedelta(minutes=15)
    #: Per calendar: at most this many events (recurring instances included) are kept;
    #: a series that would go past it is cut and the calendar reported ``truncated``.
    max_events: int = Field(50_000, ge=1, le=10_000_000)
    #: Per calendar file or feed: a body larger than this is refused in one line.
    max_bytes: Bytes = Field(25 * 1024**2, ge=1024, le=1024**3)
    #: Per feed: the whole download (connect, redirects, body) must end within this.
    feed_timeout: Duration = Field(timedelta(seconds=60), gt=timedelta(0), le=timedelta(hours=1))


class AccountSettings(_Section):
    name: Text
    kind: Literal["google", "outlook", "caldav"]
    auth: str | None = None
    client_secrets: Path | None = None
    key_file: Path | None = None
    token_env: EnvName | None = None
    api_endpoint: WebUrl | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: EnvName | None = None
    graph_endpoint: WebUrl | None = None
    url: WebUrl | None = None
    username: Text | None = None
    password_env: EnvName | None = None

    @model_validator(mode="after")
    def _auth_fits_kind(self) -> AccountSettings:
        allowed = {
            "google": ("oauth", "service_account", "access_token"),
            "outlook": ("device_code", "client_credentials", "access_token"),
            "caldav": ("basic",),
        }[self.kind]
        if self.auth is not None and self.auth not in allowed:
            raise ValueError(
                f"auth {self.auth!r} does not exist for {self.kind} — use one of "
                + ", ".join(allowed)
            )
        if self.auth == "access_token" and not self.token_env:
            raise ValueError("auth: access_token needs token_env — name the variable")
        return self


class CalendarSettings(_Section):
    """Exactly one of: an account calendar, an iCalendar file/URL, a vdir folder, memory."""

    account: Text | None = None
    id: Text = "primary"
    ics: Feed | None = None
    vdir: Path | None = None
    memory: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CalendarSettings:
        given = [k for k in ("account", "ics", "vdir", "memory") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a calendar needs exactly one source — write {account: NAME, id: primary}, "
                "{ics: FILE-OR-URL} or {vdir: FOLDER}"
            )
        return self

    @property
    def kind(self) -> str:
        return (
            "ics" if self.ics else "vdir" if self.vdir else "memory" if self.memory else "account"
        )


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


class PersonSettings(_Section):
    email: str
    name: Text | None = None
    timezone: TimeZone | None = None
    working_hours: Hours | None = None
    calendar: CalendarSettings | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _address(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "the name is blank — write the person's name, or leave name: out to use "
                "the part of the address before @"
            )
        if value is not None and len(value) > MAX_NAME:
            raise ValueError(f"the name is longer than {MAX_NAME} characters — shorten it")
        return value


class TeamSettings(_Section):
    name: Text
    leader: Text
    members: tuple[Text, ...] = ()


class OverloadSettings(_Section):
    max_meeting_load: float = Field(0.6, gt=0, le=1, allow_inf_nan=False)
    max_chain_minutes: float = Field(180, gt=0, le=1440, allow_inf_nan=False)
    back_to_back_gap: DayDuration = timedelta(minutes=5)
    focus_min: DayDuration = timedelta(minutes=120)
    min_focus_minutes: float = Field(60, ge=0, le=1440, allow_inf_nan=False)
    max_after_hours_minutes: float = Field(30, ge=0, le=1440, allow_inf_nan=False)


class WindowSettings(_Section):
    days: Days = frozenset(range(5))
    time: str = "09:00-17:00"

    @field_validator("time")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_working_hours({"mon": value})
        return value


class ProtectRule(_Section):
    rule: Literal["coaching", "recovery", "focus", "lunch"]
    for_: Audience = Field("everyone", alias="for")
    duration: DayDuration | None = None
    min_duration: DayDuration | None = None
    max_duration: DayDuration | None = None
    #: a count of blocks (at most 100 a week, 24 a day) or a duration goal (at most 7d, 1d)
    per_week: int | timedelta | None = None
    per_day: int | timedelta | None = None
    min_block: DayDuration | None = None
    after_chain: DayDuration | None = None
    after_overloaded_day: DayDuration | None = None
    window: WindowSettings | None = None
    earliest: Clock | None = None
    latest: Clock | None = None
    show_as: Literal["busy", "free"] = "busy"
    title: Text | None = None
    defend: Literal["decline", "hold"] = "hold"

    @field_validator("per_week", "per_day", mode="before")
    @classmethod
    def _count_or_duration(cls, value: Any, info: ValidationInfo) -> Any:
        weekly = info.field_name == "per_week"
        if isinstance(value, int) and not isinstance(value, bool):
            most_blocks = 100 if weekly else 24
            if not 0 <= value <= most_blocks:
                raise ValueError(
                    f"{_shown(value)} blocks is out of range — write 0 to {most_blocks}, "
                    "or a duration goal like 2h"
                )
            return value
        if not isinstance(value, (str, timedelta)):
            return value
        return parse_duration(value, most=WEEK if weekly else DAY, most_said="7d" if weekly else "")


class SmtpSettings(_Section):
    host: Text
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: Text | None = None
    password_env: EnvName | None = None
    timeout: float = Field(30, gt=0, le=600, allow_inf_nan=False)
    ca_file: Path | None = None


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


class MailSettings(_Section):
    from_: Annotated[str, AfterValidator(_one_sender)] = Field(
        "Steadyhand <steadyhand@localhost>", alias="from"
    )
    transport: Literal["outbox", "smtp", "gmail", "outlook", "memory"] = "outbox"
    outbox: Path = Path("var/outbox")
    smtp: SmtpSettings | None = None
    account: Text | None = None
    max_per_day: int = Field(2, ge=1, le=100)
    unsubscribe_url: WebUrl | None = None
    templates: Path | None = None

    @model_validator(mode="after")
    def _transport_needs(self) -> MailSettings:
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("transport smtp needs an smtp: section — add host, port, security")
        if self.transport in ("gmail", "outlook") and not self.account:
            raise ValueError(f"transport {self.transport} needs account: — name the account")
        return self


class ReflectionSettings(_Section):
    to: Audience = "leaders"
    at: Clock = time(16, 30)
    days: Days = frozenset(range(5))
    within: SendWindow = timedelta(hours=4)


class WeeklySettings(_Section):
    to: Audience = "leaders"
    at: str = "fri 10:00"

    @field_validator("at")
    @classmethod
    def _weekly(cls, value: str) -> str:
        day, _, clock = value.strip().partition(" ")
        if len(parse_days(day)) != 1:
            raise ValueError(f'{value!r} — write one day and a time, e.g. "fri 10:00"')
        parse_clock(clock)
        return value


class FollowupSettings(_Section):
    after: Literal["one_on_one"] = "one_on_one"
    delay: WeekDuration = timedelta(minutes=30)


class OverloadMailSettings(_Section):
    to: Literal["person"] = "person"
    notify_leader: bool = False
    lookahead: WeekDuration = timedelta(days=1)


class EmailsSettings(_Section):
    """A program runs only when it has a section here."""

    reflection: ReflectionSettings | None = None
    recognition: WeeklySettings | None = None
    followup: FollowupSettings | None = None
    overload: OverloadMailSettings | None = None
    digest: WeeklySettings | None = None


class PrivacySettings(_Section):
    store_titles: bool = False
    min_team_size: int = Field(5, ge=1, le=10_000)


class Settings(_Section):
    """The whole of ``steadyhand.yaml``. ``source`` and ``base_dir`` are filled by :func:`load`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        ignored_types=(cached_property,),
    )

    source: Path | None = Field(None, exclude=True)
    base_dir: Path = Field(Path("."), exclude=True)
    timezone: TimeZone = "UTC"
    store: StoreUrl = "sqlite:///var/steadyhand.db"
    queue: QueueUrl = "sqlite:///var/queue.db"
    working_hours: Hours = Field(
        default_factory=lambda: parse_working_hours({"mon-fri": "09:00-17:00"})
    )
    sync: SyncSettings = SyncSettings()
    accounts: tuple[AccountSettings, ...] = ()
    people: tuple[PersonSettings, ...] = ()
    teams: tuple[TeamSettings, ...] = ()
    overload: OverloadSettings = OverloadSettings()
    protect: tuple[ProtectRule, ...] = ()
    mail: MailSettings = MailSettings()
    emails: EmailsSettings = EmailsSettings()
    privacy: PrivacySettings = PrivacySettings()

    # -- resolved views ------------------------------------------------------------
    def path(self, value: Path | str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def url(self, value: str) -> str:
        """A store/queue URL; a relative SQLite path is made relative to the config file."""
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            return "sqlite:///" + str(self.path(value[len("sqlite:///") :]))
        return value

    @property
    def store_url(self) -> str:
        return self.url(self.store)

    @property
    def queue_url(self) -> str:
        return self.url(self.queue)

    def persons(self) -> tuple[Person, ...]:
        return tuple(
            Person(
                email=p.email,
                name=p.name or p.email.split("@")[0].title(),
                timezone=p.timezone or self.timezone,
                working_hours=p.working_hours or self.working_hours,
            )
            for p in self.people
        )

    def person(self, email: str) -> Person:
        for person in self.persons():
            if person.email == email.lower():
                return person
        known = [p.email for p in self.people]
        close = difflib.get_close_matches(email.lower(), known, 1)
        hint = f"did you mean {close[0]}?" if close else "add them under people: in the config"
        raise ConfigError(Problem(f"{email} is not a person in the config", hint))

    def team_models(self) -> tuple[Team, ...]:
        return tuple(
            Team(t.name, t.leader.lower(), tuple(m.lower() for m in t.members)) for t in self.teams
        )

    def leaders(self) -> frozenset[str]:
        return frozenset(t.leader.lower() for t in self.teams)

    def audience(self, spec: str | list[str]) -> tuple[str, ...]:
        """``leaders | everyone | team:NAME | [emails]`` -> the emails it means, in config order."""
        everyone = [p.email for p in self.people]
        if isinstance(spec, list):
            wanted = {s.lower() for s in spec}
        elif spec == "leaders":
            wanted = set(self.leaders())
        elif spec == "everyone":
            wanted = set(everyone)
        elif spec.startswith("team:"):
            wanted = {e for t in self.team_models() if t.name == spec[5:] for e in t.everyone}
        else:
            wanted = {spec.lower()}
        return tuple(e for e in everyone if e in wanted)

    def account_spec(self, name: str) -> AccountSpec:
        """The account ``name`` as connectors take it (paths absolute)."""
        a = next(a for a in self.accounts if a.name == name)
        return AccountSpec(
            name=a.name,
            kind=a.kind,
            auth=a.auth,
            client_secrets=self.path(a.client_secrets) if a.client_secrets else None,
            key_file=self.path(a.key_file) if a.key_file else None,
            token_env=a.token_env,
            api_endpoint=a.api_endpoint,
            tenant=a.tenant,
            client_id=a.client_id,
            client_secret_env=a.client_secret_env,
            graph_endpoint=a.graph_endpoint,
            url=a.url,
            username=a.username,
            password_env=a.password_env,
        )

    def sync_limits(self) -> SyncLimits:
        """The ``sync:`` limits as connectors take them."""
        s = self.sync
        return SyncLimits(
            max_events=s.max_events,
            max_bytes=s.max_bytes,
            feed_timeout=s.feed_timeout.total_seconds(),
        )

    @property
    def tokens_dir(self) -> Path:
        """Where encrypted tokens live: ``var/tokens`` beside the store's default."""
        return self.path("var/tokens")

    def calendar_ref(self, email: str) -> CalendarRef | None:
        settings = next((p for p in self.people if p.email == email.lower()), None)
        if settings is None or settings.calendar is None:
            return None
        cal = settings.calendar
        tz = settings.timezone or self.timezone
        if cal.ics is not None:
            if re.match(r"(https?|webcal)://", cal.ics, re.IGNORECASE):
                # the key is stored, logged and shown: the feed's address without its
                # secrets (redact_location) or query, told apart by a hash of the whole
                digest = hashlib.sha256(cal.ics.encode()).hexdigest()[:8]
                key = f"{email}:ics:{redact_location(cal.ics).partition('?')[0]}#{digest}"
                return CalendarRef(key, email, "ics", cal.ics, tz)
            return CalendarRef(f"{email}:ics:{cal.ics}", email, "ics", str(self.path(cal.ics)), tz)
        if cal.vdir is not None:
            return CalendarRef(
                f"{email}:vdir:{cal.vdir}", email, "vdir", str(self.path(cal.vdir)), tz
            )
        if cal.memory is not None:
            return CalendarRef(f"{email}:memory:{cal.memory}", email, "memory", cal.memory, tz)
        account = next(a for a in self.accounts if a.name == cal.account)
        return CalendarRef(
            f"{email}:{account.name}:{cal.id}", email, account.kind, cal.id, tz, account.name
        )


# -- loading -----------------------------------------------------------------------------


def find(explicit: Path | str | None = None, cwd: Path | None = None) -> Path:
    """The config file to use: ``-c FILE``, else ``$STEADYHAND_CONFIG``, else ./steadyhand.yaml."""
    if explicit:
        candidate, origin = Path(explicit), "-c"
    elif os.environ.get(ENV_VAR):
        candidate, origin = Path(os.environ[ENV_VAR]), ENV_VAR
    else:
        candidate, origin = (cwd or Path.cwd()) / DEFAULT_NAME, ""
    if not candidate.is_file():
        how = f" (from {origin})" if origin else ""
        raise ConfigError(
            Problem(
                f"no configuration at {candidate}{how}",
                "run `steadyhand init` to make a starter steadyhand.yaml, or pass -c FILE",
            )
        )
    return candidate


def load(path: Path | str) -> Settings:
    """Parse, validate and cross-check ``path``; raise one ConfigError with every problem."""
    settings, problems, _ = _load(Path(path))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def check(path: Path | str) -> list[Problem]:
    """Every problem in the config at ``path`` (empty when it is fine)."""
    return _load(Path(path))[1]


def inspect(path: Path | str) -> tuple[Settings | None, list[Problem], list[Problem]]:
    """``(settings, problems, warnings)`` of the config at ``path``: settings when there is
    no problem; warnings are what works but not as one would expect (exit code stays 0)."""
    return _load(Path(path))


#: At most this many problems are listed (sorted by line); one more line says how many more.
MAX_PROBLEMS = 1000
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


def _load(path: Path) -> tuple[Settings | None, list[Problem], list[Problem]]:
    shown = str(path)
    token = _suggestions_left.set(MAX_SUGGESTIONS)
    try:
        settings, problems, warnings = _load_checked(path, shown)
    except Exception as exc:  # a bug of ours must still be one line, never a traceback
        logger.exception("config check failed on %s", shown)
        problem = Problem(
            f"steadyhand could not check this file ({type(exc).__name__})",
            "please report it, with the file if you can",
            shown,
        )
        settings, problems, warnings = None, [problem], []
    finally:
        _suggestions_left.reset(token)
    return settings, [_one_line_problem(p) for p in problems], warnings


def _load_checked(path: Path, shown: str) -> tuple[Settings | None, list[Problem], list[Problem]]:
    try:
        with path.open("rb") as file:
            data = file.read(config_yaml.MAX_BYTES + 1)
    except FileNotFoundError:
        return (
            None,
            [Problem("file not found", "check the path or run `steadyhand init`", shown)],
            [],
        )
    except OSError as exc:
        return (
            None,
            [Problem(f"cannot read it: {exc.strerror or exc}", "check the file", shown)],
            [],
        )
    tree, problem = config_yaml.read(data, shown)
    if problem is not None:
        return None, [problem], []
    if tree is None:
        tree = YamlMap(1)
    if not isinstance(tree, YamlMap):
        what = "the file must be a YAML mapping of sections"
        return None, [Problem(what, "see config/example.yaml", shown, 1)], []
    locate = _Locator(tree, shown)
    problems = (
        _text_problems(tree, locate)
        + _secret_problems(tree, locate)
        + _reference_problems(tree, locate)
    )
    settings = None
    unlisted = 0
    try:
        settings = Settings.model_validate(
            {**_plain(tree), "source": path, "base_dir": path.parent.resolve()}
        )
    except ValidationError as exc:
        count = exc.error_count()
        if count > MAX_PROBLEMS:  # errors() of a million costs seconds: list the first ones,
            try:  # from the same data with each list and mapping cut to its first items
                Settings.model_validate({**_plain(tree, MAX_PROBLEMS), "source": path})
            except ValidationError as first:
                exc = first
        errors = exc.errors(include_url=False)[:MAX_PROBLEMS]
        unlisted = max(0, count - len(errors))
        problems += [_problem_from(error, locate) for error in errors]
    secret_paths = {p.path for p in problems if "secret" in p.what}
    problems = [p for p in problems if not (p.path in secret_paths and "unknown key" in p.what)]
    problems = sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.what))
    if len(problems) > MAX_PROBLEMS or unlisted:
        more = max(0, len(problems) - MAX_PROBLEMS) + unlisted
        cut = Problem(f"{more} more problems not listed", "fix these and check again", shown)
        problems = [*problems[:MAX_PROBLEMS], cut]
    return (settings if not problems else None), problems, _warnings(tree, locate)


def _warnings(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """What works, but not as the admin may think."""
    mail_section = tree.get("mail")
    url = mail_section.get("unsubscribe_url") if isinstance(mail_section, Mapping) else None
    if isinstance(url, str) and url and not os.environ.get(SECRET_KEY_ENV):
        return [
            locate.problem(
                ("mail", "unsubscribe_url"),
                f"mail.unsubscribe_url is set but {SECRET_KEY_ENV} is not: emails will carry "
                "only the mailto unsubscribe",
                f"set {SECRET_KEY_ENV} (the same key that encrypts tokens) in the worker's "
                "environment",
            )
        ]
    return []


def _one_line_problem(problem: Problem) -> Problem:
    """The problem with control characters escaped and each part cut to a readable length,
    so that it prints as one line whatever the file held."""

    def clean(text: str, limit: int = 400) -> str:
        text = _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    return Problem(
        clean(problem.what), clean(problem.fix), problem.file, problem.line, clean(problem.path)
    )


#: `config check` compiles the templates in a child process bounded in time and in memory
#: (beyond what it already uses): Jinja folds constants while compiling, so ``'x' * 10**10``
#: in a template would otherwise take the whole machine's memory before any error.
TEMPLATE_CHECK_SECONDS = 20.0
TEMPLATE_CHECK_MEMORY = 512 * 1024**2


def template_problems(
    settings: Settings,
    *,
    seconds: float = TEMPLATE_CHECK_SECONDS,
    memory: int = TEMPLATE_CHECK_MEMORY,
) -> list[Problem]:
    """Every template that does not compile (``mail.templates`` and the shipped ones), one
    problem each; a template that breaks the check itself (an exception, too much memory or
    time) is one problem too, never a crash or a hang."""
    source = str(settings.source) if settings.source else None
    folder = settings.path(settings.mail.templates) if settings.mail.templates else None
    try:
        missing = folder is not None and not folder.is_dir()
    except (OSError, ValueError):  # a name too long for the file system
        missing = True
    if folder is not None and missing:
        return [
            Problem(
                f"templates folder {folder} does not exist",
                "create it or fix the path",
                source,
                path="mail.templates",
            )
        ]
    if "fork" in multiprocessing.get_all_start_methods():
        result = _compile_bounded(folder, seconds, memory)
    else:  # pragma: no cover  (no fork: compile here, exceptions still become a problem)
        result = _compile_templates(folder)
    if isinstance(result, list):
        return result
    logger.warning("template check failed: %s", result)
    return [
        Problem(
            f"the templates cannot be compiled ({result})",
            "simplify or remove the template you changed last",
            source,
            path="mail.templates",
        )
    ]


def _compile_templates(folder: Path | None) -> list[Problem] | str:
    """The templates' problems, or the name of what stopped the check."""
    from worker import mail  # here, not at the top: mail imports jinja2

    try:
        return mail.check_templates(mail.environment(folder))
    except Exception as exc:  # MemoryError, RecursionError, OverflowError… from a template
        return type(exc).__name__


def _compile_bounded(folder: Path | None, seconds: float, memory: int) -> list[Problem] | str:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_compile_child, args=(folder, memory, send), daemon=True)
    with (
        warnings.catch_warnings()
    ):  # 3.12+ warns about fork beside threads; the child only compiles
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    send.close()
    result: list[Problem] | str
    try:
        if not receive.poll(seconds):
            result = f"took longer than {seconds:g} s"
        else:
            try:
                result = receive.recv()
            except (EOFError, OSError):
                result = "ran out of memory or crashed"
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receive.close()
    return result


def _compile_child(folder: Path | None, memory: int, send: Connection) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
    except (ImportError, OSError, ValueError):
        pass  # no such limit here: the time bound still holds
    result: list[Problem] | str
    try:
        result = _compile_templates(folder)
    except BaseException as exc:  # MemoryError past the limit, anything: one name for the parent
        result = type(exc).__name__
    try:
        send.send(result)
    finally:
        send.close()


def _plain(node: Any, cut: int | None = None) -> Any:
    """Plain dicts and lists for pydantic; with ``cut``, only the first ``cut`` items of each."""
    if isinstance(node, dict):
        return {k: _plain(v, cut) for k, v in itertools.islice(node.items(), cut)}
    if isinstance(node, list):
        return [_plain(v, cut) for v in itertools.islice(node, cut)]
    return node


class _Locator:
    """Maps a path of keys and indexes in the YAML tree to its line number."""

    def __init__(self, tree: YamlMap, file: str) -> None:
        self.tree, self.file = tree, file

    def line(self, loc: tuple[int | str, ...]) -> int | None:
        node: Any = self.tree
        line: int | None = 1
        for part in loc:
            found = (isinstance(node, YamlMap) and isinstance(part, str) and part in node) or (
                isinstance(node, YamlSeq) and isinstance(part, int) and 0 <= part < len(node)
            )
            if not found:
                break
            line, node = node.lines[part], node[part]
        return line

    def problem(self, loc: tuple[int | str, ...], what: str, fix: str) -> Problem:
        return Problem(what, fix, self.file, self.line(loc), _dotted(loc))


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(
    node: Any, loc: tuple[int | str, ...] = ()
) -> Iterator[tuple[tuple[int | str, ...], Any, Any]]:
    """Every ``(loc, key, value)`` of every mapping in the tree (its depth is bounded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, key), key, value
            yield from _walk(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*loc, i))


def _texts(
    node: Any, loc: tuple[int | str, ...] = ()
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every key and every text scalar in the tree, with its loc (the depth is bounded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, key), key
            yield from _texts(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _texts(value, (*loc, i))
    elif isinstance(node, str):
        yield loc, node


def _text_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """A control character (CR/LF too) in any key or text value: one line each."""
    problems: list[Problem] = []
    if not tree.controls:  # the reader saw none: skip the walk
        return problems
    for loc, text in _texts(tree):
        message = _control_message(text)
        if message:
            what, _, fix = message.partition(" — ")
            problems.append(locate.problem(loc, what, fix))
    return problems


def _secret_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    problems = []
    for loc, key, value in _walk(tree):
        if str(key).lower() in SECRET_KEYS and value not in (None, ""):
            problems.append(
                locate.problem(
                    loc,
                    "a secret must not be written in the config file",
                    "put it in an environment variable and write "
                    + (
                        f"`{key}_env: VARIABLE_NAME`"
                        if key != "password"
                        else "`password_env: SMTP_PASSWORD`"
                    ),
                )
            )
    return problems


def _reference_problems(tree: YamlMap, locate: _Locator) -> list[Problem]:
    """Cross-checks that need the whole file: teams name people, calendars name accounts.
    Linear in the size of the file: names are looked up in sets, hints are budgeted."""
    people = _items(tree.get("people"))
    teams = _items(tree.get("teams"))
    accounts = _items(tree.get("accounts"))
    emails: dict[str, int] = {}
    problems: list[Problem] = []
    for i, person in enumerate(people):
        if isinstance(person, Mapping) and isinstance(person.get("email"), str):
            email = person["email"].lower()
            if email in emails:
                problems.append(
                    locate.problem(
                        ("people", i, "email"),
                        f"{email} is listed twice",
                        "keep one entry per person",
                    )
                )
            emails.setdefault(email, i)
    known = list(emails)
    account_names = {str(a.get("name")) for a in accounts if isinstance(a, Mapping)}
    team_names = {str(t.get("name")) for t in teams if isinstance(t, Mapping)}

    def unknown_person(loc: tuple[int | str, ...], email: Any) -> None:
        if not isinstance(email, str) or email.lower() in emails or _CONTROL.search(email):
            return  # not text, or a control character (said by _text_problems)
        close = _close(email.lower(), known, cutoff=0.85)
        fix = f"did you mean {close}?" if close else "add them under people: or fix the address"
        problems.append(locate.problem(loc, f"{email} is not listed under people:", fix))

    for t, team in enumerate(teams):
        if not isinstance(team, Mapping):
            continue
        unknown_person(("teams", t, "leader"), team.get("leader"))
        for m, member in enumerate(_items(team.get("members"))):
            unknown_person(("teams", t, "members", m), member)
    for i, person in enumerate(people):
        calendar = person.get("calendar") if isinstance(person, Mapping) else None
        if (
            isinstance(calendar, Mapping)
            and "account" in calendar
            and str(calendar["account"]) not in account_names
        ):
            close = _close(str(calendar["account"]), sorted(account_names))
            fix = f"did you mean {close!r}?" if close else "add it under accounts: or fix the name"
            problems.append(
                locate.problem(
                    ("people", i, "calendar", "account"),
                    f"no account named {_shown(calendar['account'])}",
                    fix,
                )
            )
    audiences: list[tuple[tuple[int | str, ...], Any]] = []
    for r, rule in enumerate(_items(tree.get("protect"))):
        if isinstance(rule, Mapping) and "for" in rule:
            audiences.append((("protect", r, "for"), rule["for"]))
    emails_section = tree.get("emails")
    if isinstance(emails_section, Mapping):
        for program, section in emails_section.items():
            if isinstance(section, Mapping) and "to" in section:
                audiences.append((("emails", str(program), "to"), section["to"]))
    for loc, spec in audiences:
        if isinstance(spec, str) and spec.startswith("team:") and spec[5:] not in team_names:
            problems.append(
                locate.problem(
                    loc, f"no team named {_shown(spec[5:])}", "use a name listed under teams:"
                )
            )
        elif isinstance(spec, list):
            for k, email in enumerate(spec):
                unknown_person((*loc, k), email)
    return problems


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_BUILTIN_FIXES = {
    "missing": "add it",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "float_type": "write a number",
    "float_parsing": "write a number",
    "literal_error": "",
    "string_type": "write it as text",
    "model_type": "write it as a mapping of keys",
    "tuple_type": "write it as a list",
    "list_type": "write it as a list",
}


_BOUNDS = {
    "less_than_equal": ("le", "is too large", "the most is {}"),
    "less_than": ("lt", "is too large", "write less than {}"),
    "greater_than_equal": ("ge", "is too small", "the least is {}"),
    "greater_than": ("gt", "is too small", "write more than {}"),
}


def _problem_from(error: Mapping[str, Any], locate: _Locator) -> Problem:
    loc = _clean_loc(tuple(error["loc"]))
    kind = error["type"]
    shown = _shown(error.get("input"))
    if kind == "extra_forbidden" and loc:
        key = str(loc[-1])
        known = _known_keys(tuple(p for p in loc[:-1] if isinstance(p, str)))
        close = _close(key, known)
        fix = (
            f"did you mean {close!r}?"
            if close
            else "remove it (known keys: " + ", ".join(known) + ")"
        )
        return locate.problem(loc, f"unknown key {_shown(key)}", fix)
    message = str(error["msg"]).removeprefix("Value error, ") or "is not valid"
    if " — " in message:
        what, _, fix = message.partition(" — ")
        return locate.problem(loc, what, fix)
    if kind == "missing":
        return locate.problem(loc, "required key is missing", "add it")
    if kind == "literal_error":
        return locate.problem(loc, f"{shown} is not allowed", message[0].lower() + message[1:])
    if kind in _BOUNDS and isinstance(error.get("ctx"), Mapping):
        name, what, fix = _BOUNDS[kind]
        bound = error["ctx"].get(name)
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return locate.problem(loc, f"{shown} {what}", fix.format(bound))
    if kind == "finite_number":
        return locate.problem(loc, f"{shown} is not a finite number", "write a number")
    fix = _BUILTIN_FIXES.get(kind, "see config/example.yaml")
    return locate.problem(loc, f"{message[0].lower()}{message[1:]} (got {shown})", fix)


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's union/validator tags (``function-before[...]``, ``int``) from a loc."""
    out: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and (
            "[" in part
            or part in {"int", "float", "str", "list[str]", "timedelta", "function-after"}
        ):
            continue
        out.append(part)
    return tuple(out)


@functools.cache
def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return sorted(
        f.alias or n for n, f in model.model_fields.items() if n not in ("source", "base_dir")
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _all_keys(model: type[BaseModel] = Settings) -> set[str]:
    """Every key the YAML may hold, at any depth (the docs test checks each is documented)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if name in ("source", "base_dir"):
            continue
        keys.add(info.alias or name)
        inner = _model_in(info.annotation)
        if inner is not None:
            keys |= _all_keys(inner)
    return keys
