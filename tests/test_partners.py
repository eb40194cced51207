"""Accountability partners: the groups are a pure function of the team, its members, the
period and the explicit pairs (everyone in exactly one group of two or three, the same
period always the same groups), and the commitment page refuses links without a line."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from worker.programs import partners

EMAILS = st.lists(
    st.from_regex(r"[a-z]{1,8}@example\.com", fullmatch=True), min_size=2, max_size=40, unique=True
)
PERIODS = st.sampled_from(["2026-W45", "2026-W46", "2026-11", "2026-12", ""])


@given(EMAILS, PERIODS)
def test_everyone_is_in_exactly_one_group_of_two_or_three(members: list[str], period: str) -> None:
    found = partners.groups("Platform", members, period)
    placed = [m for g in found for m in g]
    assert sorted(placed) == sorted(members)  # each exactly once
    assert all(2 <= len(g) <= 3 for g in found)
    assert sum(1 for g in found if len(g) == 3) == len(members) % 2  # a trio only when odd


@given(EMAILS, PERIODS)
def test_the_same_period_gives_the_same_groups_whatever_the_order(
    members: list[str], period: str
) -> None:
    first = partners.groups("Platform", members, period)
    again = partners.groups("Platform", list(reversed(members)), period)
    assert first == again


@given(EMAILS.filter(lambda m: len(m) >= 5))
def test_explicit_pairs_are_kept_as_given(members: list[str]) -> None:
    pair = tuple(members[:2])
    found = partners.groups("Platform", members, "2026-W45", [pair])
    assert pair in found
    placed = [m for g in found for m in g]
    assert sorted(placed) == sorted(members)
    assert all(2 <= len(g) <= 3 for g in found)


def test_a_lone_member_left_by_explicit_pairs_joins_a_pair_as_its_third() -> None:
    found = partners.groups("T", ["a@x.io", "b@x.io", "c@x.io"], "", [("a@x.io", "b@x.io")])
    assert found == [("a@x.io", "b@x.io", "c@x.io")]


def test_pairs_rotate_with_the_period() -> None:
    members = [f"p{i}@example.com" for i in range(12)]
    weeks = {tuple(partners.groups("Platform", members, f"2026-W{w:02}")) for w in range(40, 48)}
    assert len(weeks) > 1


def test_the_rotation_period_is_the_week_the_month_or_none() -> None:
    day = date(2026, 11, 5)
    assert partners.period_of("weekly", day) == "2026-W45"
    assert partners.period_of("monthly", day) == "2026-11"
    assert partners.period_of("never", day) == ""


def test_a_member_alone_has_no_partner() -> None:
    assert partners.groups("T", ["a@x.io"], "") == []
    assert partners.partners_of("a@x.io", []) == ()
