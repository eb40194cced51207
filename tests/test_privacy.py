"""The privacy rule (worker/core/privacy.py): minimum size and differencing, for any figures."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.privacy import DIFFERENCING, Figure, shown, too_few

PEOPLE = [f"p{i}" for i in range(12)]


def team(key: str, members: list[str], question: str = "q", period: str = "2026-W45") -> Figure:
    return Figure(key, question, period, frozenset(members))


def test_a_figure_of_five_is_shown_and_of_four_is_withheld_in_words() -> None:
    five, four = team("a", PEOPLE[:5]), team("b", PEOPLE[5:9])
    decisions = shown([five, four], 5)
    assert [d.shown for d in decisions] == [True, False]
    assert decisions[1].reason == "Not enough answers to show (n < 5)"


def test_two_teams_sharing_all_but_two_members_show_only_one_figure() -> None:
    big, small = team("team:A", PEOPLE[:7]), team("team:B", PEOPLE[:5])
    decisions = shown([small, big], 5)
    assert [d.shown for d in decisions] == [False, True]
    assert decisions[0].reason == DIFFERENCING


def test_identical_respondents_are_both_shown_and_other_questions_do_not_interfere() -> None:
    a, b = team("a", PEOPLE[:6]), team("b", PEOPLE[:6])
    other = team("c", PEOPLE[:5], question="other")
    later = team("d", PEOPLE[:5], period="2026-W46")
    assert all(d.shown for d in shown([a, b, other, later], 5))


def test_an_all_teams_figure_takes_precedence_over_a_team_one_person_short() -> None:
    everyone, one_team = team("all", PEOPLE[:10]), team("team:A", PEOPLE[:9])
    assert [d.shown for d in shown([one_team, everyone], 5)] == [False, True]


figures = st.lists(
    st.builds(
        Figure,
        key=st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        question=st.sampled_from(["q1", "q2"]),
        period=st.sampled_from(["2026-W45", "2026-W46"]),
        respondents=st.frozensets(st.sampled_from(PEOPLE), max_size=len(PEOPLE)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(figures, st.integers(min_value=1, max_value=7))
def test_no_two_shown_figures_can_be_subtracted_and_each_is_big_enough(
    given_figures: list[Figure], min_size: int
) -> None:
    decisions = shown(given_figures, min_size)
    assert len(decisions) == len(given_figures)
    visible = [d.figure for d in decisions if d.shown]
    for f in visible:
        assert len(f.respondents) >= min_size
    for a, b in itertools.combinations(visible, 2):
        if (a.question, a.period) == (b.question, b.period):
            gap = len(a.respondents ^ b.respondents)
            assert gap == 0 or gap >= min_size
    for d in decisions:
        assert d.shown or d.reason in (too_few(min_size), DIFFERENCING)


@settings(max_examples=200, deadline=None)
@given(figures, st.integers(min_value=1, max_value=7), st.randoms())
def test_withholding_does_not_depend_on_the_order_figures_come_in(
    given_figures: list[Figure], min_size: int, random: object
) -> None:
    first = {(d.figure, d.shown, d.reason) for d in shown(given_figures, min_size)}
    again = list(given_figures)
    random.shuffle(again)  # type: ignore[attr-defined]
    assert {(d.figure, d.shown, d.reason) for d in shown(again, min_size)} == first
