"""Benchmark of ``worker.core.analysis`` over a synthetic company (docs/benchmarks.md).

Builds, with a fixed seed, ``--people`` calendars (default 1,000) over ``--days`` days
(default 365, from Monday 2026-01-05, so every DST change of 2026 is inside) the way the
connectors hand them over: recurring series expanded into one event per instance (daily
stand-ups, weekly team meetings, weekly 1:1s, a weekly leads' sync across time zones),
ad-hoc meetings and personal busy time with overlaps and double bookings, declined,
cancelled and free (transparent) events, focus events, working-location events,
steadyhand's own blocks, all-day and timed out-of-office, the odd event over midnight
and the same meeting seen on two calendars. People sit in eleven zones, most with DST
(Berlin, London, New York, Los Angeles, Sydney, Auckland, Jerusalem), some without
(Kolkata, Tokyo, Sao Paulo, Kathmandu); a team's series follow its leader's wall clock.
Events carry the organizer's zone, UTC or the person's zone, as the different
connectors return them, and each calendar lists its events series by series, then the
single events, not sorted.

Then it times, in this process:

* the analysis: for each person ``analyze_days(person, events, start, end, policy)``
  over the whole period, ``roll_up`` for each of their weeks, and ``team_spread`` for
  each team (of 8) and week;
* the baseline: ``sorted(all_events, key=attrgetter("start"))``, the same Event
  objects in one list. For context it also times ``sorted()`` of the same starts
  converted to UTC beforehand: comparing aware datetimes of different zones calls
  ``utcoffset()`` on both sides, which is most of the baseline's time.

Generating the events is not timed. Peak memory is ``resource.getrusage`` ``ru_maxrss``
of the whole process (the generated events included), printed after generation and at
the end. ``--profile N`` runs the analysis once more under cProfile and prints the top
N functions by own time.

Run: ``.venv/bin/python bench/analysis.py [--people N] [--days N] [--repeat N]``
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from operator import attrgetter
from typing import TypeVar
from zoneinfo import ZoneInfo

from worker.core.analysis import DayMetrics, Policy, WeekMetrics, analyze_days, roll_up, team_spread
from worker.core.model import Event, EventType, Person, Response, Status, Transparency, WorkingHours

T = TypeVar("T")
TARGET_RATIO = 2.0
FIRST_DAY = date(2026, 1, 5)  # a Monday
TEAM_SIZE = 8
DOMAIN = "example.com"

# (zone, weight): the company's people by where they sit
ZONES = (
    ("Europe/Berlin", 30),
    ("America/New_York", 20),
    ("America/Los_Angeles", 10),
    ("Europe/London", 10),
    ("Asia/Kolkata", 10),
    ("Australia/Sydney", 5),
    ("America/Sao_Paulo", 5),
    ("Asia/Tokyo", 3),
    ("Asia/Jerusalem", 3),
    ("Pacific/Auckland", 2),
    ("Asia/Kathmandu", 2),
)
Hours = dict[int, list[tuple[clock, clock]]]


def _hours(days: Sequence[int], *ranges: str) -> Hours:
    spans = []
    for text in ranges:
        start, end = text.split("-")
        spans.append((clock.fromisoformat(start), clock.fromisoformat(end)))
    return {d: list(spans) for d in days}


MON_FRI = range(5)
WORKING_HOURS = (  # (pattern, weight)
    (_hours(MON_FRI, "09:00-17:00"), 55),
    (_hours(MON_FRI, "08:30-12:00", "13:00-17:30"), 20),  # a lunch break
    (_hours(MON_FRI, "09:00-12:30", "12:30-17:00"), 5),  # touching ranges
    (_hours(range(4), "09:00-15:00"), 10),  # part time, Fridays off
    (_hours(MON_FRI, "10:00-18:30"), 10),
)
SUN_THU = _hours((6, 0, 1, 2, 3), "08:30-17:00")  # for Asia/Jerusalem


@dataclass(frozen=True, slots=True)
class Member:
    person: Person
    tz: ZoneInfo
    render: str  # "origin": as the organizer wrote it (iCalendar), "utc" (Graph), "own"
    answers: Response  # how they answer what others organise


@dataclass
class Company:
    people: list[Member]
    teams: list[list[Member]]
    calendars: dict[str, list[Event]] = field(default_factory=dict)

    @property
    def event_count(self) -> int:
        return sum(len(events) for events in self.calendars.values())


# -- generation (not timed) ---------------------------------------------------------------


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _people(rng: random.Random, count: int) -> tuple[list[Member], list[list[Member]]]:
    people: list[Member] = []
    teams: list[list[Member]] = []
    for index in range(count):
        if index % TEAM_SIZE == 0:
            zone = _pick(rng, ZONES)  # the leader's
            teams.append([])
        elif rng.random() < 0.75:
            zone = teams[-1][0].person.timezone
        else:
            zone = _pick(rng, ZONES)
        hours = SUN_THU if zone == "Asia/Jerusalem" else _pick(rng, WORKING_HOURS)
        email = f"p{index:05d}@{DOMAIN}"
        if rng.random() < 0.1:
            email = email.upper()  # emails are compared case-insensitively
        person = Person(email, f"Person {index}", zone, WorkingHours.of(hours))
        render = rng.choice(("origin", "utc", "own"))
        answers = _pick(
            rng, ((Response.ACCEPTED, 80), (Response.TENTATIVE, 10), (Response.NEEDS_ACTION, 10))
        )
        member = Member(person, ZoneInfo(zone), render, answers)
        people.append(member)
        teams[-1].append(member)
    return people, teams


def _at(day: date, wall: str, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock.fromisoformat(wall), tz)


class Calendars:
    """Appends events to the members' calendars, rendering times as their connector does."""

    def __init__(self, members: Sequence[Member], days: int) -> None:
        self.by_email: dict[str, list[Event]] = {m.person.email: [] for m in members}
        self.days = [FIRST_DAY + timedelta(days=i) for i in range(days)]
        self._rendered: dict[tuple[int, str], datetime] = {}

    def _render(self, moment: datetime, member: Member, shared: bool) -> datetime:
        if member.render == "origin":
            return moment
        tz = member.tz if member.render == "own" else UTC
        if not shared:
            return moment.astimezone(tz)
        # one rendering per instant and zone, shared by the members (as in a real store)
        key = (id(moment), str(tz))
        found = self._rendered.get(key)
        if found is None:
            found = self._rendered[key] = moment.astimezone(tz)
        return found

    def add(
        self,
        member: Member,
        event_id: str,
        start: datetime,
        end: datetime,
        *,
        shared: bool = False,
        **kw: object,
    ) -> None:
        email = member.person.email
        self.by_email[email].append(
            Event(
                event_id,
                email,
                self._render(start, member, shared),
                self._render(end, member, shared),
                **kw,  # type: ignore[arg-type]
            )
        )

    def series(
        self,
        rng: random.Random,
        uid: str,
        organizer: Member,
        members: Sequence[Member],
        instants: Sequence[tuple[datetime, datetime]],
    ) -> None:
        """One recurring series, expanded: every member gets every instance."""
        attendees = tuple(m.person.email for m in members)
        cancelled = {i for i in range(len(instants)) if rng.random() < 0.03}
        for member in members:
            is_organizer = member is organizer
            for i, (start, end) in enumerate(instants):
                if is_organizer:
                    response = Response.ORGANIZER
                elif rng.random() < 0.05:
                    response = Response.DECLINED
                else:
                    response = member.answers
                self.add(
                    member,
                    f"{uid}_{i}",
                    start,
                    end,
                    status=Status.CANCELLED if i in cancelled else Status.CONFIRMED,
                    response=response,
                    attendees=attendees,
                    organizer=organizer.person.email,
                    series_id=uid,
                    shared=True,
                )
        self._rendered.clear()  # keyed by id(): valid only while ``instants`` lives


def _weekdays(days: Sequence[date], weekdays: set[int]) -> list[date]:
    return [d for d in days if d.weekday() in weekdays]


def _team_series(rng: random.Random, cal: Calendars, number: int, team: list[Member]) -> None:
    leader = team[0]
    tz = leader.tz
    days = cal.days
    standup = [(_at(d, "09:30", tz), _at(d, "09:45", tz)) for d in _weekdays(days, set(range(5)))]
    cal.series(rng, f"team{number}-standup", leader, team, standup)
    weekday = rng.randrange(5)
    weekly = [(_at(d, "14:00", tz), _at(d, "15:00", tz)) for d in _weekdays(days, {weekday})]
    cal.series(rng, f"team{number}-weekly", leader, team, weekly)
    for member in team[1:]:
        weekday = rng.randrange(5)
        hour = f"{rng.randrange(10, 16):02d}:{rng.choice((0, 30)):02d}"
        starts = [_at(d, hour, tz) for d in _weekdays(days, {weekday})]
        one_on_one = [(s, s + timedelta(minutes=30)) for s in starts]
        uid = f"team{number}-1on1-{member.person.email.lower()}"
        cal.series(rng, uid, leader, [leader, member], one_on_one)


def _leads_sync(rng: random.Random, cal: Calendars, teams: list[list[Member]]) -> None:
    """Leaders of eight teams meet weekly at 16:00 Berlin time, wherever they are."""
    berlin = ZoneInfo("Europe/Berlin")
    thursdays = _weekdays(cal.days, {3})
    instants = [(_at(d, "16:00", berlin), _at(d, "17:00", berlin)) for d in thursdays]
    for group in range(0, len(teams), 8):
        leaders = [team[0] for team in teams[group : group + 8]]
        cal.series(rng, f"leads{group}", leaders[0], leaders, instants)


def _own_events(rng: random.Random, cal: Calendars, member: Member, emails: Sequence[str]) -> None:
    """Single events on one calendar, day by day: what is not a series."""
    person, tz = member.person, member.tz
    me = person.email
    ids = iter(range(10**9))
    working_location = rng.random() < 0.25
    lunch = rng.random() < 0.3
    vacations = {rng.randrange(len(cal.days)) for _ in range(3)}
    vacation_until: date | None = None

    def add(start: datetime, end: datetime, **kw: object) -> None:
        cal.add(member, f"{me}-{next(ids)}", start, end, **kw)

    for day in cal.days:
        index = (day - FIRST_DAY).days
        working = bool(person.working_hours.days.get(day.weekday()))
        next_day = day + timedelta(days=1)
        if index in vacations:  # an all-day OOO event over several days
            length = rng.randrange(2, 11)
            vacation_until = day + timedelta(days=length)
            add(
                _at(day, "00:00", tz),
                _at(vacation_until, "00:00", tz),
                all_day=True,
                event_type=EventType.OUT_OF_OFFICE,
                transparency=Transparency.BUSY,
            )
        if not working or (vacation_until is not None and day < vacation_until):
            if rng.random() < 0.05:  # the odd weekend or holiday meeting
                add(
                    _at(day, "11:00", tz), _at(day, "12:00", tz), attendees=(me, rng.choice(emails))
                )
            continue
        if working_location:
            add(
                _at(day, "00:00", tz),
                _at(next_day, "00:00", tz),
                all_day=True,
                event_type=EventType.WORKING_LOCATION,
                transparency=Transparency.FREE,
            )
        if lunch:
            add(_at(day, "12:00", tz), _at(day, "13:00", tz), transparency=Transparency.FREE)
        if rng.random() < 0.01:  # a half day off
            add(_at(day, "13:00", tz), _at(day, "18:00", tz), event_type=EventType.OUT_OF_OFFICE)
        if day.weekday() in {1, 3}:
            add(_at(day, "14:00", tz), _at(day, "16:00", tz), event_type=EventType.FOCUS)
        if rng.random() < 0.4:  # steadyhand's own block (coaching, recovery)
            add(_at(day, "16:30", tz), _at(day, "16:45", tz), owned_block_id=f"b{index}")
        if rng.random() < 0.01:  # a flight over midnight
            add(_at(day, "21:00", tz), _at(next_day, "03:30", tz))
        for _ in range(rng.choices((0, 1, 2, 3, 4, 5, 6), (6, 14, 23, 25, 16, 10, 6))[0]):
            if rng.random() < 0.05:  # late, with another continent
                start = _at(day, f"{rng.randrange(18, 22)}:{rng.choice((0, 30)):02d}", tz)
            else:
                start = _at(
                    day, f"{rng.randrange(8, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}", tz
                )
            end = start + timedelta(minutes=rng.choice((15, 25, 30, 30, 45, 50, 60, 60, 90, 120)))
            roll = rng.random()
            if roll < 0.15:  # personal busy time, no one else
                add(start, end)
                continue
            others = tuple(rng.sample(emails, rng.randrange(1, 5)))
            organizer = me if roll < 0.4 else others[0]
            kw: dict[str, object] = {
                "attendees": (me, *others),
                "organizer": organizer,
                "response": Response.ORGANIZER if organizer == me else member.answers,
            }
            roll = rng.random()
            if roll < 0.08:
                kw["response"] = Response.DECLINED
            elif roll < 0.10:
                kw["status"] = Status.CANCELLED
            elif roll < 0.14:
                kw["transparency"] = Transparency.FREE
            event_id = f"{me}-{next(ids)}"
            cal.add(member, event_id, start, end, **kw)
            if rng.random() < 0.01:  # the same meeting on a second calendar
                cal.add(member, event_id, start, end, **kw)


def build(people: int, days: int, seed: int) -> Company:
    rng = random.Random(seed)
    members, teams = _people(rng, people)
    cal = Calendars(members, days)
    for number, team in enumerate(teams):
        _team_series(rng, cal, number, team)
    _leads_sync(rng, cal, teams)
    emails = [m.person.email for m in members]
    for member in members:
        _own_events(rng, cal, member, emails)
    return Company(members, teams, cal.by_email)


# -- what is timed --------------------------------------------------------------------------


def analyse(company: Company, start: date, end: date, policy: Policy) -> int:
    """The measured work. Returns the number of overloaded days (so nothing is dead code)."""
    weeks: dict[str, list[WeekMetrics]] = {}
    for member in company.people:
        person = member.person
        days: list[DayMetrics] = analyze_days(
            person, company.calendars[person.email], start, end, policy
        )
        weeks[person.email] = [roll_up(days[i : i + 7]) for i in range(0, len(days), 7)]
    for number, team in enumerate(company.teams):
        for week in range(len(weeks[team[0].person.email])):
            team_spread(
                f"team{number}",
                {m.person.email: weeks[m.person.email][week].meeting_minutes for m in team},
            )
    return sum(w.overloaded_days for ws in weeks.values() for w in ws)


def _timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    best = float("inf")
    result: T
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _sort_in_utc(events: list[Event], repeat: int) -> float:
    """Context only: ``sorted()`` of the same starts converted to UTC beforehand (not timed).

    Comparing aware datetimes of different zones calls ``utcoffset()`` on both sides,
    which is most of the baseline's time; datetimes that share one zone compare fast.
    """
    starts = [e.start.astimezone(UTC) for e in events]
    seconds, _ = _timed(lambda: sorted(starts), repeat)
    return seconds


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="then profile the analysis, print the top N functions",
    )
    args = parser.parse_args(argv)
    start = FIRST_DAY
    end = FIRST_DAY + timedelta(days=args.days - 1)
    policy = Policy()

    t0 = time.perf_counter()
    company = build(args.people, args.days, args.seed)
    generated = time.perf_counter() - t0
    rss_generated = _maxrss_mib()
    all_events = [e for events in company.calendars.values() for e in events]
    n = len(all_events)

    sort_s, _ = _timed(lambda: sorted(all_events, key=attrgetter("start")), args.repeat)
    utc_sort_s = _sort_in_utc(all_events, args.repeat)
    analysis_s, overloaded = _timed(lambda: analyse(company, start, end, policy), args.repeat)
    ratio = analysis_s / sort_s

    kinds = {
        "all-day": sum(e.all_day for e in all_events),
        "series instances": sum(e.series_id is not None for e in all_events),
        "declined": sum(e.response == Response.DECLINED for e in all_events),
        "cancelled": sum(e.status == Status.CANCELLED for e in all_events),
        "free": sum(e.transparency == Transparency.FREE for e in all_events),
        "focus": sum(e.event_type == EventType.FOCUS for e in all_events),
        "out of office": sum(e.event_type == EventType.OUT_OF_OFFICE for e in all_events),
    }
    print("steadyhand bench/analysis.py")
    print(
        f"  python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()}"
    )
    print(
        f"  people {len(company.people):,} in {len(company.teams):,} teams, "
        f"{args.days} days from {start} to {end}, seed {args.seed}"
    )
    print(
        f"  events {n:,} ({n / max(len(company.people), 1):,.0f} per person; "
        + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
        + ")"
    )
    print(f"  generated in {generated:.1f} s (not timed)")
    print(f"  overloaded person-days {overloaded:,}")
    print("  -- results " + "-" * 48)
    print(f"  analysis            {analysis_s:8.2f} s   {n / analysis_s:12,.0f} events/s")
    print(
        f"  sorted() baseline   {sort_s:8.2f} s   {n / sort_s:12,.0f} events/s"
        "   (sorted(all_events, key=attrgetter('start')))"
    )
    print(
        f"  ratio               {ratio:8.2f}     target <= {TARGET_RATIO}: "
        + ("met" if ratio <= TARGET_RATIO else "NOT met")
    )
    print(
        f"  (context)           {utc_sort_s:8.2f} s   sorted() of the same starts converted to"
        f" UTC beforehand; analysis / that = {analysis_s / utc_sort_s:.1f}"
    )
    print(
        f"  peak memory         {_maxrss_mib():8.0f} MiB (ru_maxrss, whole process; "
        f"{rss_generated:.0f} MiB after generating the events)"
    )
    if args.repeat > 1:
        print(f"  (best of {args.repeat} runs each)")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(analyse, company, start, end, policy)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
