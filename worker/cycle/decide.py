"""The email programs (docs/architecture.md): who gets which email when, decided into the outbox.

Each program turns the store's figures into due sends (:mod:`worker.core.schedule`, in the
recipient's own time) and, for each send that is due now, an outbox row holding the
plain template values (:mod:`worker.programs`). Rules for every program:

* never to someone who unsubscribed (from that program or from all);
* at most ``mail.max_per_day`` emails a recipient's local day: beyond that the sends are
  **bundled** into one email (and if the day's quota is used up, that bundle waits for
  their next working morning) — never dropped;
* a follow-up's commitments are read from the 1:1's description when it is sent, and
  never stored; a reflection's words about its days are made when it is sent
  (:mod:`worker.cycle.sending`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

from worker import programs
from worker.config import parse_clock, parse_days
from worker.core import analysis, schedule
from worker.core.errors import Problem, UserError
from worker.core.model import UTC, Event, Person, Response, Status, local_day_range, wall_time
from worker.core.wording import plural
from worker.cycle.deliver import fill_at_send_time
from worker.cycle.figures import load_report
from worker.cycle.runtime import Runtime, day_metrics, person_events, policy
from worker.cycle.services import reflection_context

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Lower sorts first when sends compete for a recipient's daily quota.
PRIORITY = {
    "recognize": 0,
    "followup": 1,
    "overload": 2,
    "reflection": 3,
    "recognition": 4,
    "digest": 5,
}
FOLLOWUP_LOOK_BACK = timedelta(days=2)
WINDOW = timedelta(hours=4)


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
                reflection = partial(_reflection_due, rt, people[email], now, away[email])
                out += _contained(rt, now, email, "reflection", reflection) or []
    for program, section in (("recognition", e.recognition), ("digest", e.digest)):
        if section is None:
            continue
        day_text, _, clock = section.at.strip().partition(" ")
        (weekday,) = parse_days(day_text)
        for email in s.audience(section.to):
            if email not in people:
                continue
            p = people[email]
            due = schedule.weekly(program, p, weekday, parse_clock(clock), now, away[email], WINDOW)
            if due is None:
                continue
            build = _recognition if program == "recognition" else _digest
            out.append(Candidate(due, partial(build, rt, p, due, now)))
    if e.overload is not None:
        for p in people.values():
            overload = partial(_overload_dues, rt, p, now, away[p.email], people)
            out += _contained(rt, now, p.email, "overload", overload) or []
    if e.followup is not None:
        out += _followups(rt, people, away, now, e.followup.delay)
    return out


def _reflection_due(rt: Runtime, p: Person, now: datetime, away: set[date]) -> list[Candidate]:
    section = rt.settings.emails.reflection
    assert section is not None
    due = schedule.daily("reflection", p, section.at, section.days, now, away, section.within)
    if due is None:
        return []
    day = date.fromisoformat(due.period)
    return [Candidate(due, partial(reflection_context, rt, p, day))]


def _overload_dues(
    rt: Runtime, p: Person, now: datetime, away: set[date], people: dict[str, Person]
) -> list[Candidate]:
    section = rt.settings.emails.overload
    assert section is not None
    due = schedule.daily("overload", p, time(0), frozenset(range(7)), now, away, WINDOW)
    if due is None or not due.is_due(now):
        return []
    ctx = _overload(rt, p, date.fromisoformat(due.period), section.lookahead)
    if ctx is None:
        return []
    out = [Candidate(due, partial(dict, ctx))]
    if section.notify_leader:
        for team in rt.settings.team_models():
            if p.email in team.members and team.leader in people:
                leader = people[team.leader]
                lead_due = schedule.Due(
                    "overload", leader.email, f"{p.email}:{due.period}", due.at, due.until
                )
                out.append(Candidate(lead_due, partial(dict, ctx)))
    return out


def decide(rt: Runtime, now: datetime) -> list[int]:
    """Outbox rows for every due send not decided before; returns the new row ids."""
    due = candidates(rt, now)
    known = rt.store.known_keys(c.due.key for c in due)
    fresh = [
        c
        for c in due
        if c.due.key not in known and not rt.store.is_unsubscribed(c.due.recipient, c.due.program)
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
    key = f"bundle:{person.email}:{at.astimezone(person.tz).date().isoformat()}"
    parts, built = [], []
    for c in items:  # a part whose values cannot be built is left out (and audited)
        values = _contained(rt, now, person.email, c.due.program, c.build)
        if values is not None:
            parts.append({"key": c.due.key, "program": c.due.program, "payload": values})
            built.append(c)
    if not parts:
        return None
    items = built
    payload = {"name": person.name, "first_name": programs.first_name(person), "parts": parts}
    row = rt.store.enqueue(
        key, "email", "bundle", person.email, at.date().isoformat(), at, payload, now
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


# -- program values ------------------------------------------------------------------


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
    return programs.recognition_context(leader, due.period, members, policy=policy(rt.settings))


def _digest(rt: Runtime, leader: Person, due: schedule.Due, now: datetime) -> dict[str, Any]:
    today = now.astimezone(leader.tz).date()
    monday = today - timedelta(days=today.weekday() + 7)
    teams = _team_of_leader(rt, leader)
    names = {p.email: p.name for p in rt.settings.persons()}
    if not teams:
        report = {
            "period": {
                "start": monday.isoformat(),
                "end": (monday + timedelta(days=6)).isoformat(),
            },
            "people": [],
            "teams": [],
        }
        return programs.digest_context(leader, "", report, names, rt.settings.privacy.min_team_size)
    built, _ = load_report(rt, now, monday, monday + timedelta(days=6), team=teams[0].name)
    return programs.digest_context(
        leader, teams[0].name, built, names, rt.settings.privacy.min_team_size
    )


def _overload(
    rt: Runtime, person: Person, day: date, lookahead: timedelta
) -> dict[str, Any] | None:
    last = day + timedelta(days=max(0, lookahead.days - 1))
    every = day_metrics(rt, person, day, last)  # the lighter ones are where meetings can go
    days = [d for d in every if d.overloaded]
    if not days:
        return None
    events = person_events(rt, person, day, last)
    heavy_days = {d.date for d in days}
    meetings_from = rt.settings.meetings_from(person.email)  # as day_metrics counted them
    meetings = [
        ev
        for ev in events
        if analysis.is_meeting(ev, person, meetings_from)
        and ev.start.astimezone(person.tz).date() in heavy_days
    ]
    meetings.sort(key=lambda ev: (-(ev.end - ev.start).total_seconds(), ev.start))
    heaviest = [(_meeting_label(ev), ev.start, ev.end, len(ev.attendees)) for ev in meetings[:3]]
    label = "today" if last == day else f"the next {lookahead.days} days"
    return programs.overload_context(person, every, heaviest, label)


def _meeting_label(event: Event) -> str:
    """Its title, else how many are on it; "" (worded "a meeting") for a busy event that
    names nobody (``meetings: busy`` on a calendar without attendees)."""
    count = len(set(event.attendees) | {event.organizer or ""}) - 1
    return event.title or (f"a meeting with {plural(count, 'person', 'people')}" if count else "")


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
    start = (now - FOLLOWUP_LOOK_BACK).astimezone(leader.tz).date()
    events = person_events(rt, leader, start - timedelta(days=60), now.astimezone(leader.tz).date())
    for email in team.members:
        if email not in people:
            continue
        member = people[email]
        ones = sorted(
            (
                ev
                for ev in events
                if programs.is_one_on_one(ev, leader.email, member.email, ev.title)
            ),
            key=lambda ev: ev.start,
        )
        for i, ev in enumerate(ones):
            held = ev.status is not Status.CANCELLED and ev.response is not Response.DECLINED
            if not held or ev.end + delay > now or ev.end < now - FOLLOWUP_LOOK_BACK:
                continue
            before = [o for o in ones[:i]]
            skipped = len(before) >= 2 and all(
                o.status is Status.CANCELLED or o.response is Response.DECLINED for o in before[-2:]
            )
            count_held = sum(
                1
                for o in before
                if o.status is not Status.CANCELLED and o.response is not Response.DECLINED
            )
            for recipient, other in ((leader, member), (member, leader)):
                due = schedule.once(
                    "followup",
                    recipient,
                    ev.end + delay,
                    _event_period(ev),
                    away[recipient.email],
                    WINDOW,
                )
                if due is None:
                    continue
                build = partial(_followup_values, recipient, other, leader, ev, count_held, skipped)
                out.append(Candidate(due, build))
    return out


def _followup_values(
    recipient: Person, other: Person, leader: Person, ev: Event, held: int, skipped: bool
) -> dict[str, Any]:
    values = programs.followup_context(
        recipient, other, leader, ev.start, ev.end, [], programs.agenda_topic(held), skipped
    )
    # where to read the commitments when the email goes out (never stored)
    return {**values, "_describe": {"owner": leader.email, "event_id": ev.id}}


def _event_period(ev: Event) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", ev.id)[:120]


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
    digest = hashlib.sha256(f"{leader.email}\n{text}".encode()).hexdigest()[:12]
    due = schedule.once(
        "recognize",
        member,
        now,
        f"{now.astimezone(UTC):%Y%m%d}-{digest}",
        _away(rt, member, now),
        timedelta(days=14),
    )
    if due is None:
        raise UserError(
            Problem(
                f"{member.email} has no working hours in the next weeks",
                "check their working_hours",
            )
        )
    c = Candidate(
        due, partial(programs.recognize_context, leader, member, text), cc=(leader.email,)
    )
    if rt.store.known_keys([due.key]):
        raise UserError(Problem("this note was queued already", "change the text to send another"))
    return due, _enqueue(rt, c, now)


def preview(rt: Runtime, program: str, email: str, day: date, now: datetime) -> dict[str, Any]:
    """The values ``program`` would send ``email`` about ``day`` (for `emails preview`)."""
    person = rt.settings.person(email)
    moment = local_day_range(day, person.tz).start + timedelta(hours=12)
    if program == "reflection":
        section = rt.settings.emails.reflection
        wall = wall_time(day, section.at if section else time(16, 30), person.tz)
        sent = schedule.next_allowed(wall, person, _away(rt, person, wall)) or wall
        return fill_at_send_time(rt, program, reflection_context(rt, person, day), sent)
    if program in ("recognition", "digest"):
        year, week, _ = day.isocalendar()
        due = schedule.Due(program, email, f"{year}-W{week:02}", moment, moment)
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
            "use reflection, recognition, followup, overload or digest",
        )
    )
