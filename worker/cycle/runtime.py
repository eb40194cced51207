"""The runtime a cycle works in, and the figures read through it.

:class:`Runtime` is what a cycle needs, built once per process from the settings (the
store, the mail transport, the clock, the calendar connectors); the functions here read a
person's stored events and figures through it. The cycle's other modules import this one;
it imports none of them. Nothing here reads the clock:
``now`` comes from the runtime's clock, which ``--now`` / ``STEADYHAND_NOW`` can fix.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr

from connectors import registry
from connectors.base import CalendarConnector, Closes, MailTransport
from connectors.secrets import TokenStore
from worker.config import Settings
from worker.core import analysis
from worker.core.errors import Problem, UserError
from worker.core.model import CalendarRef, Event, Person, Team, TimeRange, local_day_range
from worker.store import Store

logger = logging.getLogger(__name__)

#: Local kinds whose connector takes ``limits=`` (the ``sync:`` limits); the others are
#: bounded in :func:`_record` (at most ``sync.max_events`` events are stored).
LIMITED_KINDS = frozenset({"ics", "vdir"})


@dataclass
class Runtime:
    """What a cycle needs, built once per process from the settings."""

    settings: Settings
    store: Store
    transport: MailTransport
    clock: Callable[[], datetime]
    calendars: dict[tuple[str, str | None], CalendarConnector] = field(default_factory=dict)

    def connector(self, ref: CalendarRef) -> CalendarConnector:
        key = (ref.kind, ref.account)
        if key not in self.calendars:
            cls = registry.load(ref.kind)
            if ref.account is None and ref.kind in LIMITED_KINDS:
                self.calendars[key] = cls(limits=self.settings.sync_limits())
            elif ref.account is None:
                self.calendars[key] = cls()
            else:
                self.calendars[key] = cls(
                    self.settings.account_spec(ref.account),
                    token_store=TokenStore.from_env(self.settings.tokens_dir),
                )
        return self.calendars[key]

    def close(self) -> None:
        """Hang up every connection the connectors and the transport hold."""
        for closeable in (*self.calendars.values(), self.transport):
            close = closeable.close if isinstance(closeable, Closes) else None
            if close is not None:
                close()
        self.calendars.clear()
        self.store.close()

    def refs(self, person: str | None = None) -> list[CalendarRef]:
        emails = [person.lower()] if person else [p.email for p in self.settings.people]
        if person:
            self.settings.person(person)  # unknown person: a ConfigError naming the fix
        return [r for r in (self.settings.calendar_ref(e) for e in emails) if r is not None]


def build_transport(settings: Settings) -> MailTransport:
    kind = settings.mail.transport
    cls = registry.load_transport(kind)
    if kind == "outbox":
        return cls(settings.path(settings.mail.outbox))  # type: ignore[no-any-return]
    if kind == "smtp" and settings.mail.smtp is not None:
        s = settings.mail.smtp
        context = ssl.create_default_context(
            cafile=str(settings.path(s.ca_file)) if s.ca_file else None
        )
        return cls(s.host, s.port, s.security, s.username, s.password_env, s.timeout, context)  # type: ignore[no-any-return]
    if kind in ("gmail", "outlook") and settings.mail.account:
        sender = parseaddr(settings.mail.from_)[1]
        spec = settings.account_spec(settings.mail.account)
        tokens = TokenStore.from_env(settings.tokens_dir)
        return cls(spec, sender, token_store=tokens)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]


# -- analysis --------------------------------------------------------------------------


def policy(settings: Settings) -> analysis.Policy:
    o = settings.overload
    return analysis.Policy(
        max_meeting_load=o.max_meeting_load,
        max_chain_minutes=o.max_chain_minutes,
        back_to_back_gap=o.back_to_back_gap,
        focus_min=o.focus_min,
        min_focus_minutes=o.min_focus_minutes,
        max_after_hours_minutes=o.max_after_hours_minutes,
    )


def person_events(rt: Runtime, person: Person, start: date, end: date) -> list[Event]:
    """The person's stored events touching local days ``start``..``end`` (inclusive)."""
    span = TimeRange(local_day_range(start, person.tz).start, local_day_range(end, person.tz).end)
    return rt.store.events_for(person.email, span, person.tz)


def day_metrics(rt: Runtime, person: Person, start: date, end: date) -> list[analysis.DayMetrics]:
    """The person's figures, meetings counted as their calendar's ``meetings:`` says."""
    events = person_events(rt, person, start, end)
    meetings_from = rt.settings.meetings_from(person.email)
    return analysis.analyze_days(
        person, events, start, end, policy(rt.settings), meetings_from=meetings_from
    )


def select(
    settings: Settings, person: str | None = None, team: str | None = None
) -> tuple[list[Person], list[Team]]:
    """The people (and teams) an ``analyze`` is about: one person, one team, or everyone."""
    teams = list(settings.team_models())
    if person:
        return [settings.person(person)], []
    if team:
        found = [t for t in teams if t.name == team]
        if not found:
            known = ", ".join(t.name for t in teams) or "none configured"
            raise UserError(Problem(f"no team named {team!r}", f"teams: {known}"))
        return [settings.person(e) for e in found[0].everyone], found
    return list(settings.persons()), teams
