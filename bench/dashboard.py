"""Benchmark of the dashboard (docs/benchmarks.md, issue 14 acceptance 4).

Generates, not timed, a SQLite store of 100 teams of 8 people with 52 weeks of data each:
three meetings every working day (an hour each at 9:00, 11:00 and 14:00, plus a late
one on Thursdays), a weekly pulse answer per person, a check-in blocker now and then and
partner commitments marked done. Then, in the same run:

* **dashboard**: what an admin's ``GET /dashboard`` does server-side for all 100 teams and
  their last 12 weeks: :func:`worker.web.dashboard.build` (the store's queries, the
  analysis of every member's days, the privacy rule) and the page's template rendered;
* **bare query**: the store reads of the same rows and nothing else: each member's events
  of those 12 weeks (``events_for``) and one ``SELECT`` of the answers of those weeks;

and prints both, the ratio and the page's size.

Run: ``.venv/bin/python bench/dashboard.py [--teams 100] [--weeks 52] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select

from worker import config as config_mod
from worker.core.model import Event, SyncState, TimeRange, local_day_range
from worker.store import Store
from worker.store.tables import answers
from worker.web.dashboard import WEEKS, build, monday, visible_teams, week_of
from worker.web.pages import environment

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 5, 17, 0, tzinfo=BERLIN)
ADMIN = "admin@example.com"
SIZE = 8


def config_text(teams: int) -> str:
    people = [f"  - email: {ADMIN}\n    name: Admin\n    calendar: {{memory: admin}}"]
    blocks = []
    for t in range(teams):
        members = [f"p{t:03d}x{i}@example.com" for i in range(SIZE)]
        people += [
            f"  - email: {m}\n    name: Person {t} {i}\n    calendar: {{memory: m{t}x{i}}}"
            for i, m in enumerate(members)
        ]
        blocks.append(
            f"  - name: Team {t:03d}\n    leader: {members[0]}\n"
            f"    members: [{', '.join(members[1:])}]"
        )
    return (
        "timezone: Europe/Berlin\nstore: sqlite:///var/steadyhand.db\n"
        f"admins: [{ADMIN}]\npeople:\n"
        + "\n".join(people)
        + "\nteams:\n"
        + "\n".join(blocks)
        + "\nemails:\n  pulse:\n    questions:\n"
        '      - {id: workload, text: "How sustainable was your workload this week?"}\n'
    )


def generate(store: Store, settings: config_mod.Settings, weeks: int, seed: int) -> int:
    rng = random.Random(seed)
    first = monday(NOW.date()) - timedelta(weeks=weeks - 1)
    rows, made = [], 0
    for team in settings.team_models():
        for person in team.everyone:
            ref = settings.calendar_ref(person)
            assert ref is not None
            evs = []
            for n in range(weeks * 7):
                day = first + timedelta(days=n)
                if day > NOW.date():
                    break
                if day.weekday() < 5:
                    hours = [9, 11, 14] + ([19] if day.weekday() == 3 else [])
                    for h in hours:
                        start = datetime.combine(day, datetime.min.time(), BERLIN) + timedelta(
                            hours=h, minutes=rng.choice((0, 0, 30))
                        )
                        evs.append(
                            Event(
                                id=f"{person}-{day}-{h}",
                                calendar_id=ref.location,
                                start=start,
                                end=start + timedelta(minutes=rng.choice((30, 60, 90))),
                                attendees=(person, team.leader),
                                organizer=team.leader,
                            )
                        )
                    if rng.random() < 0.1:
                        rows.append(_row(person, "checkin", day.isoformat(), "blocker", None, "x"))
                    if rng.random() < 0.1:
                        rows.append(_row(person, "partners", day.isoformat(), "done:1", 1, None))
                if day.weekday() == 4 and rng.random() < 0.8:
                    rows.append(
                        _row(person, "pulse", week_of(day), "workload", rng.randint(1, 5), None)
                    )
            window = TimeRange(
                local_day_range(first, BERLIN).start, local_day_range(NOW.date(), BERLIN).end
            )
            store.save_sync(
                ref.key, person, ref.kind, SyncState(window=window), evs, (), True, NOW, False
            )
            made += len(evs)
    with store.engine.begin() as conn:
        conn.execute(insert(answers), rows)
    return made


def _row(
    person: str, program: str, period: str, q: str, score: int | None, text: str | None
) -> dict[str, object]:
    ts = NOW.timestamp()
    return {
        "person": person,
        "program": program,
        "period": period,
        "question": q,
        "score": score,
        "text": text,
        "created_ts": ts,
        "updated_ts": ts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20261105)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = folder / "steadyhand.yaml"
        cfg.write_text(config_text(args.teams), encoding="utf-8")
        settings = config_mod.load(cfg)
        store = Store(settings.store_url)
        began = time.perf_counter()
        events = generate(store, settings, args.weeks, args.seed)
        made = time.perf_counter() - began
        teams = visible_teams(settings, ADMIN)
        env = environment()
        today = NOW.date()
        first_day: date = monday(today) - timedelta(weeks=WEEKS - 1)
        span = TimeRange(
            local_day_range(first_day, BERLIN).start, local_day_range(today, BERLIN).end
        )
        people = [p for t in teams for p in t.everyone]
        last_day = (monday(today) + timedelta(days=6)).isoformat()
        best_page = best_bare = float("inf")
        size = 0
        for _ in range(args.repeat):
            began = time.perf_counter()
            values = build(store, settings, teams, today)
            page = env.get_template("dashboard.html.j2").render(
                title="Dashboard",
                csrf="x",
                viewer="Admin",
                today=today.isoformat(),
                said="",
                problem="",
                root="",
                **values,
            )
            best_page = min(best_page, time.perf_counter() - began)
            size = len(page.encode())
            began = time.perf_counter()
            got = sum(len(store.events_for(p, span, BERLIN)) for p in people)
            with store.engine.connect() as conn:
                got += len(
                    conn.execute(
                        select(answers).where(
                            or_(
                                answers.c.period.between(week_of(first_day), week_of(today)),
                                answers.c.period.between(first_day.isoformat(), last_day),
                            )
                        )
                    ).all()
                )
            best_bare = min(best_bare, time.perf_counter() - began)
        store.close()
    print(f"dashboard benchmark: {args.teams} teams x {SIZE} people, {args.weeks} weeks")
    print(f"  generated          {events:,} events, {made:.1f} s (not timed)")
    print(
        f"  dashboard          {best_page:.2f} s  (admin, {len(teams)} teams, last {WEEKS} weeks, "
        f"page {size / 1024:.0f} KiB)"
    )
    print(f"  bare store query   {best_bare:.2f} s  ({got:,} rows)")
    print(f"  ratio              {best_page / best_bare:.1f}")


if __name__ == "__main__":
    main()
