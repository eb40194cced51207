"""Orchestration: connectors -> pure core -> store -> mail. The one place they meet.

Entry points (CLI commands, Huey tasks) resolve settings into a :class:`Runtime` and call
one function here. Nothing here reads the clock: ``now`` comes from the runtime's clock,
which ``--now`` / ``STEADYHAND_NOW`` can fix.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from connectors import registry
from connectors.base import CalendarConnector, MailTransport
from connectors.secrets import TokenStore
from worker import mail, report
from worker.config import Settings
from worker.core import analysis
from worker.core.errors import PermanentError, Problem, SteadyhandError, TransientError, UserError
from worker.core.model import CalendarRef, Event, Person, Team, TimeRange, local_day_range
from worker.cycle.sync import SyncReport, sync, sync_window
from worker.store import OutboxRow, Store

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 8
#: Who holds a claim: this host and process (see Store.release_dead_claims).
CLAIMER = f"{socket.gethostname()}:{os.getpid()}"
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
            close = getattr(closeable, "close", None)
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


def ensure_synced(
    rt: Runtime, people: Sequence[Person], span: TimeRange, now: datetime
) -> list[SyncReport]:
    """Sync the calendars of ``people`` that were never read, or not for ``span``."""
    default = sync_window(rt.settings, now)
    wanted = TimeRange(min(default.start, span.start), max(default.end, span.end))
    stale = []
    for p in people:
        ref = rt.settings.calendar_ref(p.email)
        if ref is None:
            continue
        state = rt.store.sync_state(ref.key)
        covered = (
            state is not None
            and state.window is not None
            and (state.window.start <= span.start and span.end <= state.window.end)
        )
        if not covered:
            stale.append(ref)
    if not stale:
        return []
    return sync(rt, now, refs=stale, window=wanted)


def load_report(
    rt: Runtime,
    now: datetime,
    start: date,
    end: date,
    person: str | None = None,
    team: str | None = None,
) -> tuple[dict[str, Any], list[SyncReport]]:
    """The load report (docs/metrics.md) for ``start``..``end``, syncing first where the
    store has no data."""
    people, teams = select(rt.settings, person, team)
    span = (
        TimeRange(
            min(local_day_range(start, p.tz).start for p in people),
            max(local_day_range(end, p.tz).end for p in people),
        )
        if people
        else TimeRange(now, now)
    )
    synced = ensure_synced(rt, people, span, now)
    rows, sources = [], {}
    for p in people:
        events = person_events(rt, p, start, end)
        meetings_from = rt.settings.meetings_from(p.email)
        sources[p.email] = analysis.meeting_source(events, p, start, end, meetings_from)
        days = analysis.analyze_days(
            p, events, start, end, policy(rt.settings), meetings_from=meetings_from
        )
        rows.append((p, days))
    built = report.build(
        start, end, rows, teams, rt.settings.privacy.min_team_size, sources=sources
    )
    return built, synced


# -- emails ----------------------------------------------------------------------------


def decide_emails(rt: Runtime, now: datetime) -> list[int]:
    """Write an outbox row for every send that is due and not yet decided; return new ids
    (the programs and their rules are in :mod:`worker.cycle.decide`)."""
    from worker.cycle import decide as emails

    return emails.decide(rt, now)


@dataclass(frozen=True, slots=True)
class Delivery:
    row_id: int
    key: str
    outcome: str  # sent | written | unsubscribed | dropped | skipped | retry | failed
    detail: str = ""


#: Outcomes of a row that is done with nothing sent: the recipient opted out, or a
#: reflection was too late for its words to be true (``detail`` says why).
NOT_SENT = ("unsubscribed", "dropped")


def deliver(rt: Runtime, row_id: int, now: datetime) -> Delivery:
    """Claim outbox row ``row_id``, carry it out (send the email or write the calendar
    change), and record the outcome. Safe to call twice: a second claim finds it done.

    The outcome says what happened: ``sent``, ``written`` (a calendar change),
    ``unsubscribed`` or ``dropped`` (done, nothing sent: see :data:`NOT_SENT`), ``skipped``
    (this call did nothing: not due, taken, or done), ``retry`` or ``failed``."""
    row = rt.store.claim(row_id, now, LEASE, CLAIMER)
    if row is None:
        return Delivery(row_id, "", "skipped", "not due, taken by another worker, or done")
    try:
        if row.kind == "calendar":
            from worker.cycle import protect as protection

            outcome, detail = "written", protection.execute(rt, row, now)
        else:
            outcome, detail = _send_email(rt, row, now)
    except TransientError as exc:
        retry_at = None if row.attempts >= MAX_ATTEMPTS else now + _backoff(row.attempts, exc)
        rt.store.fail(row_id, str(exc), now, retry_at)
        logger.warning("row %s %s failed, retry at %s: %s", row_id, row.key, retry_at, exc)
        return Delivery(row_id, row.key, "retry" if retry_at else "failed", str(exc))
    except (PermanentError, SteadyhandError) as exc:
        rt.store.fail(row_id, str(exc), now, None)
        rt.store.audit(
            f"{row.kind}_failed",
            now,
            person=row.recipient,
            subject=row.key,
            detail={"error": str(exc)},
        )
        logger.error("row %s %s failed for good: %s", row_id, row.key, exc)
        return Delivery(row_id, row.key, "failed", str(exc))
    except Exception as exc:  # not ours (a template's OverflowError, a bug): this row only
        return _poison(rt, row, exc, now)
    # The stored result keeps its words: ``unsubscribed``, ``dropped: why``, or what was done.
    stored = {"unsubscribed": "unsubscribed", "dropped": f"dropped: {detail}"}.get(outcome, detail)
    rt.store.complete(row_id, stored, now)
    logger.debug("row %s %s done: %s", row_id, row.key, outcome)
    return Delivery(row_id, row.key, outcome, detail)


#: Exceptions that are not ours and will not pass by retrying: the row fails at once.
NOT_TRANSIENT = (ArithmeticError, LookupError, MemoryError, RecursionError, TypeError, ValueError)


def _poison(rt: Runtime, row: OutboxRow, exc: Exception, now: datetime) -> Delivery:
    """A row whose work raised an exception that is not ours: recorded as failed with the
    reason (at once when retrying cannot help, else after MAX_ATTEMPTS), never left claimed."""
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"[:300]
    give_up = isinstance(exc, NOT_TRANSIENT) or row.attempts >= MAX_ATTEMPTS
    retry_at = None if give_up else now + _backoff(row.attempts, TransientError(reason))
    try:
        rt.store.fail(row.id, reason, now, retry_at)
        if retry_at is None:
            rt.store.audit(
                f"{row.kind}_failed",
                now,
                person=row.recipient,
                subject=row.key,
                detail={"error": reason},
            )
    except Exception as store_exc:  # the store is down too: the lease expires, a sweep retries
        logger.error("row %s: could not record its failure: %s", row.id, store_exc)
    logger.error(
        "row %s %s failed (%s): %s",
        row.id,
        row.key,
        "for good" if give_up else f"retry at {retry_at}",
        reason,
    )
    logger.debug("row %s traceback", row.id, exc_info=exc)
    return Delivery(row.id, row.key, "failed" if give_up else "retry", reason)


def _send_email(rt: Runtime, row: OutboxRow, now: datetime) -> tuple[str, str]:
    """Send the row's email: ``("sent", what the transport said)``, or ``("unsubscribed",
    "unsubscribed")`` / ``("dropped", why)`` when it is done without sending."""
    from worker.cycle import sending

    if rt.store.is_unsubscribed(row.recipient, row.program):
        rt.store.audit(
            "not_sent", now, person=row.recipient, subject=row.key, detail={"why": "unsubscribed"}
        )
        logger.debug("not sending %s: %s unsubscribed", row.key, row.recipient)
        return "unsubscribed", "unsubscribed"
    person = rt.settings.person(row.recipient)
    env = mail.environment(
        rt.settings.path(rt.settings.mail.templates) if rt.settings.mail.templates else None
    )
    link = mail.unsubscribe_link(rt.settings.mail.unsubscribe_url, person.email, row.program)
    try:
        filled = sending.fill_at_send_time(rt, row.program, row.payload, now)
    except sending.TooLate as late:  # its words could no longer be true: dropped, not failed
        rt.store.audit(
            "dropped", now, person=row.recipient, subject=row.key, detail={"why": str(late)}
        )
        logger.info("not sending %s: %s", row.key, late)
        return "dropped", str(late)
    payload = {**filled, "unsubscribe_url": link}
    if row.program == "bundle":
        payload = mail.bundle_context(env, payload)
    subject, text, html = mail.render(env, row.program, payload)
    message = mail.build(
        sender=rt.settings.mail.from_,
        to=[mail.recipient(person.name, person.email)],
        cc=[mail.recipient(rt.settings.person(e).name, e) for e in payload.get("_cc", [])],
        subject=subject,
        text=text,
        html=html,
        key=row.key,
        program=row.program,
        sent_at=now,
        unsubscribe_url=link,
    )
    sent = rt.transport.send(message)
    logger.debug("sent %s via %s", row.key, rt.transport.name)
    return "sent", sent


def _backoff(attempts: int, exc: TransientError) -> timedelta:
    wait: timedelta = min(RETRY_CAP, RETRY_BASE * (1 << max(0, attempts - 1)))
    if exc.retry_after is not None:
        wait = max(wait, timedelta(seconds=exc.retry_after))
    return wait


# -- the cycle -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CycleReport:
    syncs: Sequence[SyncReport]
    decided: Sequence[int]
    deliveries: Sequence[Delivery]


def tick(rt: Runtime, now: datetime) -> tuple[list[SyncReport], list[int]]:
    """The per-minute work: sync calendars that are due, re-plan the protected blocks of
    the people whose calendar was just read (writing the changes), decide due emails."""
    from worker.cycle import protect as protection

    reports = sync(rt, now, only_due=True)
    protection.replan(rt, now, reports)
    return reports, decide_emails(rt, now)


def run_cycle(rt: Runtime, now: datetime) -> CycleReport:
    """One full cycle inline: sync everything, re-plan blocks, decide, deliver every due row."""
    from worker.cycle import protect as protection

    reports = sync(rt, now)
    written = protection.replan(rt, now, reports)
    decided = decide_emails(rt, now)
    try:
        deliveries = written + [deliver(rt, row_id, now) for row_id in rt.store.due_ids(now)]
    finally:
        close = getattr(rt.transport, "close", None)
        if close is not None:
            close()  # the batch is over: hang up
    return CycleReport(reports, decided, deliveries)
