"""`steadyhand demo --weeks N`: N weeks of generated calendars and answers before the
demo's moment, for the Platform team and a second team (Research) big enough for the
privacy rule; it prints what it seeded, the same data every time (seeding again changes
nothing, another N in the same folder is refused), and without --weeks the demo is as
before (tests/test_golden_demo.py holds its output byte for byte)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from worker.cli.run import demo_settings
from worker.store import Store
from worker.store.tables import answers, events


def table_rows(var: Path) -> dict[str, list[tuple[Any, ...]]]:
    store = Store(f"sqlite:///{var / 'steadyhand.db'}")
    try:
        with store.engine.connect() as conn:
            return {
                "answers": sorted(
                    (r.person, r.program, r.period, r.question, r.score, r.text)
                    for r in conn.execute(select(answers))
                ),
                "events": sorted(
                    (r.calendar_key, r.id, r.start_ts, r.end_ts)
                    for r in conn.execute(select(events))
                    if r.calendar_key.startswith("demo-seed:")
                ),
            }
    finally:
        store.close()


SEEDED = re.compile(
    r"Seeded 12 weeks \(Mon 10 Aug – Sun 01 Nov 2026\) for (\d+) people in 2 teams "
    r"\(Platform, Research\): ([\d,]+) calendar events, ([\d,]+) answers \(([^)]*)\); "
    r"([\d,]+) new or changed"
)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_twelve_weeks_are_seeded_as_said_and_seeding_again_changes_nothing(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    first = run_cli("demo", "--weeks", "12")
    assert first.code == 0, first.err
    said = SEEDED.search(" ".join(first.out.split()))
    assert said, first.out
    people, event_count, answer_count, kinds, changed = said.groups()
    rows = table_rows(project / "var")
    assert number(people) == 13
    assert number(event_count) == len(rows["events"]) > 12 * 5 * 13
    seeded = rows["answers"]  # the demo's own cycle answers nothing
    by_program = Counter((r[0], r[1], r[2]) for r in seeded)  # one answer = person, period
    per_program = Counter(program for _, program, _ in by_program)
    assert number(answer_count) == sum(per_program.values()) == number(changed)
    assert kinds == ", ".join(f"{p} {n:,}" for p, n in sorted(per_program.items()))
    assert set(per_program) == {"pulse", "checkin", "partners", "reflection"}

    # Every week has pulse answers, and Research answers reach the privacy threshold
    # in most weeks (some weeks fewer: "not enough answers" has something to show).
    research = {e for e in demo_settings(project / "var").teams[1].members}
    weeks = Counter(
        period
        for person, program, period in by_program
        if program == "pulse" and person in research
    )
    assert len(weeks) == 12 and all(w.startswith("2026-W") for w in weeks)
    assert sum(1 for n in weeks.values() if n >= 5) >= 8
    blockers = [r for r in seeded if r[1] == "checkin" and r[3] == "blocker"]
    done = [r for r in seeded if r[1] == "partners" and r[4] == 1]
    assert blockers and done

    again = run_cli("demo", "--weeks", "12")
    assert again.code == 0, again.err
    words = " ".join(again.out.split())
    assert "0 new or changed (the same as before: nothing changed)" in words
    assert table_rows(project / "var") == rows


def test_the_same_seed_gives_the_same_data_in_another_folder(run_cli, project: Path) -> None:
    assert run_cli("demo", "--weeks", "2").code == 0
    assert run_cli("demo", "--weeks", "2", "--dir", "other").code == 0
    mine, other = table_rows(project / "var"), table_rows(project / "other")
    assert mine["events"] == other["events"]
    assert mine["answers"] and mine["answers"] == other["answers"]


def test_a_folder_seeded_with_other_weeks_is_refused(run_cli, project: Path) -> None:
    assert run_cli("demo", "--weeks", "2").code == 0
    refused = run_cli("demo", "--weeks", "3")
    assert refused.code != 0
    assert "was seeded with 2 weeks, not 3" in refused.err
    assert "--weeks 2" in refused.err


def test_more_than_a_year_is_refused(run_cli, project: Path) -> None:
    refused = run_cli("demo", "--weeks", "53")
    assert refused.code != 0
    assert not (project / "var" / "steadyhand.db").exists()


def test_without_weeks_the_demo_has_its_one_team_and_seeds_nothing(run_cli, project: Path) -> None:
    done = run_cli("demo")
    assert done.code == 0, done.err
    assert "Seeded" not in done.out and "Research" not in done.out
    assert [t.name for t in demo_settings(project / "var").teams] == ["Platform"]
    assert table_rows(project / "var")["events"] == []


def test_serve_demo_knows_the_seeded_team(run_cli, project: Path) -> None:
    assert run_cli("demo", "--weeks", "1").code == 0
    settings = demo_settings(project / "var")  # what `serve --demo` reads
    assert [t.name for t in settings.teams] == ["Platform", "Research"]
    assert settings.emails.pulse is not None
    assert [q.scale for q in settings.emails.pulse.questions] == ["1-5", "0-10"]
