"""The dashboard through a real ``steadyhand serve``: pulse beside load per team and week,
every pulse figure through the privacy rule, a leader's own teams only, 12 weeks of inline
SVG charts, experiments with their before and after; and what the dashboard's code gets
from the store (never a person's pulse score)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import write
from tests.dashboard_web import (
    NOW,
    TEAMS,
    WEEK,
    Board,
    config_text,
    csrf_of,
    seed_meetings,
    seed_pulse,
    serve_at,
    text_of,
)
from tests.test_web_browser import click, open_page, phone, words
from tests.waiting import wait_for
from worker import config as config_mod
from worker.core.privacy import DIFFERENCING
from worker.store import Store
from worker.web import dashboard

__all__ = ["phone"]  # the Chromium fixture

FIVE = {
    "f1@example.com": 4,
    "f2@example.com": 4,
    "f3@example.com": 3,
    "f4@example.com": 5,
    "f5@example.com": 2,
}
FOUR = {"g1@example.com": 5, "g2@example.com": 5, "g3@example.com": 4, "g4@example.com": 1}
BIG = {"ol@example.com": 3, **{f"b{i}@example.com": 4 for i in range(1, 7)}}


def seed(store: Store, settings: Any) -> None:
    seed_pulse(store, {**FIVE, **FOUR, **BIG})
    leader, members = TEAMS["Five"]
    seed_meetings(store, settings, [leader, *members])
    store.record_answers(
        "f1@example.com",
        "pulse",
        WEEK,
        {"workload.comment": "Too many syncs", "workload.share": 1},
        NOW,
    )
    store.record_answers(
        "f2@example.com",
        "pulse",
        WEEK,
        {"workload.comment": "Keep this private", "workload.share": 0},
        NOW,
    )


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    with serve_at(tmp_path_factory.mktemp("dashboard"), NOW) as running:
        seed(running.store, running.settings)
        yield running


@pytest.fixture(scope="module")
def five(board: Board) -> requests.Session:
    return board.sign_in("pl@example.com")


def team_section(page: str, team: str) -> str:
    found = re.search(rf'<section class="team" id="team-{team}">(.*?)</section>', page, re.S)
    assert found, f"no section of team {team}"
    return found.group(1)


def this_week(section: str) -> str:
    found = re.search(rf'<tr class="week" data-week="{WEEK}">(.*?)</tr>', section, re.S)
    assert found
    return text_of(found.group(1))


def test_a_pulse_answered_by_5_of_6_shows_its_mean_beside_the_load(
    board: Board, five: requests.Session
) -> None:
    page = five.get(f"{board.base}/dashboard", timeout=10).text
    row = this_week(team_section(page, "Five"))
    assert "3.6 (5 of 6 answered; scores 1: 0 · 2: 1 · 3: 1 · 4: 2 · 5: 1)" in row
    # the week's load beside it: meeting hours (median, spread), after-hours minutes,
    # overloaded days, focus hours (the leader's calendar has no meetings)
    assert row.startswith("2026-W45 8.0 h (0.0–8.0) 0 0 28.0 h 3.6 (5 of 6 answered"), row
    assert "Too many syncs" in row and "Keep this private" not in row
    assert "f1" not in row.lower()


def test_a_pulse_answered_by_4_of_6_says_not_enough_answers(board: Board) -> None:
    session = board.sign_in("ql@example.com")
    row = this_week(team_section(session.get(f"{board.base}/dashboard", timeout=10).text, "Four"))
    assert "Not enough answers to show (n < 5)" in row
    assert "4 of 6" not in row and "3.8" not in row


def test_a_leader_of_another_team_is_refused_in_words(board: Board, five: requests.Session) -> None:
    got = five.get(f"{board.base}/dashboard", params={"team": "Four"}, timeout=10)
    assert got.status_code == 403
    assert "This team is not yours to see" in text_of(got.text)
    assert five.get(f"{board.base}/dashboard", params={"team": "Five"}, timeout=10).ok


def test_a_leader_of_two_teams_sharing_all_but_two_members_sees_one_figure_withheld(
    board: Board,
) -> None:
    session = board.sign_in("ol@example.com")
    page = session.get(f"{board.base}/dashboard", timeout=10).text
    big, small = this_week(team_section(page, "Big")), this_week(team_section(page, "Small"))
    assert "3.9 (7 of 7 answered" in big
    assert DIFFERENCING in small and "of 5 answered" not in small
    # one team at a time gives away nothing more
    alone = session.get(f"{board.base}/dashboard", params={"team": "Small"}, timeout=10).text
    assert "Big" not in text_of(alone)
    assert DIFFERENCING in this_week(team_section(alone, "Small"))


def test_twelve_weeks_of_charts_and_an_experiment_marked_in_chromium(
    board: Board, five: requests.Session, phone: Any
) -> None:
    from selenium.webdriver.common.by import By

    open_page(phone, f"{board.base}/dashboard")
    before = set(board.sign_in_links("pl@example.com"))
    phone.find_element(By.ID, "email").send_keys("pl@example.com\n")  # Enter sends the form
    assert wait_for(lambda: "a sign-in link is on its way" in page_words(phone))
    (link,) = set(board.sign_in_links("pl@example.com")) - before
    open_page(phone, link)
    click(phone, "Sign in")
    settle(phone, "Dashboard · steadyhand")
    section = phone.find_element(By.ID, "team-Five")
    assert section.find_elements(By.CSS_SELECTOR, "line.experiment") == []
    section.find_element(By.TAG_NAME, "summary").click()  # "Record an experiment for Five"
    section.find_element(By.NAME, "name").send_keys("No-meeting Wednesdays")
    section.find_element(By.NAME, "start").send_keys("10142026")  # the date field, en-US
    for box in section.find_elements(By.NAME, "figures"):
        if box.get_attribute("value") in ("meeting_hours", "pulse"):
            box.click()
    click(phone, "Record the experiment")
    settle(phone, "Dashboard · steadyhand")
    assert "The experiment is recorded." in words(phone)
    section = phone.find_element(By.ID, "team-Five")
    charts = section.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) == 3  # meeting hours, focus hours, the pulse question
    assert len(charts[0].find_elements(By.CSS_SELECTOR, "circle.point")) == 12
    assert len(charts[0].find_elements(By.CSS_SELECTOR, "line.experiment")) == 1
    result = " ".join(section.find_element(By.CLASS_NAME, "experiment-result").text.split())
    assert result.startswith("Experiment: No-meeting Wednesdays (from 2026-10-14, week 2026-W42")
    assert "4 weeks before 4 weeks since" in result
    assert "Meeting hours per person (median) * 11.0 10.0" in result
    assert phone.execute_script("return document.scripts.length") == 0


def page_words(phone: Any) -> str:
    """The page's words, or "" while it is being replaced."""
    from selenium.common.exceptions import WebDriverException

    try:
        return words(phone)
    except WebDriverException:
        return ""


def settle(phone: Any, title: str) -> None:
    """Wait for the page a POST and its redirect lead to: its title, fully loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(phone, 5, poll_frequency=0.05).until(
        lambda d: d.title == title and d.execute_script("return document.readyState") == "complete"
    )


def test_the_dashboard_code_never_receives_a_persons_pulse_score(tmp_path: Path) -> None:
    settings = config_mod.load(write(tmp_path / "steadyhand.yaml", config_text(8080)))
    store = Store(f"sqlite:///{tmp_path / 'var' / 'steadyhand.db'}")
    try:
        seed(store, settings)
        received: list[tuple[str, Any]] = []

        class Recording:
            def __getattr__(self, name: str) -> Any:
                method = getattr(store, name)

                def call(*args: Any, **kwargs: Any) -> Any:
                    result = method(*args, **kwargs)
                    received.append((name, result))
                    return result

                return call

        teams = list(settings.team_models())
        dashboard.build(Recording(), settings, teams, NOW.date())  # type: ignore[arg-type]
    finally:
        store.close()
    names = {name for name, _ in received}
    assert "pulse_counts" in names
    assert names <= {
        "pulse_counts",
        "shared_comments",
        "blockers_by_day",
        "commitments_done_by_day",
        "experiments_of",
        "events_for",
    }
    for name, result in received:
        if name != "events_for":  # calendars, not answers
            assert_no_person_beside_a_number(result)


def assert_no_person_beside_a_number(value: Any) -> None:
    """No mapping, row or record holds an address and a number together."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [getattr(value, f.name) for f in dataclasses.fields(value)]
        people = [p for p in parts if isinstance(p, str) and "@" in p]
        assert not people, value
        for part in parts:
            assert_no_person_beside_a_number(part)
    elif isinstance(value, dict):
        assert not any(isinstance(k, str) and "@" in k for k in value), value
        for v in value.values():
            assert_no_person_beside_a_number(v)
    elif isinstance(value, (list, tuple)):
        has_person = any(isinstance(v, str) and "@" in v for v in value)
        assert not (has_person and any(isinstance(v, int) for v in value)), value
        for v in value:
            assert_no_person_beside_a_number(v)


def test_analyze_html_shows_load_and_pulse_per_team_and_week_through_the_same_rule(
    tmp_path: Path,
) -> None:
    settings = config_mod.load(write(tmp_path / "steadyhand.yaml", config_text(8080)))
    store = Store(settings.store_url)
    try:
        seed_pulse(store, {**FIVE, **FOUR, **BIG})
    finally:
        store.close()
    env = {**os.environ, "STEADYHAND_SECRET_KEY": "k" * 32}
    env.pop("STEADYHAND_CONFIG", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "analyze",
            "-c",
            "steadyhand.yaml",
            "--week",
            WEEK,
            "--format",
            "html",
            "--now",
            NOW.isoformat(),
            "-o",
            "report.html",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = text_of(page[page.index('id="load-and-pulse"') :].split("</section>")[0])
    assert "Five Week Meeting hours (median)" in section
    assert f"{WEEK} 0.0 h 0 3.6 (5 of 6 answered)" in section
    assert "Four" in section and "Not enough answers to show (n < 5)" in section
    assert DIFFERENCING in section


def test_blockers_shared_with_the_leader_and_commitments_done_are_counted_per_week(
    tmp_path: Path,
) -> None:
    settings = config_mod.load(write(tmp_path / "steadyhand.yaml", config_text(8080)))
    store = Store(settings.store_url)
    monday = "2026-11-02"
    try:
        for person, share in (
            ("f1@example.com", None),
            ("f2@example.com", "team"),
            ("f3@example.com", "me"),
            ("f4@example.com", "leader"),
        ):
            values: dict[str, str | int | None] = {"blocker": "Waiting on access", "share": share}
            store.record_answers(person, "checkin", monday, values, NOW)
        store.record_answers("f5@example.com", "checkin", "2026-10-28", {"blocker": "x"}, NOW)
        store.record_answers("f1@example.com", "partners", monday, {"done:1": 1, "done:2": 0}, NOW)
        store.record_answers("f2@example.com", "partners", "2026-11-04", {"done:3": 1}, NOW)
        teams = [t for t in settings.team_models() if t.name == "Five"]
        values_ = dashboard.build(store, settings, teams, NOW.date())
    finally:
        store.close()
    rows = {r["week"]: r for r in values_["teams"][0]["rows"]}
    assert (rows[WEEK]["blockers"], rows[WEEK]["done"]) == (3, 2)  # not the one kept to "me"
    assert (rows["2026-W44"]["blockers"], rows["2026-W44"]["done"]) == (1, 0)


def test_an_incomplete_experiment_or_one_for_another_team_is_refused_in_words(
    board: Board, five: requests.Session
) -> None:
    page = five.get(f"{board.base}/dashboard", timeout=10).text
    base = {
        "csrf": csrf_of(page),
        "team": "Five",
        "name": "Fewer syncs",
        "start": "2026-10-01",
        "figures": "meeting_hours",
    }
    for changed, status, words_ in (
        ({"name": " "}, 400, "The experiment was not recorded"),
        ({"start": "1 October"}, 400, "The experiment was not recorded"),
        ({"figures": "nonsense"}, 400, "The experiment was not recorded"),
        ({"team": "Four"}, 403, "This team is not yours"),
        ({"csrf": "forged"}, 403, "This form cannot be sent from here"),
    ):
        got = five.post(
            f"{board.base}/dashboard/experiments",
            data={**base, **changed},
            headers={"Origin": board.base},
            timeout=10,
            allow_redirects=False,
        )
        assert got.status_code == status, changed
        assert words_ in text_of(got.text)
    recorded = board.store.experiments_of(["Five", "Four"])
    assert "Fewer syncs" not in [e.name for e in recorded]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(team=st.text(max_size=300).filter(lambda t: t != "Five"))
def test_any_other_team_name_is_refused_in_words(
    board: Board, five: requests.Session, team: str
) -> None:
    got = five.get(f"{board.base}/dashboard", params={"team": team}, timeout=10)
    assert got.status_code == 403
    assert "This team is not yours to see" in text_of(got.text)
