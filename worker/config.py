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
import hashlib
import itertools
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from connectors.base import AccountSpec, ConfigError, Problem
from worker.model import (
    WEEKDAYS,
    CalendarRef,
    Person,
    SyncLimits,
    Team,
    WorkingHours,
    redact_location,
)

ENV_VAR = "STEADYHAND_CONFIG"
DEFAULT_NAME = "steadyhand.yaml"
SECRET_KEYS = frozenset(
    {"password", "secret", "client_secret", "token", "access_token", "refresh_token", "api_key"}
)

# -- scalar parsers: each raises ValueError("what — how to fix") ------------------------

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    match = _DURATION.match(text) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration — write it like 45m, 2h, 1h30m or 4w")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(days=d, hours=h, minutes=m, seconds=s)


def _parse_weeks(value: Any) -> timedelta:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*w\s*", value):
        return timedelta(weeks=int(value.strip()[:-1]))
    return parse_duration(value)


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


def check_timezone(value: Any) -> str:
    name = str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), 1)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name like Europe/Berlin"
        raise ValueError(f"unknown time zone {name!r} — {hint}") from None
    return name


def check_env_name(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(value)):
        raise ValueError(
            f"{value!r} is not an environment variable name — put the secret in an environment "
            "variable and write its name here, e.g. SMTP_PASSWORD"
        )
    return str(value)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
LongDuration = Annotated[timedelta, BeforeValidator(_parse_weeks)]
Clock = Annotated[time, BeforeValidator(parse_clock)]
Days = Annotated[frozenset[int], BeforeValidator(parse_days)]
Hours = Annotated[WorkingHours, BeforeValidator(parse_working_hours)]
TimeZone = Annotated[str, BeforeValidator(check_timezone)]
EnvName = Annotated[str, BeforeValidator(check_env_name)]


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
    every: Duration = timedelta(minutes=15)
    #: Per calendar: at most this many events (recurring instances included) are kept;
    #: a series that would go past it is cut and the calendar reported ``truncated``.
    max_events: int = Field(50_000, ge=1, le=10_000_000)
    #: Per calendar file or feed: a body larger than this is refused in one line.
    max_bytes: Bytes = Field(25 * 1024**2, ge=1024, le=1024**3)
    #: Per feed: the whole download (connect, redirects, body) must end within this.
    feed_timeout: Duration = Field(timedelta(seconds=60), gt=timedelta(0), le=timedelta(hours=1))


class AccountSettings(_Section):
    name: str
    kind: Literal["google", "outlook", "caldav"]
    auth: str | None = None
    client_secrets: Path | None = None
    key_file: Path | None = None
    token_env: EnvName | None = None
    api_endpoint: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: EnvName | None = None
    graph_endpoint: str | None = None
    url: str | None = None
    username: str | None = None
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

    account: str | None = None
    id: str = "primary"
    ics: str | None = None
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


class PersonSettings(_Section):
    email: str
    name: str | None = None
    timezone: TimeZone | None = None
    working_hours: Hours | None = None
    calendar: CalendarSettings | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+", value):
            raise ValueError(f"{value!r} is not an email address — write it as name@example.com")
        return value.lower()


class TeamSettings(_Section):
    name: str
    leader: str
    members: tuple[str, ...] = ()


class OverloadSettings(_Section):
    max_meeting_load: float = Field(0.6, gt=0, le=1)
    max_chain_minutes: float = Field(180, gt=0)
    back_to_back_gap: Duration = timedelta(minutes=5)
    focus_min: Duration = timedelta(minutes=120)
    min_focus_minutes: float = Field(60, ge=0)
    max_after_hours_minutes: float = Field(30, ge=0)


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
    for_: str | list[str] = Field("everyone", alias="for")
    duration: Duration | None = None
    min_duration: Duration | None = None
    max_duration: Duration | None = None
    per_week: int | Duration | None = None
    per_day: int | Duration | None = None
    min_block: Duration | None = None
    after_chain: Duration | None = None
    after_overloaded_day: Duration | None = None
    window: WindowSettings | None = None
    earliest: Clock | None = None
    latest: Clock | None = None
    show_as: Literal["busy", "free"] = "busy"
    title: str | None = None
    defend: Literal["decline", "hold"] = "hold"

    @field_validator("per_week", "per_day", mode="before")
    @classmethod
    def _count_or_duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SmtpSettings(_Section):
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: EnvName | None = None
    timeout: float = 30
    ca_file: Path | None = None


class MailSettings(_Section):
    from_: str = Field("Steadyhand <steadyhand@localhost>", alias="from")
    transport: Literal["outbox", "smtp", "gmail", "outlook", "memory"] = "outbox"
    outbox: Path = Path("var/outbox")
    smtp: SmtpSettings | None = None
    account: str | None = None
    max_per_day: int = Field(2, ge=1)
    unsubscribe_url: str | None = None
    templates: Path | None = None

    @model_validator(mode="after")
    def _transport_needs(self) -> MailSettings:
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("transport smtp needs an smtp: section — add host, port, security")
        if self.transport in ("gmail", "outlook") and not self.account:
            raise ValueError(f"transport {self.transport} needs account: — name the account")
        return self


class ReflectionSettings(_Section):
    to: str | list[str] = "leaders"
    at: Clock = time(16, 30)
    days: Days = frozenset(range(5))
    within: Duration = timedelta(hours=4)


class WeeklySettings(_Section):
    to: str | list[str] = "leaders"
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
    delay: Duration = timedelta(minutes=30)


class OverloadMailSettings(_Section):
    to: Literal["person"] = "person"
    notify_leader: bool = False
    lookahead: Duration = timedelta(days=1)


class EmailsSettings(_Section):
    """A program runs only when it has a section here."""

    reflection: ReflectionSettings | None = None
    recognition: WeeklySettings | None = None
    followup: FollowupSettings | None = None
    overload: OverloadMailSettings | None = None
    digest: WeeklySettings | None = None


class PrivacySettings(_Section):
    store_titles: bool = False
    min_team_size: int = Field(5, ge=1)


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
    store: str = "sqlite:///var/steadyhand.db"
    queue: str = "sqlite:///var/queue.db"
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
    settings, problems = _load(Path(path))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def check(path: Path | str) -> list[Problem]:
    """Every problem in the config at ``path`` (empty when it is fine)."""
    return _load(Path(path))[1]


def _load(path: Path) -> tuple[Settings | None, list[Problem]]:
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem("file not found", "check the path or run `steadyhand init`", shown)]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(f"cannot read it: {exc}", "check the file", shown)]
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = f"YAML syntax error: {exc.problem or exc.context}"
        return None, [Problem(what, "fix the indentation or quoting on that line", shown, line)]
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        return None, [
            Problem(
                "the file must be a YAML mapping of sections", "see config/example.yaml", shown, 1
            )
        ]
    locate = _Locator(tree, shown)
    problems = _secret_problems(tree, locate) + _reference_problems(tree, locate)
    settings = None
    try:
        settings = Settings.model_validate(
            {**_plain(tree), "source": path, "base_dir": path.parent.resolve()}
        )
    except ValidationError as exc:
        problems += [_problem_from(error, locate) for error in exc.errors()]
    secret_paths = {p.path for p in problems if "secret" in p.what}
    problems = [p for p in problems if not (p.path in secret_paths and "unknown key" in p.what)]
    problems = sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.what))
    return (settings if not problems else None), problems


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


class _Locator:
    """Maps a path of keys and indexes in the YAML tree to its line number."""

    def __init__(self, tree: CommentedMap, file: str) -> None:
        self.tree, self.file = tree, file

    def line(self, loc: tuple[int | str, ...]) -> int | None:
        node: Any = self.tree
        line: int | None = 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
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
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            yield (*loc, str(key)), key, value
            yield from _walk(value, (*loc, str(key)))
    elif isinstance(node, CommentedSeq):
        for i, value in enumerate(node):
            yield from _walk(value, (*loc, i))


def _secret_problems(tree: CommentedMap, locate: _Locator) -> list[Problem]:
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


def _reference_problems(tree: CommentedMap, locate: _Locator) -> list[Problem]:
    """Cross-checks that need the whole file: teams name people, calendars name accounts."""
    people = tree.get("people") or []
    teams = tree.get("teams") or []
    accounts = tree.get("accounts") or []
    emails: list[str] = []
    problems: list[Problem] = []
    for i, person in enumerate(people if isinstance(people, list) else []):
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
            emails.append(email)
    account_names = (
        [a.get("name") for a in accounts if isinstance(a, Mapping)]
        if isinstance(accounts, list)
        else []
    )
    team_names = (
        [t.get("name") for t in teams if isinstance(t, Mapping)] if isinstance(teams, list) else []
    )

    def unknown_person(loc: tuple[int | str, ...], email: Any) -> None:
        if isinstance(email, str) and email.lower() not in emails:
            close = difflib.get_close_matches(email.lower(), emails, 1, cutoff=0.85)
            fix = (
                f"did you mean {close[0]}?"
                if close
                else "add them under people: or fix the address"
            )
            problems.append(locate.problem(loc, f"{email} is not listed under people:", fix))

    for t, team in enumerate(teams if isinstance(teams, list) else []):
        if not isinstance(team, Mapping):
            continue
        unknown_person(("teams", t, "leader"), team.get("leader"))
        members = team.get("members") or []
        for m, member in enumerate(members if isinstance(members, list) else []):
            unknown_person(("teams", t, "members", m), member)
    for i, person in enumerate(people if isinstance(people, list) else []):
        calendar = person.get("calendar") if isinstance(person, Mapping) else None
        if (
            isinstance(calendar, Mapping)
            and "account" in calendar
            and calendar["account"] not in account_names
        ):
            close = difflib.get_close_matches(
                str(calendar["account"]), [str(a) for a in account_names], 1
            )
            fix = (
                f"did you mean {close[0]!r}?" if close else "add it under accounts: or fix the name"
            )
            problems.append(
                locate.problem(
                    ("people", i, "calendar", "account"),
                    f"no account named {calendar['account']!r}",
                    fix,
                )
            )
    audiences: list[tuple[tuple[int | str, ...], Any]] = []
    for r, rule in enumerate(tree.get("protect") or []):
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
                locate.problem(loc, f"no team named {spec[5:]!r}", "use a name listed under teams:")
            )
        elif isinstance(spec, list):
            for k, email in enumerate(spec):
                unknown_person((*loc, k), email)
    return problems


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


def _problem_from(error: Mapping[str, Any], locate: _Locator) -> Problem:
    loc = _clean_loc(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(key, known, 1, cutoff=0.6)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else "remove it (known keys: " + ", ".join(known) + ")"
        )
        return locate.problem(loc, f"unknown key {key!r}", fix)
    message = str(error["msg"]).removeprefix("Value error, ")
    if " — " in message:
        what, _, fix = message.partition(" — ")
        return locate.problem(loc, what, fix)
    if kind == "missing":
        return locate.problem(loc, "required key is missing", "add it")
    if kind == "literal_error":
        return locate.problem(
            loc, f"{error.get('input')!r} is not allowed", message[0].lower() + message[1:]
        )
    fix = _BUILTIN_FIXES.get(kind, "see config/example.yaml")
    return locate.problem(
        loc, f"{message[0].lower()}{message[1:]} (got {error.get('input')!r})", fix
    )


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


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
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
