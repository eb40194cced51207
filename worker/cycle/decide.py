"""The email programs (docs/architecture.md): who gets which email when, decided into the outbox.

Each program (:data:`worker.programs.PROGRAMS`, one module each) says when it is due
and what its template values are, from plain values; this module fetches those values
from the store and the settings (the Runtime goes no further down), and writes an outbox
row for each send that is due now. Rules for every program:

* never to someone who unsubscribed (from that program or from all), nor for a day
  someone paused (up to and including their ``paused_until``, in their zone: it resumes
  the day after);
* at most ``mail.max_per_day`` emails a recipient's local day: beyond that the sends are
  **bundled** into one email (and if the day's quota is used up, that bundle waits for
  their next working morning) — never dropped;
* a follow-up's commitments are read from the 1:1's description when it is sent, and
  never stored; a reflection's words about its days are made when it is sent
  (:mod:`worker.cycle.deliver`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

from worker.core import analysis, schedule
from worker.core.errors import Problem, UserError
from worker.core.model import Person, local_day_range, wall_time
from worker.cycle import checkins, pulses
from worker.cycle.deliver import fill_at_send_time
from worker.cycle.figures import load_report
from worker.cycle.runtime import Runtime, day_metrics, person_events, policy
from worker.programs import (
    PREVIEWED,
    PROGRAMS,
    bundle,
    digest,
    followup,
    overload,
    recognition,
    reflection,
)
from worker.programs import recognize as note

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Lower sorts first when sends compete for a recipient's daily quota.
PRIORITY = {name: p.PRIORITY for name, p in PROGRAMS.items()}


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A send that is not due yet (or is due now), for summaries and ``doctor``."""

    program: str
    recipient: str
    period: str
    at: datetime
    state: str  # due | scheduled | sent


@dataclass(frozen=True)
class Candidate:
    due: schedule.Due
    build: Callable[[], dict[str, Any]]
    cc: tuple[str, ...] = ()


def _away(rt: Runtime, person: Person, now: datetime) -> set[date]:
    today = now.astimezone(person.tz).date()
    events = person_events(rt, person, today - timedelta(days=8), today + timedelta(days=21))
    days = [today - timedelta(days=8) + timedelta(days=i) for i in range(30)]
    return analysis.away_dates(events, person, days)


def _contained(
    rt: Runtime, now: datetime, person: str, program: str, work: Callable[[], T]
) -> T | None:
    """``work()`` for one person and program; an exception is theirs alone: logged once
    with both, audited, and None returned so the decisions for everyone else go on."""
    try:
        return work()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        logger.error("decide %s for %s failed: %s", program, person, reason)
        logger.debug("decide %s for %s traceback", program, person, exc_info=exc)
        try:
            rt.store.audit(
                "decide_failed", now, person=person, subject=program, detail={"error": reason}
            )
        except Exception as store_exc:  # the store itself is down: the log line stays
            logger.error("decide %s for %s: could not audit: %s", program, person, store_exc)
        return None


def candidates(rt: Runtime, now: datetime) -> list[Candidate]:
    """Every send of every program that is due at ``now`` (decided or not)."""
    return [c for c in scheduled(rt, now) if c.due.is_due(now)]


def scheduled(rt: Runtime, now: datetime) -> list[Candidate]:
    """Every program's next send per recipient, due now or later (for summaries)."""
    s = rt.settings
    out: list[Candidate] = []
    e = s.emails
    people = {p.email: p for p in s.persons()}
    # One person's failure (a store read, data that breaks a program) is theirs alone.
    found = {
        email: _contained(rt, now, email, "away", partial(_away, rt, p, now))
        for email, p in people.items()
    }
    away = {email: days for email, days in found.items() if days is not None}
    people = {email: p for email, p in people.items() if email in away}
    if e.reflection is not None:
        for email in s.audience(e.reflection.to):
            if email in people:
                work = partial(_reflection_due, rt, people[email], now, away[email])
                out += _contained(rt, now, email, reflection.NAME, work) or []
    weekly = ((recognition, e.recognition, _recognition), (digest, e.digest, _digest))
    for program, section, build in weekly:
        if section is None:
            continue
        for email in s.audience(section.to):
            if email not in people:
                continue
            p = people[email]
            due = program.due(p, section.weekday, section.clock, now, away[email])
            if due is not None:
                out.append(Candidate(due, partial(build, rt, p, due, now)))
    if e.overload is not None:
        for p in people.values():
            dues = partial(_overload_dues, rt, p, now, away[p.email], people)
            out += _contained(rt, now, p.email, overload.NAME, dues) or []
    if e.followup is not None:
        out += _followups(rt, people, away, now, e.followup.delay)
    out += pulses.dues(rt, people, away, now)
    out += [Candidate(d, b) for d, b in checkins.scheduled(rt, now, people, away, _contained)]
    return out


def _reflection_due(rt: Runtime, p: Person, now: datetime, away: set[date]) -> list[Candidate]:
    section = rt.settings.emails.reflection
    assert section is not None
    due = reflection.due(p, section.at, section.days, section.within, now, away)
    if due is None:
        return []
    day = date.fromisoformat(due.period)
    return [Candidate(due, partial(reflection_context, rt, p, day))]


def _overload_dues(
    rt: Runtime, p: Person, now: datetime, away: set[date], people: dict[str, Person]
) -> list[Candidate]:
    section = rt.settings.emails.overload
    assert section is not None
    due = overload.due(p, now, away)
    if due is None or not due.is_due(now):
        return []
    ctx = _overload(rt, p, date.fromisoformat(due.period), section.lookahead)
    if ctx is None:
        return []
    out = [Candidate(due, partial(dict, ctx))]
    if section.notify_leader:
        for team in rt.settings.team_models():
            if p.email in team.members and team.leader in people:
                lead_due = overload.leader_due(people[team.leader], p, due)
                out.append(Candidate(lead_due, partial(dict, ctx)))
    return out


def decide(rt: Runtime, now: datetime) -> list[int]:
    """Outbox rows for every due send not decided before; returns the new row ids."""
    due = candidates(rt, now)
    known = rt.store.known_keys(c.due.key for c in due)
    pauses: dict[str, date | None] = {}
    fresh = [
        c
        for c in due
        if c.due.key not in known
        and not rt.store.is_unsubscribed(c.due.recipient, c.due.program)
        and not _paused(rt, c.due, pauses)
    ]
    by_recipient: dict[str, list[Candidate]] = {}
    for c in sorted(fresh, key=lambda c: (PRIORITY.get(c.due.program, 9), c.due.key)):
        by_recipient.setdefault(c.due.recipient, []).append(c)
    ids: list[int] = []
    for email, items in by_recipient.items():
        ids += (
            _contained(rt, now, email, "decide", partial(_decide_one, rt, email, items, now)) or []
        )
    return ids


def _paused(rt: Runtime, due: schedule.Due, pauses: dict[str, date | None]) -> bool:
    """Whether ``due`` falls in its recipient's pause: the day of its due moment, in their
    zone, is on or before their ``paused_until`` (``pauses`` keeps each one read once)."""
    if due.recipient not in pauses:
        pauses[due.recipient] = rt.store.paused_until(due.recipient)
    until = pauses[due.recipient]
    if until is None:
        return False
    return due.at.astimezone(rt.settings.person(due.recipient).tz).date() <= until


def _decide_one(rt: Runtime, email: str, items: Sequence[Candidate], now: datetime) -> list[int]:
    """One recipient's rows: each send alone within the day's quota, the rest bundled; a
    send whose values cannot be built is skipped (and audited), the others still go."""
    ids: list[int] = []
    person = rt.settings.person(email)
    today = local_day_range(now.astimezone(person.tz).date(), person.tz)
    sent = rt.store.emails_sent(email, today)
    alone, bundled = schedule.cap_per_day(
        [c.due for c in items], person, sent, rt.settings.mail.max_per_day
    )
    keep = {d.key for d in alone}
    for c in items:
        if c.due.key in keep:
            row = _contained(rt, now, email, c.due.program, partial(_enqueue, rt, c, now))
            if row is not None:
                ids.append(row)
    if bundled:
        row = _bundle(rt, person, [c for c in items if c.due.key not in keep], now, sent)
        if row is not None:
            ids.append(row)
    return ids


def _enqueue(rt: Runtime, c: Candidate, now: datetime) -> int | None:
    payload = c.build()
    if c.cc:
        payload = {**payload, "_cc": list(c.cc)}
    d = c.due
    row = rt.store.enqueue(d.key, "email", d.program, d.recipient, d.period, d.at, payload, now)
    if row is not None:
        logger.info("decided %s as outbox row %s", d.key, row)
    return row


def _bundle(
    rt: Runtime, person: Person, items: Sequence[Candidate], now: datetime, sent: int
) -> int | None:
    """One email carrying several sends; waits for the next working morning when the
    day's quota is already used up."""
    today = now.astimezone(person.tz).date()
    at = now
    if sent >= rt.settings.mail.max_per_day:
        tomorrow = local_day_range(today + timedelta(days=1), person.tz).start
        at = schedule.next_allowed(tomorrow, person, _away(rt, person, now)) or tomorrow
    key = bundle.key(person, at.astimezone(person.tz).date())
    parts, built = [], []
    for c in items:  # a part whose values cannot be built is left out (and audited)
        values = _contained(rt, now, person.email, c.due.program, c.build)
        if values is not None:
            parts.append({"key": c.due.key, "program": c.due.program, "payload": values})
            built.append(c)
    if not parts:
        return None
    items = built
    payload = bundle.context(person, parts)
    row = rt.store.enqueue(
        key, "email", bundle.NAME, person.email, at.date().isoformat(), at, payload, now
    )
    if row is None:
        return None
    for c in items:
        rt.store.enqueue(
            c.due.key,
            "email",
            c.due.program,
            c.due.recipient,
            c.due.period,
            at,
            {},
            now,
            status="done",
            result=f"bundled:{key}",
        )
    rt.store.audit(
        "bundled",
        now,
        person=person.email,
        subject=key,
        detail={"parts": [c.due.key for c in items], "why": "mail.max_per_day reached"},
    )
    return row


# -- program values: fetched here, worded in worker.programs -------------------------


def reflection_context(rt: Runtime, person: Person, day: date) -> dict[str, Any]:
    """The reflection's values as decided (:func:`worker.programs.reflection.context`),
    from the person's events, figures and protected blocks in the store."""
    first, last = reflection.ahead(day)
    events = person_events(rt, person, first, last)
    following = reflection.next_day(person, day, events)
    blocks = [
        (b.title, b.start, b.end) for b in rt.store.blocks_of(person.email) if b.status == "managed"
    ]
    return reflection.context(
        person,
        day,
        following,
        day_metrics(rt, person, day, following),
        events,
        rt.settings.meetings_from(person.email),  # as day_metrics counted them
        blocks,
    )


def _team_of_leader(rt: Runtime, leader: Person) -> list[Any]:
    return [t for t in rt.settings.team_models() if t.leader == leader.email]


def _recognition(rt: Runtime, leader: Person, due: schedule.Due, now: datetime) -> dict[str, Any]:
    end = now.astimezone(leader.tz).date() - timedelta(days=1)
    start = end - timedelta(days=6)
    members = []
    for team in _team_of_leader(rt, leader):
        for email in team.members:
            member = rt.settings.person(email)
            members.append((member, day_metrics(rt, member, start, end)))
    return recognition.context(leader, due.period, members, policy=policy(rt.settings))


def _digest(rt: Runtime, leader: Person, due: schedule.Due, now: datetime) -> dict[str, Any]:
    today = now.astimezone(leader.tz).date()
    monday = today - timedelta(days=today.weekday() + 7)
    teams = _team_of_leader(rt, leader)
    names = {p.email: p.name for p in rt.settings.persons()}
    least = rt.settings.privacy.min_team_size
    if not teams:
        return digest.context(leader, "", digest.empty_week(monday), names, least)
    built, _ = load_report(rt, now, monday, monday + timedelta(days=6), team=teams[0].name)
    return digest.context(leader, teams[0].name, built, names, least)


def _overload(
    rt: Runtime, person: Person, day: date, lookahead: timedelta
) -> dict[str, Any] | None:
    last = day + timedelta(days=max(0, lookahead.days - 1))
    every = day_metrics(rt, person, day, last)  # the lighter ones are where meetings can go
    days = [d for d in every if d.overloaded]
    if not days:
        return None
    meetings_from = rt.settings.meetings_from(person.email)  # as day_metrics counted them
    meetings = [
        ev
        for ev in person_events(rt, person, day, last)
        if analysis.is_meeting(ev, person, meetings_from)
    ]
    heaviest = overload.heaviest(person, every, meetings)
    return overload.context(person, every, heaviest, overload.lookahead_label(day, last, lookahead))


def _followups(
    rt: Runtime,
    people: dict[str, Person],
    away: dict[str, set[date]],
    now: datetime,
    delay: timedelta,
) -> list[Candidate]:
    out: list[Candidate] = []
    for team in rt.settings.team_models():
        if team.leader in people:
            work = partial(_team_followups, rt, team, people, away, now, delay)
            out += _contained(rt, now, team.leader, "followup", work) or []
    return out


def _team_followups(
    rt: Runtime,
    team: Any,
    people: dict[str, Person],
    away: dict[str, set[date]],
    now: datetime,
    delay: timedelta,
) -> list[Candidate]:
    """The follow-ups after one team's 1:1s (a team's failure is its leader's alone)."""
    out: list[Candidate] = []
    leader = people[team.leader]
    start = (now - followup.LOOK_BACK).astimezone(leader.tz).date()
    events = person_events(rt, leader, start - timedelta(days=60), now.astimezone(leader.tz).date())
    for email in team.members:
        if email not in people:
            continue
        member = people[email]
        for ev, held, skipped in followup.ended(events, leader, member, now, delay):
            for recipient, other in ((leader, member), (member, leader)):
                due = followup.due(recipient, ev, delay, away[recipient.email])
                if due is not None:
                    share = checkins.shares_one_on_ones(rt, recipient.email)
                    args = (recipient, other, leader, ev, held, skipped, share)
                    build = partial(followup.values, *args)
                    out.append(Candidate(due, build))
    return out


# -- by hand -------------------------------------------------------------------------


def recognize(
    rt: Runtime, member_email: str, text: str, leader_email: str | None, now: datetime
) -> tuple[schedule.Due, int | None]:
    """Queue a leader's own note to a member (cc the leader), inside the member's hours;
    the send and the outbox row it is in (so the caller can send that row, and only it)."""
    member = rt.settings.person(member_email)
    if leader_email:
        leader = rt.settings.person(leader_email)
    else:
        leaders = [t.leader for t in rt.settings.team_models() if member.email in t.members]
        if not leaders:
            raise UserError(
                Problem(
                    f"{member.email} has no team leader in the config",
                    "name the sender with --from LEADER",
                )
            )
        leader = rt.settings.person(leaders[0])
    if not text.strip():
        raise UserError(Problem("--for is empty", "write what you recognise them for"))
    due = note.due(leader, member, text, now, _away(rt, member, now))
    if due is None:
        raise UserError(
            Problem(
                f"{member.email} has no working hours in the next weeks",
                "check their working_hours",
            )
        )
    c = Candidate(due, partial(note.context, leader, member, text), cc=(leader.email,))
    if rt.store.known_keys([due.key]):
        raise UserError(Problem("this note was queued already", "change the text to send another"))
    return due, _enqueue(rt, c, now)


def preview(rt: Runtime, program: str, email: str, day: date, now: datetime) -> dict[str, Any]:
    """The values ``program`` would send ``email`` about ``day`` (for `emails preview`)."""
    person = rt.settings.person(email)
    moment = local_day_range(day, person.tz).start + timedelta(hours=12)
    if program in checkins.PROGRAMS:
        return checkins.preview(rt, program, email, day, now)
    if program == "reflection":
        section = rt.settings.emails.reflection
        wall = wall_time(day, section.at if section else time(16, 30), person.tz)
        sent = schedule.next_allowed(wall, person, _away(rt, person, wall)) or wall
        return fill_at_send_time(rt, program, reflection_context(rt, person, day), sent)
    if program in ("recognition", "digest"):
        due = schedule.Due(program, email, schedule.iso_week(day), moment, moment)
        return (_recognition if program == "recognition" else _digest)(rt, person, due, moment)
    if program == "overload":
        ctx = _overload(rt, person, day, timedelta(days=7))
        if ctx is None:
            raise UserError(
                Problem(
                    f"{email} has no overloaded day in the week from {day}", "pick another --date"
                )
            )
        return ctx
    if program == "pulse":
        return pulses.preview(rt, person, day)
    if program == "followup":
        people = {p.email: p for p in rt.settings.persons()}
        no_away: dict[str, set[date]] = {e: set() for e in people}
        for c in _followups(rt, people, no_away, moment + timedelta(hours=12), timedelta(0)):
            if c.due.recipient == person.email:
                return fill_at_send_time(rt, "followup", c.build(), moment)
        raise UserError(
            Problem(f"no 1:1 of {email} ended on {day}", "pick the date of a 1:1 with --date")
        )
    raise UserError(
        Problem(
            f"no email program named {program!r}",
            f"use {', '.join(PREVIEWED[:-1])} or {PREVIEWED[-1]}",
        )
    )
