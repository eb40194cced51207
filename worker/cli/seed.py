"""``steadyhand demo --weeks N``: N weeks of generated history for the demo, for the
dashboard to chart.

The demo team (Platform) has five people, below ``privacy.min_team_size`` for most
figures, so a seeded demo also has a second team, **Research**: a leader and seven
members in Berlin (:data:`RESEARCH`), added to the demo's settings only when the demo's
folder was seeded (the file ``demo-weeks`` in it says how many weeks), so that
``steadyhand demo`` without ``--weeks`` is exactly as before.

What is seeded, for the N full weeks before the Monday of the demo's week, with a fixed
seed (the same data every time; seeding again changes nothing):

* calendars: meetings on each working day of each person, stored as their own
  calendar (``demo-seed:EMAIL``, which no sync reads or replaces). Platform's own
  calendar files cover the two weeks from Monday 26 October 2026, so their generated
  meetings stop before that day;
* answers: pulse answers from most people each week (``emails.pulse`` of a seeded demo
  asks two questions), check-ins with a blocker now and then (shared with the leader),
  commitments marked done or still on it, and reflection scores.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from worker.config import CalendarSettings, PersonSettings, Settings, TeamSettings
from worker.config.emails import PulseSettings
from worker.core.model import Event, Person, Response, SyncState, TimeRange, wall_time
from worker.cycle.runtime import Runtime
from worker.programs import pulse

logger = logging.getLogger(__name__)

#: The most weeks ``demo --weeks`` seeds.
MAX_WEEKS = 52
#: The file in the demo's folder that says how many weeks were seeded.
MARKER = "demo-weeks"
#: The seed of every generated value.
SEED = 14
#: The first day of the Platform team's own calendar files.
FILES_FROM = date(2026, 10, 26)
RESEARCH_TEAM = "Research"
#: The Research team: its leader first.
RESEARCH = (
    ("rui@example.com", "Rui Santos"),
    ("fay@example.com", "Fay Olsen"),
    ("gus@example.com", "Gus Novak"),
    ("hana@example.com", "Hana Ito"),
    ("ivo@example.com", "Ivo Petrov"),
    ("jun@example.com", "Jun Park"),
    ("kai@example.com", "Kai Weber"),
    ("lea@example.com", "Lea Martin"),
)
#: The seeded demo's pulse questions.
QUESTIONS = (
    {"id": "workload", "text": "How sustainable was your workload this week?", "scale": "1-5"},
    {"id": "clarity", "text": "How clear were your priorities this week?", "scale": "0-10"},
)
PRIORITIES = (
    "Review the release notes",
    "Pair on the flaky test",
    "Draft the quarterly plan",
    "Fix the login bug",
    "Prepare the demo",
    "Write the migration guide",
    "Interview a candidate",
    "Tidy the backlog",
)
BLOCKERS = (
    "Waiting for access to the staging database",
    "The build server is down",
    "Need a decision on the API naming",
    "Blocked on the design review",
)
COMMENTS = (
    "Too many meetings on Tuesday.",
    "A calmer week, thanks to the no-meeting afternoon.",
    "The on-call rota was heavy.",
    "Good focus time this week.",
)


def seeded_weeks(directory: Path) -> int:
    """How many weeks the demo's folder was seeded with (0 when it was not)."""
    path = directory.resolve() / MARKER
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return 0
    return int(text) if text.isdecimal() and len(text) <= 2 and 0 < int(text) <= MAX_WEEKS else 0


def with_research(settings: Settings, directory: Path) -> Settings:
    """The demo's settings with the Research team (each an empty calendar folder under
    ``directory/calendars/``) and the pulse questions, for a seeded demo."""
    var = directory.resolve()
    people = []
    for email, name in RESEARCH:
        folder = var / "calendars" / email.split("@")[0]
        folder.mkdir(parents=True, exist_ok=True)
        people.append(
            PersonSettings(email=email, name=name, calendar=CalendarSettings(vdir=folder))
        )
    leader, *members = (e for e, _ in RESEARCH)
    team = TeamSettings(name=RESEARCH_TEAM, leader=leader, members=tuple(members))
    section = PulseSettings.model_validate(
        {"to": "everyone", "at": "fri 14:00", "questions": QUESTIONS}
    )
    emails = settings.emails.model_copy(update={"pulse": section})
    return settings.model_copy(
        update={
            "people": (*settings.people, *people),
            "teams": (*settings.teams, team),
            "emails": emails,
        }
    )


@dataclass
class Seeded:
    """What a seeding put in place (and how much of it was new or changed)."""

    weeks: int
    first: date
    people: int = 0
    teams: tuple[str, ...] = ()
    events: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    changed: int = 0

    @property
    def answer_count(self) -> int:
        return sum(self.answers.values())


def seed(rt: Runtime, now: datetime, weeks: int) -> Seeded:
    """Seed ``weeks`` weeks before the Monday of ``now``'s week (see the module docs)."""
    settings = rt.settings
    today = now.astimezone(settings.person(settings.teams[0].leader).tz).date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=weeks)
    people = list(settings.persons())
    teams = list(settings.team_models())
    done = Seeded(weeks, first, len(people), tuple(t.name for t in teams))
    colleagues = {
        p.email: [
            m
            for t in teams
            if p.email in (t.leader, *t.members)
            for m in (t.leader, *t.members)
            if m != p.email
        ]
        for p in people
    }
    for p in people:
        events = _events(p, first, monday, colleagues[p.email] or [p.email])
        window = TimeRange(wall_time(first, time(0), p.tz), wall_time(monday, time(0), p.tz))
        rt.store.save_sync(
            f"demo-seed:{p.email}",
            p.email,
            "demo-seed",
            SyncState(window=window),
            events,
            (),
            True,
            now,
            False,
        )
        done.events += len(events)
        for program, period, values in _answers(p, first, weeks):
            done.answers[program] = done.answers.get(program, 0) + 1
            if rt.store.record_answers(p.email, program, period, values, now):
                done.changed += 1
    return done


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (SEED, *parts)))


def _working_days(first: date, weeks: int) -> list[date]:
    return [
        first + timedelta(days=d)
        for d in range(weeks * 7)
        if (first + timedelta(days=d)).weekday() < 5
    ]


def _events(p: Person, first: date, monday: date, others: list[str]) -> list[Event]:
    """A person's generated meetings: busier in the earlier weeks, some after hours."""
    out = []
    weeks = (monday - first).days // 7
    for day in _working_days(first, weeks):
        if p.email in PLATFORM and day >= FILES_FROM:
            continue
        rng = _rng("events", p.email, day)
        week = (day - first).days // 7
        load = 5 - round(2 * week / max(1, weeks - 1))  # 5 meetings a day early on, 3 later
        start = time(9, 30)
        for n in range(rng.randint(max(1, load - 2), load)):
            begin = wall_time(day, start, p.tz) + timedelta(minutes=rng.choice((0, 15, 30)))
            length = timedelta(minutes=rng.choice((30, 45, 60, 90)))
            out.append(
                Event(
                    id=f"seed-{p.email}-{day}-{n}",
                    calendar_id=f"demo-seed:{p.email}",
                    start=begin,
                    end=begin + length,
                    attendees=(p.email, rng.choice(others)),
                    organizer=p.email,
                    response=Response.ORGANIZER,
                )
            )
            start = (begin + length).astimezone(p.tz).time()
        if rng.random() < 0.1:  # a call with New York after hours
            late = wall_time(day, time(18), p.tz)
            out.append(
                Event(
                    id=f"seed-{p.email}-{day}-late",
                    calendar_id=f"demo-seed:{p.email}",
                    start=late,
                    end=late + timedelta(minutes=45),
                    attendees=(p.email, rng.choice(others)),
                    organizer=p.email,
                )
            )
    return out


#: The demo team's people, whose own calendar files cover the last two weeks.
PLATFORM = frozenset(
    ("ana@example.com", "bo@example.com", "cy@example.com", "dee@example.com", "eli@example.com")
)


def _answers(p: Person, first: date, weeks: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(program, period, values) of everything a person answered in the seeded weeks."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for w in range(weeks):
        monday = first + timedelta(weeks=w)
        rng = _rng("pulse", p.email, monday)
        if rng.random() < 0.8:
            calmer = w / max(1, weeks - 1)  # later weeks feel more sustainable
            workload = min(5, max(1, round(2 + 2 * calmer + rng.uniform(-1, 1))))
            values: dict[str, Any] = {
                "workload": workload,
                "clarity": min(10, max(0, round(5 + 3 * calmer + rng.uniform(-2, 2)))),
            }
            if rng.random() < 0.3:
                values["workload.comment"] = rng.choice(COMMENTS)
                values["workload.share"] = 1 if rng.random() < 0.6 else None
            out.append((pulse.NAME, pulse.week_of(monday), values))
    for day in _working_days(first, weeks):
        rng = _rng("day", p.email, day)
        if rng.random() < 0.6:
            picks = rng.sample(PRIORITIES, 2)
            checkin: dict[str, Any] = {"priorities": "\n".join(picks), "share": "leader"}
            if rng.random() < 0.2:
                checkin["blocker"] = rng.choice(BLOCKERS)
            committed = rng.random() < 0.5
            if committed:
                checkin["commitments"] = "1"
            out.append(("checkin", day.isoformat(), checkin))
            if committed:
                out.append(
                    ("partners", day.isoformat(), {"done:1": 1 if rng.random() < 0.7 else 0})
                )
        if rng.random() < 0.5:
            out.append(("reflection", day.isoformat(), {"score": rng.randint(2, 5)}))
    return out
