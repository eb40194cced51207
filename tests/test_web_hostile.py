"""Hostile input to `steadyhand serve`: random form fields, tokens and scores never get
a 500 nor change another person's data; a huge or strange body and a store that does
not answer are refused in words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_serve import KEY, free_port
from tests.waiting import wait_for
from tests.web_server import (
    NOW,
    PEOPLE,
    Web,
    answer,
    assert_headers,
    config_text,
    serve_process,
    tampered,
    text_of,
    web_server,
)
from worker.links import Links, Purpose


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    with web_server(tmp_path_factory.mktemp("web")) as running:
        yield running
    assert "Traceback" not in running.served.stderr, running.served.stderr


# -- hostile input -----------------------------------------------------------------------

FIELDS = [
    "csrf",
    "score",
    "moved",
    "dampened",
    "choice",
    "until",
    "action",
    "program",
    "none",
    "confirm",
    "period",
    "List-Unsubscribe",
]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "1",
            "5",
            "0",
            "-1",
            "99999999999999999999",
            "one",
            "all",
            "pause",
            "programs",
            "resume",
            "delete_answers",
            "yes",
            "One-Click",
            "2026-11-05",
            "9999-12-31",
            "0001-01-01",
            "2026-02-30",
            "*",
            "\x00",
            "\ud800x",
            "é" * 3000,
        ]
    ),
)


@pytest.fixture(scope="module")
def sides(web: Web) -> tuple[str, str]:
    """An attacker (their own links) and a bystander whose data must never change."""
    attacker, bystander = web.person(), web.person()
    answer(web, bystander, score="4", moved="mine")
    web.store.unsubscribe(bystander, "digest", NOW)
    return attacker, bystander


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(
        ["answer", "journal", "journal-delete", "unsubscribe", "preferences", "export"]
    ),
    token_kind=st.sampled_from(
        ["valid", "valid", "valid", "other purpose", "random", "tampered", "expired"]
    ),
    period=st.sampled_from(["2026-11-05", "2026-11-04", "2026-11-01", "", "W45", "2026-13-01"]),
    program=st.sampled_from(["reflection", "digest", "*", "bundle", "nope", ""]),
    random_token=st.text(min_size=1, max_size=60),
    fields=st.dictionaries(st.sampled_from(FIELDS), st.lists(VALUES, max_size=3), max_size=8),
    with_csrf=st.booleans(),
    multipart=st.booleans(),
)
def test_hostile_posts_never_fail_and_never_touch_another_persons_data(
    web: Web,
    sides: tuple[str, str],
    route: str,
    token_kind: str,
    period: str,
    program: str,
    random_token: str,
    fields: dict[str, list[str]],
    with_csrf: bool,
    multipart: bool,
) -> None:
    attacker, bystander = sides
    before = web.state(bystander)
    purpose = {
        "answer": Purpose.ANSWER,
        "journal": Purpose.JOURNAL,
        "journal-delete": Purpose.JOURNAL,
        "unsubscribe": Purpose.UNSUBSCRIBE,
        "preferences": Purpose.PREFERENCES,
        "export": Purpose.PREFERENCES,
    }[route]
    made = web.token(purpose, attacker, program=program, period=period)
    token = {
        "valid": made,
        "other purpose": web.token(
            Purpose.ANSWER if purpose is not Purpose.ANSWER else Purpose.JOURNAL,
            attacker,
            program,
            period,
        ),
        "random": random_token,
        "tampered": tampered(made),
        "expired": web.token(purpose, attacker, program, period, NOW - timedelta(days=400)),
    }[token_kind]
    form = {k: [v for v in vs if "\ud800" not in v] for k, vs in fields.items()}
    if with_csrf:
        form["csrf"] = [web.links.csrf(token, NOW)]
    tail = {"journal-delete": "/delete", "export": "/export.json"}.get(route, "")
    url = f"{web.base}/{route.split('-', maxsplit=1)[0]}/{quote(token, safe='')}{tail}"
    if route in ("export", "journal"):
        got = web.get(url, params={k: v for k, v in form.items()})
    elif multipart:
        got = web.post(url, files=[(k, (None, v)) for k, vs in form.items() for v in vs])
    else:
        got = web.post(url, form)
    assert got.status_code < 500, (got.status_code, text_of(got.text))
    assert web.state(bystander) == before


def test_a_huge_or_strange_body_is_refused_in_words(web: Web) -> None:
    sam = web.person()
    url = web.url(Purpose.ANSWER, sam)
    huge = web.post(url, {"moved": "x" * 100_000})
    assert huge.status_code == 413
    assert "That was too much to send" in text_of(huge.text)
    odd = web.post(url, b"{}", headers={"Content-Type": "application/json"})
    assert odd.status_code == 400
    assert "That form could not be read" in text_of(odd.text)
    many = web.post(url, "&".join(f"f{i}=1" for i in range(500)))
    assert many.status_code == 400
    assert web.answers(sam) == {}


def test_a_page_whose_store_does_not_answer_says_so_in_words(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    port = free_port()
    down = "postgresql://steadyhand@127.0.0.1:1/x"  # nothing listens on port 1
    text = config_text(port).replace("sqlite:///var/steadyhand.db", down)
    with serve_process(tmp_path, text) as served:
        token = Links(KEY).token(Purpose.ANSWER, PEOPLE[1], "reflection", "2026-11-05", NOW)
        got = requests.get(f"http://127.0.0.1:{port}/answer/{token}", timeout=10)
        assert got.status_code == 503
        assert "steadyhand cannot reach its data right now" in text_of(got.text)
        assert_headers(got)
        assert wait_for(lambda: "-> 503 failed: store unreachable" in served.stderr)
    assert "store unreachable: OperationalError" in served.stderr
    assert "Traceback" not in served.stderr
