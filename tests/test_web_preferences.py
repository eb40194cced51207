"""Fewer emails and one's own data, through a real `steadyhand serve`: the RFC 8058
one-click POST, the unsubscribe page's choices, the preferences' opt-outs and pause,
the JSON export holding exactly the person's data, and "Delete my answers"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.web_server import (
    NOW,
    TODAY,
    Web,
    answer,
    assert_headers,
    page_of,
    text_of,
    web_server,
)
from worker.links import Purpose


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    with web_server(tmp_path_factory.mktemp("web")) as running:
        yield running
    assert "Traceback" not in running.served.stderr, running.served.stderr


# -- unsubscribe -------------------------------------------------------------------------


@pytest.mark.parametrize("multipart", [False, True])
def test_the_rfc_8058_one_click_post_unsubscribes_from_the_links_program(
    web: Web, multipart: bool
) -> None:
    lea = web.person()
    url = web.links.unsubscribe_link(lea, "reflection", TODAY.isoformat(), NOW)
    assert url is not None
    body = {"List-Unsubscribe": (None, "One-Click")} if multipart else None
    got = (
        web.post(url, files=body)
        if multipart
        else web.post(
            url,
            "List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert got.status_code == 200
    assert got.text == "Unsubscribed: you will get no more end-of-day reflection emails.\n"
    assert web.store.unsubscribed_from(lea) == {"reflection"}
    assert web.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 200  # again: fine
    bundle = web.links.unsubscribe_link(lea, "bundle", TODAY.isoformat(), NOW)
    assert bundle is not None
    assert web.post(bundle, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert web.store.unsubscribed_from(lea) == {"reflection", "*"}


def test_the_unsubscribe_page_records_the_choice_it_is_sent(web: Web) -> None:
    max_, ned = web.person(), web.person()
    url = web.url(Purpose.UNSUBSCRIBE, max_, program="digest")
    said, csrf = page_of(web, url)
    assert "Only weekly team load digests" in said
    got = web.post(url, {"csrf": csrf, "choice": "one"})
    assert "You are unsubscribed You will get no more weekly team load digests." in text_of(
        got.text
    )
    assert web.store.unsubscribed_from(max_) == {"digest"}
    got = web.post(url, {"csrf": csrf, "choice": "all"})
    assert "You will get no more emails from steadyhand." in text_of(got.text)
    assert web.store.unsubscribed_from(max_) == {"digest", "*"}
    said, _ = page_of(web, url)
    assert "You already get no email from steadyhand." in said

    url = web.url(Purpose.UNSUBSCRIBE, ned)
    _, csrf = page_of(web, url)
    past = web.post(url, {"csrf": csrf, "choice": "pause", "until": "2026-11-01"})
    assert past.status_code == 400
    assert "Sunday 1 November 2026 has passed: choose today or a later day." in text_of(past.text)
    assert 'value="2026-11-01"' in past.text
    assert web.store.paused_until(ned) is None
    paused = web.post(url, {"csrf": csrf, "choice": "pause", "until": "2026-11-20"})
    assert paused.status_code == 200
    assert "No emails until the end of Friday 20 November 2026" in text_of(paused.text)
    assert web.store.paused_until(ned) == TODAY.replace(day=20)
    assert web.store.unsubscribed_from(ned) == set()


# -- preferences -------------------------------------------------------------------------


def test_preferences_opt_out_and_back_in_pause_and_resume(web: Web) -> None:
    ola = web.person()
    url = web.url(Purpose.PREFERENCES, ola)
    _, csrf = page_of(web, url)
    got = web.post(url, {"csrf": csrf, "action": "programs", "program": ["overload"]})
    assert got.status_code == 200 and "Saved." in text_of(got.text)
    assert web.store.unsubscribed_from(ola) == {"reflection", "recognize"}
    page = web.get(url).text
    assert 'value="overload" checked' in page and 'value="reflection">' in page
    web.post(url, {"csrf": csrf, "action": "programs", "program": ["reflection", "overload"]})
    assert web.store.unsubscribed_from(ola) == {"recognize"}
    web.post(url, {"csrf": csrf, "action": "programs", "none": "yes"})
    assert web.store.unsubscribed_from(ola) == {"*", "reflection", "recognize", "overload"}
    assert 'name="none" value="yes" checked' in web.get(url).text
    paused = web.post(url, {"csrf": csrf, "action": "pause", "until": "2026-12-24"})
    assert "Paused: no emails until the end of Thursday 24 December 2026." in text_of(paused.text)
    assert "Every email is paused until the end of Thursday 24 December 2026." in text_of(
        web.get(url).text
    )
    resumed = web.post(url, {"csrf": csrf, "action": "resume"})
    assert "Resumed" in text_of(resumed.text)
    assert web.store.paused_until(ola) is None
    too_far = web.post(url, {"csrf": csrf, "action": "pause", "until": "2028-01-01"})
    assert too_far.status_code == 400
    assert "A pause can last a year at most" in text_of(too_far.text)


def test_the_export_holds_exactly_the_persons_own_data_and_delete_my_answers(web: Web) -> None:
    pia, quinn = web.person(), web.person()
    web.store_events(pia, [(TODAY, 9, 1), (TODAY - timedelta(days=3), 9, 1)])
    answer(web, pia, score="4", moved="Pia's words")
    answer(web, quinn, score="1", moved="Quinn's words")
    web.store.unsubscribe(pia, "digest", NOW)
    url = web.url(Purpose.PREFERENCES, pia)
    said, csrf = page_of(web, url)
    assert "Days of events stored 2" in said and "Your answers 2" in said
    assert "memory:person" in said  # the calendar, by the name the store knows it
    got = web.get(url + "/export.json")
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Content-Disposition"] == 'attachment; filename="steadyhand-2026-11-05.json"'
    assert_headers(got)
    data = json.loads(got.text)
    assert data["person"] == pia
    assert data["preferences"] == {"paused_until": None, "opted_out": ["digest"]}
    assert data["days_with_events"] == 2
    assert [(c["kind"], c["events"]) for c in data["calendars"]] == [("memory", 2)]
    assert sorted((a["question"], a["score"], a["text"]) for a in data["answers"]) == [
        ("moved", None, "Pia's words"),
        ("score", 4, None),
    ]
    assert "Quinn" not in got.text and quinn not in got.text

    unconfirmed = web.post(url, {"csrf": csrf, "action": "delete_answers"})
    assert unconfirmed.status_code == 400
    assert "nothing was deleted" in text_of(unconfirmed.text)
    assert len(web.answers(pia)) == 2
    deleted = web.post(url, {"csrf": csrf, "action": "delete_answers", "confirm": "yes"})
    assert "Deleted 2 answers." in text_of(deleted.text)
    assert web.answers(pia) == {}
    assert len(web.answers(quinn)) == 2
