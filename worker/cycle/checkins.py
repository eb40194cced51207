"""The check-in programs' part of the cycle: ``checkin``, ``checkin_blockers``,
``checkin_digest`` and ``partners`` (docs/programs.md).

This module reads the check-ins and partner answers from the store and builds each
program's sends, as (due, build) pairs that :func:`worker.cycle.decide.scheduled` turns
into candidates: from there they go the same way as every other program's (opt-outs,
pauses, ``mail.max_per_day``, once per key). Each person's or team's work runs through
the ``contain`` it is given, so a failure is theirs alone. No free text is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

from worker.core import schedule
from worker.core.model import Person, Team, local_day_range, wall_time
from worker.core.wording import display_name
from worker.cycle.runtime import Runtime
from worker.programs import checkin, checkin_blockers, checkin_digest, followup, partners

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: A send and the function that builds its values.
Pair = tuple[schedule.Due, Callable[[], dict[str, Any]]]
#: :func:`worker.cycle.decide._contained`: ``work()`` for one person and program, or None.
Contain = Callable[[Runtime, datetime, str, str, Callable[[], Any]], Any]
#: The programs of this module (``emails preview`` asks :func:`preview` for these).
PROGRAMS = (checkin.NAME, checkin_blockers.NAME, checkin_digest.NAME, partners.NAME)


@dataclass(frozen=True, slots=True)
class Checkin:
    """One person's stored check-in of one day."""

    day: date
    priorities: tuple[str, ...]
    concern: str
    blocker: str
    share: str
    commitments: tuple[int, ...]
    updated: datetime


def checkins_of(rt: Runtime, email: str, first: date, last: date) -> dict[date, Checkin]:
    """``email``'s check-ins of the days ``first`` to ``last``, by day."""
    rows: dict[str, dict[str, Any]] = {}
    when: dict[str, datetime] = {}
    for a in rt.store.answers_of(email, checkin.NAME, (first.isoformat(), last.isoformat())):
        rows.setdefault(a.period, {})[a.question] = a.text if a.score is None else a.score
        when[a.period] = max(when.get(a.period, a.updated), a.updated)
    out = {}
    for period, values in rows.items():
        try:
            day = date.fromisoformat(period)
        except ValueError:
            continue
        lines = checkin.lines(str(values.get("priorities") or ""))
        out[day] = Checkin(
            day,
            tuple(lines),
            str(values.get("concern") or ""),
            str(values.get("blocker") or ""),
            checkin.share_of(str(values.get("share") or "") or None),
            tuple(checkin.commitment_numbers(str(values.get("commitments") or ""), len(lines))),
            when[period],
        )
    return out


def _statuses(rt: Runtime, email: str, first: date, last: date) -> dict[tuple[str, int], Any]:
    """``{(day, line): answer}`` of ``email``'s "done:<n>" answers of those days."""
    out = {}
    for a in rt.store.answers_of(email, partners.NAME, (first.isoformat(), last.isoformat())):
        head, _, n = a.question.partition(":")
        if head == "done" and n.isdecimal():
            out[(a.period, int(n))] = a
    return out


def celebrates(rt: Runtime, email: str) -> bool:
    """Whether ``email`` may be named when they finish a commitment (absent: yes)."""
    found = [a for a in rt.store.answers_of(email, partners.NAME, ("", "")) if a.period == ""]
    return not any(a.question == "celebrate" and a.score == 0 for a in found)


def _teams_of(rt: Runtime, email: str) -> list[Team]:
    return [t for t in rt.settings.team_models() if email in t.everyone]


# -- scheduling ----------------------------------------------------------------------


def scheduled(
    rt: Runtime,
    now: datetime,
    people: dict[str, Person],
    away: dict[str, set[date]],
    contain: Contain,
) -> list[Pair]:
    """Every send of the check-in programs, due now or later."""
    e = rt.settings.emails
    out: list[Pair] = []
    if e.checkin is not None:
        for email in rt.settings.audience(e.checkin.to):
            if email in people:
                work = partial(_checkin, rt, people[email], now, away[email])
                out += contain(rt, now, email, checkin.NAME, work) or []
        for team in rt.settings.team_models():
            if team.leader in people:
                work = partial(_blockers, rt, people[team.leader], now, away[team.leader])
                out += contain(rt, now, team.leader, checkin_blockers.NAME, work) or []
    if e.checkin_digest is not None:
        members = {m for t in rt.settings.team_models() for m in t.everyone}
        for email in sorted(members & people.keys()):
            work = partial(_digest, rt, people[email], now, away[email])
            out += contain(rt, now, email, checkin_digest.NAME, work) or []
    if e.partners is not None:
        wanted = set(rt.settings.audience(e.partners.to))
        for email in _partner_members(rt):
            if email in people and email in wanted:
                work = partial(_partners, rt, people[email], now, away[email])
                out += contain(rt, now, email, partners.NAME, work) or []
    return out


def _checkin(rt: Runtime, p: Person, now: datetime, away: set[date]) -> list[Pair]:
    section = rt.settings.emails.checkin
    assert section is not None
    due = checkin.due(p, section.at, section.days, section.within, now, away)
    if due is None:
        return []
    return [(due, partial(checkin.context, p, date.fromisoformat(due.period)))]


# -- checkin_blockers ------------------------------------------------------------------


def blockers_for(
    rt: Runtime, leader: Person, day: date, away: set[date]
) -> list[checkin_blockers.Blocker]:
    """The blockers of ``leader``'s email of ``day`` (the rule: :mod:`.checkin_blockers`):
    those shared with them and saved after the previous email's moment and up to this
    one's, of ``day`` or of the days before it (those are marked with their day)."""
    section = rt.settings.emails.checkin
    assert section is not None
    this = checkin_blockers.due(leader, section.at, day, away)
    if this is None:
        return []
    since: datetime | None = None
    for back in range(1, checkin_blockers.CARRY_DAYS + 1):
        earlier = checkin_blockers.due(leader, section.at, day - timedelta(days=back), away)
        if earlier is not None:
            since = earlier.at
            break
    first = day - timedelta(days=checkin_blockers.CARRY_DAYS)
    out = []
    members = {m for t in rt.settings.team_models() if t.leader == leader.email for m in t.members}
    for email in sorted(members - {leader.email}):
        member = rt.settings.person(email)
        for on, c in sorted(checkins_of(rt, email, first, day).items()):
            if not c.blocker or c.share == "me" or c.updated > this.at:
                continue
            if since is None or c.updated > since:
                out.append(checkin_blockers.Blocker(display_name(member), on, c.blocker, c.concern))
    return out


def _blockers(rt: Runtime, leader: Person, now: datetime, away: set[date]) -> list[Pair]:
    section = rt.settings.emails.checkin
    assert section is not None
    day = now.astimezone(leader.tz).date()
    due = checkin_blockers.due(leader, section.at, day, away, section.within)
    if due is None or not due.is_due(now):
        return []
    found = blockers_for(rt, leader, day, away)
    if not found:
        return []
    return [(due, partial(checkin_blockers.context, leader, day, found))]


# -- checkin_digest --------------------------------------------------------------------


def digest_values(rt: Runtime, p: Person, day: date, since: datetime, now: datetime) -> Any:
    """The digest of ``day`` for ``p``: the check-ins shared with ``p``'s teams that day,
    and the partner commitments of those teams marked done after ``since`` (a 1:1's, shared
    with the partner only, named without its words)."""
    teams = _teams_of(rt, p.email)
    co = sorted({m for t in teams for m in t.everyone})
    shared, done = [], []
    for email in co:
        member = rt.settings.person(email)
        found = checkins_of(rt, email, day - partners.LOOK_BACK, day)
        c = found.get(day)
        if c is not None and c.share == "team" and (c.priorities or c.blocker):
            shared.append(checkin_digest.Shared(display_name(member), c.priorities, c.blocker))
        named = celebrates(rt, email)
        first = day - timedelta(days=14)
        for (period, n), a in _statuses(rt, email, first, day).items():
            if a.score != 1 or not since < a.updated <= now:
                continue
            source = found.get(date.fromisoformat(period))
            text = ""
            if source is not None and source.share == "team" and n <= len(source.priorities):
                text = source.priorities[n - 1]
            done.append(checkin_digest.Done(display_name(member) if named else None, text))
        for a in rt.store.answers_of(email, partners.NAME):  # 1:1 commitments: no words
            if (
                a.period.startswith(partners.ONE_ON_ONE)
                and a.question.startswith("done:")
                and a.score == 1
                and since < a.updated <= now
            ):
                done.append(checkin_digest.Done(display_name(member) if named else None, ""))
    names = ", ".join(t.name for t in teams)
    return checkin_digest.context(p, day, names, shared, done)


def _digest(rt: Runtime, p: Person, now: datetime, away: set[date]) -> list[Pair]:
    section = rt.settings.emails.checkin_digest
    assert section is not None
    due = checkin_digest.due(p, section.at, section.days, section.within, now, away)
    if due is None:
        return []
    day = date.fromisoformat(due.period)
    own = checkins_of(rt, p.email, day, day).get(day)
    if own is None or own.share != "team":
        return []
    previous = checkin_digest.previous(day, section.days)
    since = wall_time(previous, section.at, p.tz)
    return [(due, partial(digest_values, rt, p, day, since, due.at))]


# -- partners --------------------------------------------------------------------------


def _partner_team(rt: Runtime) -> Team | None:
    section = rt.settings.emails.partners
    assert section is not None
    return next((t for t in rt.settings.team_models() if t.name == section.team), None)


def _partner_members(rt: Runtime) -> list[str]:
    team = _partner_team(rt)
    return [] if team is None else [m for m in team.members if m != team.leader]


def groups_on(rt: Runtime, day: date) -> list[tuple[str, ...]]:
    """The partner groups of the period ``day`` falls in."""
    section = rt.settings.emails.partners
    assert section is not None
    period = partners.period_of(section.rotate, day)
    return partners.groups(section.team, _partner_members(rt), period, section.pairs)


def commitments_of(
    rt: Runtime, email: str, day: date, shared_only: bool
) -> list[partners.Commitment]:
    """``email``'s commitments of the 7 days up to ``day`` (``shared_only``: those shared
    beyond "only me"), each with its status."""
    first = day - partners.LOOK_BACK + timedelta(days=1)
    statuses = _statuses(rt, email, first, day)
    out = []
    for on, c in sorted(checkins_of(rt, email, first, day).items()):
        if shared_only and c.share == "me":
            continue
        for n in c.commitments:
            a = statuses.get((on.isoformat(), n))
            out.append(partners.Commitment(on, n, c.priorities[n - 1], a.score if a else None))
    return out + one_on_one_commitments(rt, email, day)


def one_on_one_commitments(rt: Runtime, email: str, day: date) -> list[partners.Commitment]:
    """The 1:1 commitments ``email`` chose to share (follow-up answers ``shared:<n>``)
    saved in the 7 days up to ``day``, each with its status (partners answers under
    ``1on1:`` + the follow-up's period), dated the day they were saved."""
    tz = rt.settings.person(email).tz
    first = day - partners.LOOK_BACK + timedelta(days=1)
    status: dict[tuple[str, str], int | None] = {}
    for a in rt.store.answers_of(email, partners.NAME):
        if a.period.startswith(partners.ONE_ON_ONE) and a.question.startswith("done:"):
            status[(a.period, a.question)] = a.score
    out = []
    for a in rt.store.answers_of(email, followup.NAME):
        head, _, n = a.question.partition(":")
        on = a.updated.astimezone(tz).date()
        if head != "shared" or not n.isdecimal() or not a.text or not first <= on <= day:
            continue
        done = status.get((partners.ONE_ON_ONE + a.period, f"done:{n}"))
        out.append(partners.Commitment(on, int(n), a.text, done, a.period))
    return sorted(out, key=lambda c: (c.day, c.one_on_one, c.line))


def shares_one_on_ones(rt: Runtime, email: str) -> bool:
    """Whether ``email``'s follow-ups offer to share their commitments with a partner:
    ``emails.partners`` is set and they are one of its team's paired members."""
    return rt.settings.emails.partners is not None and email.lower() in _partner_members(rt)


def partners_values(rt: Runtime, p: Person, day: date, week: str) -> dict[str, Any]:
    """The weekly partners email of ``p`` sent on ``day``."""
    others = partners.partners_of(p.email, groups_on(rt, day))
    shown = [(rt.settings.person(o), commitments_of(rt, o, day, shared_only=True)) for o in others]
    own = commitments_of(rt, p.email, day, shared_only=False)
    return partners.context(p, week, shown, own, celebrates(rt, p.email))


def _partners(rt: Runtime, p: Person, now: datetime, away: set[date]) -> list[Pair]:
    section = rt.settings.emails.partners
    assert section is not None
    due = partners.due(p, section.weekday, section.clock, now, away)
    if due is None:
        return []
    day = due.at.astimezone(p.tz).date()
    if not partners.partners_of(p.email, groups_on(rt, day)):
        return []
    return [(due, partial(partners_values, rt, p, day, due.period))]


# -- previews --------------------------------------------------------------------------


def preview(rt: Runtime, program: str, email: str, day: date, now: datetime) -> dict[str, Any]:
    """The values ``program`` would send ``email`` about ``day`` (``emails preview``)."""
    person = rt.settings.person(email)
    if program == checkin.NAME:
        return checkin.context(person, day)
    if program == checkin_blockers.NAME:
        found = blockers_for(rt, person, day, set()) if rt.settings.emails.checkin else []
        return checkin_blockers.context(person, day, found)
    if program == checkin_digest.NAME:
        section = rt.settings.emails.checkin_digest
        at = section.at if section else time(10, 30)
        days = section.days if section else frozenset(range(5))
        since = wall_time(checkin_digest.previous(day, days), at, person.tz)
        return dict(digest_values(rt, person, day, since, local_day_range(day, person.tz).end))
    week = schedule.iso_week(day)
    if rt.settings.emails.partners is None:
        return partners.context(person, week, [], [], True)
    return partners_values(rt, person, day, week)
