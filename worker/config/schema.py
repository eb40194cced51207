"""The sections of ``steadyhand.yaml`` as frozen pydantic models, and :class:`Settings`,
the whole file, with the resolved views the rest of the program reads."""

from __future__ import annotations

import difflib
import hashlib
import re
from datetime import time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.base import AccountSpec
from worker.config.emails import EmailsSettings
from worker.config.values import (
    DAY,
    MAX_NAME,
    WEEK,
    Audience,
    Bytes,
    Clock,
    DayDuration,
    Days,
    Duration,
    EnvName,
    Feed,
    Hours,
    KeepDuration,
    LongDuration,
    QueueUrl,
    StoreUrl,
    SyncEvery,
    Text,
    TimeRange,
    TimeZone,
    WebUrl,
    _address,
    _one_sender,
    _Section,
    _shown,
    parse_duration,
    parse_working_hours,
)
from worker.config.web import WebSettings
from worker.core.errors import ConfigError, Problem
from worker.core.model import CalendarRef, Person, SyncLimits, Team, redact_location

#: What makes a busy event a meeting (docs/metrics.md); unset means ``attendees``.
Meetings = Literal["attendees", "busy"]


# -- sections ----------------------------------------------------------------------------


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
    #: Calendars read at once, each on a thread of its own (a provider account's
    #: calendars still one call at a time: connectors.base.ParallelReads).
    concurrency: int = Field(8, ge=1, le=64)


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
    #: What counts as a meeting on this account's calendars, unless a calendar says.
    meetings: Meetings | None = None

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
    #: ``attendees``: a busy event with another person on it; ``busy``: every busy event.
    meetings: Meetings | None = None

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
    #: ``"13:00-17:00"``, parsed: (start, end) of one range of the day.
    time: TimeRange = (time(9), time(17))


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


class PrivacySettings(_Section):
    store_titles: bool = False
    min_team_size: int = Field(5, ge=1, le=10_000)
    #: Answers (a reflection's score and notes) last changed longer ago are deleted, daily.
    keep_answers: KeepDuration = timedelta(days=180)


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
    web: WebSettings = WebSettings()
    #: Who may sign in to /dashboard beside the leaders, and see every team.
    admins: tuple[Text, ...] = ()

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
        return self._persons

    @cached_property
    def _persons(self) -> tuple[Person, ...]:
        return tuple(
            Person(
                email=p.email,
                name=p.name or p.email.split("@")[0].title(),
                timezone=p.timezone or self.timezone,
                working_hours=p.working_hours or self.working_hours,
            )
            for p in self.people
        )

    @cached_property
    def _by_email(self) -> dict[str, tuple[Person, PersonSettings]]:
        """Each person and their settings by email: lookups stay O(1) with many people."""
        return {p.email: (p, s) for p, s in zip(self._persons, self.people, strict=True)}

    def person(self, email: str) -> Person:
        found = self._by_email.get(email.lower())
        if found is not None:
            return found[0]
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

    def meetings_from(self, email: str) -> Meetings:
        """``meetings:`` of the person's calendar, else of its account, else ``attendees``."""
        found = self._by_email.get(email.lower())
        cal = found[1].calendar if found else None
        if cal is None:
            return "attendees"
        account = next((a for a in self.accounts if a.name == cal.account), None)
        return cal.meetings or (account.meetings if account else None) or "attendees"

    def calendar_ref(self, email: str) -> CalendarRef | None:
        found = self._by_email.get(email.lower())
        settings = found[1] if found else None
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
                return CalendarRef(_fit_key(key), email, "ics", cal.ics, tz)
            key = _fit_key(f"{email}:ics:{cal.ics}")
            return CalendarRef(key, email, "ics", str(self.path(cal.ics)), tz)
        if cal.vdir is not None:
            key = _fit_key(f"{email}:vdir:{cal.vdir}")
            return CalendarRef(key, email, "vdir", str(self.path(cal.vdir)), tz)
        if cal.memory is not None:
            key = _fit_key(f"{email}:memory:{cal.memory}")
            return CalendarRef(key, email, "memory", cal.memory, tz)
        account = next(a for a in self.accounts if a.name == cal.account)
        return CalendarRef(
            _fit_key(f"{email}:{account.name}:{cal.id}"),
            email,
            account.kind,
            cal.id,
            tz,
            account.name,
        )


#: A calendar key is stored in columns of 300 characters (worker/store/).
MAX_KEY = 300


def _fit_key(key: str) -> str:
    """``key`` as it is, or, when longer than :data:`MAX_KEY`, its start and a hash of all
    of it: stable from run to run, and still telling two long keys apart."""
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{key[: MAX_KEY - len(digest) - 2]}…#{digest}"
