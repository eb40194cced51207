"""Signing in to the dashboard with a magic link from a real email, through a real
``steadyhand serve``: single use, leaders and admins only, rate-limited, 8-hour sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dashboard_web import NOW, Board, csrf_of, serve_at, text_of


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    with serve_at(tmp_path_factory.mktemp("signin"), NOW) as running:
        yield running


def test_without_a_session_the_dashboard_asks_to_sign_in_with_an_email_field(board: Board) -> None:
    page = requests.get(f"{board.base}/dashboard", timeout=10)
    assert page.status_code == 200
    assert "Sign in" in text_of(page.text)
    assert 'name="email"' in page.text


def test_a_leader_signs_in_by_the_emailed_link_and_the_link_works_once(board: Board) -> None:
    session = board.sign_in("pl@example.com")
    page = session.get(f"{board.base}/dashboard", timeout=10)
    assert "Five" in text_of(page.text) and "Four" not in text_of(page.text)
    attributes = [a.strip().lower() for a in board.set_cookie.split(";")]
    assert attributes[0].startswith("steadyhand_session=")
    assert {"httponly", "samesite=lax", "max-age=28800", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # web.base_url is http here
    (link,) = board.sign_in_links("pl@example.com")[-1:]
    again = requests.Session()
    form = again.get(link, timeout=10)
    used = again.post(
        link, data={"csrf": csrf_of(form.text)}, headers={"Origin": board.base}, timeout=10
    )
    assert used.status_code == 400
    assert "This sign-in link was used already" in text_of(used.text)


def test_opening_a_sign_in_link_without_pressing_the_button_uses_nothing(board: Board) -> None:
    session = requests.Session()
    board.ask_for_link(session, "boss@example.com")
    (link,) = board.sign_in_links("boss@example.com")
    for _ in range(2):  # a mail scanner opening it
        assert requests.get(link, timeout=10).status_code == 200
    form = session.get(link, timeout=10)
    got = session.post(
        link, data={"csrf": csrf_of(form.text)}, headers={"Origin": board.base}, timeout=10
    )
    assert got.status_code == 200 and "Dashboard" in text_of(got.text)
    assert "Four" in text_of(got.text) and "Five" in text_of(got.text)  # an admin sees all


def test_someone_who_leads_no_team_gets_the_same_words_and_no_email(board: Board) -> None:
    for who in ("f1@example.com", "stranger@example.org"):
        got = board.ask_for_link(requests.Session(), who)
        assert got.status_code == 200
        assert "If that address belongs to a team leader" in text_of(got.text)
        assert board.emails_to(who) == []


def test_the_fourth_request_for_a_link_in_15_minutes_is_refused_in_words(board: Board) -> None:
    said = [board.ask_for_link(requests.Session(), "ql@example.com") for _ in range(4)]
    assert [r.status_code for r in said] == [200, 200, 200, 429]
    assert "asked for 3 sign-in links in the last 15 minutes" in text_of(said[3].text)
    assert len(board.sign_in_links("ql@example.com")) == 3


def test_a_sign_in_form_from_another_site_is_refused(board: Board) -> None:
    session = requests.Session()
    page = session.get(f"{board.base}/dashboard", timeout=10)
    got = session.post(
        f"{board.base}/signin",
        data={"csrf": csrf_of(page.text), "nonce": "x", "email": "ol@example.com"},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert got.status_code == 403
    assert board.emails_to("ol@example.com") == []


def test_a_session_ends_after_8_hours_and_sign_out_ends_it_at_once(
    board: Board, tmp_path: Path
) -> None:
    session = board.sign_in("ol@example.com")
    cookie = session.cookies.get("steadyhand_session")
    assert cookie
    with serve_at(board.folder, NOW + timedelta(hours=7, minutes=59)) as later:
        page = requests.get(
            f"{later.base}/dashboard", cookies={"steadyhand_session": cookie}, timeout=10
        )
        assert "Big" in text_of(page.text)
    with serve_at(board.folder, NOW + timedelta(hours=8, minutes=1)) as later:
        page = requests.get(
            f"{later.base}/dashboard", cookies={"steadyhand_session": cookie}, timeout=10
        )
        assert "Your session has ended (sessions last 8 hours). Sign in again." in text_of(
            page.text
        )
        assert "Big" not in text_of(page.text)
    page = session.get(f"{board.base}/dashboard", timeout=10)
    out = session.post(
        f"{board.base}/signout",
        data={"csrf": csrf_of(page.text)},
        headers={"Origin": board.base},
        timeout=10,
    )
    assert "You are signed out." in text_of(out.text)
    assert "Sign in" in text_of(session.get(f"{board.base}/dashboard", timeout=10).text)


def test_a_tampered_or_expired_sign_in_link_is_refused_in_words(board: Board) -> None:
    session = requests.Session()
    board.ask_for_link(session, "ol@example.com")
    link = board.sign_in_links("ol@example.com")[-1]
    tampered = requests.get(link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"), timeout=10)
    assert tampered.status_code == 400
    assert "This sign-in link does not work" in text_of(tampered.text)
    with serve_at(board.folder, NOW + timedelta(minutes=16)) as later:
        late = requests.get(link.replace(board.base, later.base), timeout=10)
        assert late.status_code == 400
        assert "Sign-in links work for 15 minutes." in text_of(late.text)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=st.text(max_size=400),
    token=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=200),
)
def test_any_address_or_token_is_answered_in_words_and_mails_no_one_else(
    board: Board, address: str, token: str
) -> None:
    before = len(list((board.folder / "var" / "outbox" / "new").glob("*")))
    got = board.ask_for_link(requests.Session(), address)
    assert got.status_code in (200, 400, 429), text_of(got.text)
    assert "Traceback" not in got.text
    link = requests.get(f"{board.base}/signin/{quote(token, safe='')}", timeout=10)
    assert link.status_code in (400, 404), text_of(link.text)
    assert "Something went wrong" not in text_of(link.text)
    after = len(list((board.folder / "var" / "outbox" / "new").glob("*")))
    assert after == before
