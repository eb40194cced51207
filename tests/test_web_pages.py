"""The pages of `steadyhand serve`, through a real server process with `requests`: each
page in words with the security headers, answers stored and idempotent, the journal,
bad links and foreign posts refused with nothing changed, and scanners' GETs harmless."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests

from tests.waiting import wait_for
from tests.web_server import (
    EXPIRED,
    INVALID,
    NOW,
    TODAY,
    Web,
    answer,
    assert_headers,
    page_of,
    tampered,
    text_of,
    web_server,
)
from worker.links import BadLink, Purpose


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    with web_server(tmp_path_factory.mktemp("web")) as running:
        yield running
    assert "Traceback" not in running.served.stderr, running.served.stderr


# -- each page in words --------------------------------------------------------------------


def test_every_page_answers_in_words_with_the_security_headers(web: Web) -> None:
    ana = web.person()
    pages = {
        web.url(Purpose.ANSWER, ana, score=3): [
            "How was Thursday 5 November 2026?",
            "1 rough 2 3 4 5 great",
            "What moved forward?",
            "What dampened it?",
            "Not saved yet: press Save to record your score.",
            "until the end of Friday 6 November 2026",
        ],
        web.url(Purpose.JOURNAL, ana): ["Your last 30 days", "Only you see this page"],
        web.url(Purpose.UNSUBSCRIBE, ana): [
            "Fewer emails",
            "Only end-of-day reflection emails",
            "Every email from steadyhand",
            "Or pause every email until",
            "Nothing changes until you press the button.",
        ],
        web.url(Purpose.PREFERENCES, ana): [
            "Which emails you get",
            "End-of-day reflection emails",
            "Pause every email until",
            "What steadyhand holds about you",
            "Days of events stored 0",
            "Your answers 0",
            "Download as JSON",
            "Delete my answers",
        ],
    }
    for url, words in pages.items():
        got = web.get(url)
        assert got.status_code == 200
        assert got.headers["Content-Type"] == "text/html; charset=utf-8"
        assert_headers(got)
        said = text_of(got.text)
        for phrase in words:
            assert phrase in said, (phrase, said)
        assert "<script" not in got.text and "style=" not in got.text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in got.text
        assert 'href="../static/style.css"' in got.text
    # the answer page's score link pre-selects 3
    assert re.search(r'value="3" checked', web.get(web.url(Purpose.ANSWER, ana, score=3)).text)
    others = [
        web.get(web.base + "/static/style.css"),
        web.get(web.base + "/healthz"),
        web.get(web.base + "/answer/nonsense"),
        web.post(web.url(Purpose.ANSWER, ana), {"score": "3"}),
        web.get(web.base + "/no/such/page"),
    ]
    assert [r.status_code for r in others] == [200, 200, 400, 403, 404]
    assert_headers(others[0], cached=True)
    for response in others[1:]:
        assert_headers(response)


# -- answers ------------------------------------------------------------------------------


def test_an_answer_is_stored_shown_again_and_the_same_post_twice_changes_nothing(
    web: Web,
) -> None:
    ana = web.person()
    said = answer(web, ana, score="4", moved="Shipped the <b>release</b>", dampened="Two\r\nfires")
    assert "Saved." in said
    day = TODAY.isoformat()
    assert web.answers(ana) == {
        (day, "score"): 4,
        (day, "moved"): "Shipped the <b>release</b>",
        (day, "dampened"): "Two\nfires",
    }
    stamps = [a.updated for a in web.store.answers_of(ana)]
    page = web.get(web.url(Purpose.ANSWER, ana)).text
    assert 'value="4" checked' in page
    assert "Shipped the &lt;b&gt;release&lt;/b&gt;" in page  # shown as text, never as markup
    again = answer(web, ana, score="4", moved="Shipped the <b>release</b>", dampened="Two\nfires")
    assert "Nothing to change: these answers were already saved." in again
    assert [a.updated for a in web.store.answers_of(ana)] == stamps


def test_a_new_score_replaces_the_old_and_an_emptied_note_goes(web: Web) -> None:
    ben = web.person()
    answer(web, ben, score="2", moved="Little", dampened="Much")
    answer(web, ben, score="5", moved="A lot", dampened="")
    day = TODAY.isoformat()
    assert web.answers(ben) == {(day, "score"): 5, (day, "moved"): "A lot"}


def test_yesterday_is_still_open_and_the_day_before_is_closed_and_refused_in_words(
    web: Web,
) -> None:
    cleo = web.person()
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    assert "Saved." in answer(web, cleo, period=yesterday, score="3")
    closed = (TODAY - timedelta(days=2)).isoformat()
    url = web.url(Purpose.ANSWER, cleo, period=closed, score=5)
    page = web.get(url)
    assert page.status_code == 200
    said = text_of(page.text)
    assert "This day is closed: answers could be changed until the end of Wednesday 4" in said
    assert "<textarea" not in page.text and "Save" not in said
    token = web.token(Purpose.ANSWER, cleo, period=closed)
    before = web.state(cleo)
    refused = web.post(url, {"csrf": web.links.csrf(token, NOW), "score": "5", "moved": "late"})
    assert refused.status_code == 409
    assert "This day is closed" in text_of(refused.text)
    assert "nothing was changed" in text_of(refused.text)
    assert web.state(cleo) == before


def test_a_note_over_2000_characters_is_refused_and_the_form_keeps_every_word(
    web: Web,
) -> None:
    dan = web.person()
    url = web.url(Purpose.ANSWER, dan)
    _, csrf = page_of(web, url)
    long = "word " * 450 + "the end"
    got = web.post(url, {"csrf": csrf, "score": "4", "moved": long, "dampened": "short"})
    assert got.status_code == 400
    said = text_of(got.text)
    assert "Your answer to “What moved forward?” is 2,257 characters long" in said
    assert "2,000 at most" in said
    assert long.strip() in got.text and "short" in got.text and 'value="4" checked' in got.text
    assert web.answers(dan) == {}
    bad_score = web.post(url, {"csrf": csrf, "score": "9", "moved": "kept"})
    assert bad_score.status_code == 400
    assert "Choose a score from 1 (rough) to 5 (great)." in text_of(bad_score.text)
    assert "kept" in bad_score.text
    assert web.answers(dan) == {}


def test_the_links_a_page_gives_expire_with_the_link_that_opened_it(web: Web) -> None:
    """The journal link on an answer page (and the answer links on the journal) carry
    the moment the opened link was made: following them never renews a link."""
    vic = web.person()
    made = NOW - timedelta(days=13)
    url = web.url(Purpose.ANSWER, vic, period=TODAY.isoformat(), now=made)
    page = web.get(url).text
    (journal,) = re.findall(r'href="\.\./journal/([^"]+)"', page)
    assert web.links.verify(Purpose.JOURNAL, journal, NOW).email == vic
    with pytest.raises(BadLink):
        web.links.verify(Purpose.JOURNAL, journal, NOW + timedelta(days=1, minutes=1))
    edits = re.findall(r'href="\.\./answer/([^"]+)"', web.get(f"{web.base}/journal/{journal}").text)
    assert edits == []  # nothing answered, no events: no day listed
    answer(web, vic, score="3")
    listed = web.get(f"{web.base}/journal/{journal}").text
    (edit,) = re.findall(r'href="\.\./answer/([^"]+)"', listed)
    with pytest.raises(BadLink):
        web.links.verify(Purpose.ANSWER, edit, NOW + timedelta(days=1, minutes=1))


# -- the journal -----------------------------------------------------------------------


def test_the_journal_shows_each_day_beside_its_figures_and_deletes_one_day(web: Web) -> None:
    eve = web.person()
    two_days_ago = TODAY - timedelta(days=2)
    web.store_events(eve, [(TODAY, 9, 2), (TODAY, 11, 1), (two_days_ago, 13, 1)])
    answer(web, eve, score="2", moved="Hiring plan", dampened="Back-to-back calls")
    answer(web, eve, period=(TODAY - timedelta(days=1)).isoformat(), score="5")
    old = (TODAY - timedelta(days=40)).isoformat()
    web.store.record_answers(eve, "reflection", old, {"score": 1}, NOW)  # beyond 30 days
    url = web.url(Purpose.JOURNAL, eve)
    said, csrf = page_of(web, url)
    today = said.index("Thursday 5 November 2026")
    yesterday = said.index("Wednesday 4 November 2026")
    before = said.index("Tuesday 3 November 2026")
    assert today < yesterday < before  # newest first
    assert (
        "Thursday 5 November 2026 Score 2 of 5 Meetings 3.0 h Longest chain 3.0 h "
        "Focus time 5.0 h What moved forward? Hiring plan What dampened it? Back-to-back calls"
    ) in said
    # a day the calendar was read for, without meetings, and a day with a meeting only
    assert "Wednesday 4 November 2026 Score 5 of 5 (great) Meetings 0.0 h" in said
    assert "Tuesday 3 November 2026 No score Meetings 1.0 h" in said
    assert "Monday 2 November" not in said  # neither an answer nor an event
    assert "October" not in said  # the answer 40 days back is not among the last 30 days
    gone = web.post(
        f"{web.base}/journal/{web.token(Purpose.JOURNAL, eve)}/delete",
        {"csrf": csrf, "period": TODAY.isoformat()},
    )
    assert gone.status_code == 200
    assert "Deleted your answers for Thursday 5 November 2026." in text_of(gone.text)
    assert 'href="../../static/style.css"' in gone.text
    assert set(web.answers(eve)) == {
        ((TODAY - timedelta(days=1)).isoformat(), "score"),
        (old, "score"),
    }
    assert "Hiring plan" not in web.get(url).text


def test_the_journal_of_someone_whose_calendar_was_never_read_says_so(web: Web) -> None:
    uma = web.person()
    answer(web, uma, score="3")
    said, _ = page_of(web, web.url(Purpose.JOURNAL, uma))
    assert "Thursday 5 November 2026 Score 3 of 5 No calendar data for this day." in said


# -- bad links ---------------------------------------------------------------------------


def _other_persons_payload(web: Web, token: str, other: str) -> str:
    """``token`` with its payload swapped for one naming ``other``, signature kept."""
    theirs = web.token(Purpose.ANSWER, other)
    return ".".join([theirs.split(".")[0], *token.split(".")[1:]])


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("kind", ["tampered", "expired", "other purpose", "other person"])
def test_a_bad_link_gets_the_400_page_in_words_and_changes_nothing(
    web: Web, purpose: Purpose, kind: str
) -> None:
    fred = web.person()
    ghost = "nobody@example.com"  # signed with the right key, but not a person here
    wrong = {
        Purpose.ANSWER: Purpose.JOURNAL,
        Purpose.JOURNAL: Purpose.ANSWER,
        Purpose.UNSUBSCRIBE: Purpose.PREFERENCES,
        Purpose.PREFERENCES: Purpose.UNSUBSCRIBE,
    }[purpose]
    token = {
        "tampered": tampered(web.token(purpose, fred)),
        "expired": web.token(purpose, fred, now=NOW - timedelta(days=200)),
        "other purpose": web.token(wrong, fred),
        "other person": web.token(purpose, ghost),
    }[kind]
    url = f"{web.base}/{purpose.value}/{quote(token, safe='')}"
    before = web.state(fred), web.state(ghost)
    got = web.get(url + "?score=5")
    form = {
        "csrf": web.links.csrf(token, NOW),
        "score": "5",
        "moved": "x",
        "choice": "all",
        "action": "delete_answers",
        "confirm": "yes",
        "none": "yes",
    }
    target = url + "/delete" if purpose is Purpose.JOURNAL else url  # the journal's one POST
    posted = web.post(target, {**form, "period": TODAY.isoformat()})
    one_click = web.post(target, {"List-Unsubscribe": "One-Click"})
    for response in (got, posted, one_click):
        assert response.status_code == 400
        assert_headers(response)
        words = text_of(response.text)
        assert (EXPIRED if kind == "expired" else INVALID) in words
    assert (web.state(fred), web.state(ghost)) == before


def test_a_swapped_payload_naming_another_person_is_refused(web: Web) -> None:
    gus, hal = web.person(), web.person()
    answer(web, hal, score="3", moved="Hal's own words")
    forged = _other_persons_payload(web, web.token(Purpose.ANSWER, gus), hal)
    got = web.get(f"{web.base}/answer/{forged}")
    assert got.status_code == 400
    assert INVALID in text_of(got.text)
    assert "Hal's own words" not in got.text


# -- foreign posts -------------------------------------------------------------------------


def test_a_post_without_csrf_or_with_anothers_or_from_a_foreign_origin_is_403(web: Web) -> None:
    ivy, jon = web.person(), web.person()
    url = web.url(Purpose.ANSWER, ivy)
    _, csrf = page_of(web, url)
    _, jons_csrf = page_of(web, web.url(Purpose.ANSWER, jon))
    form = {"score": "4", "moved": "x"}
    refused = [
        web.post(url, form),
        web.post(url, {**form, "csrf": ""}),
        web.post(url, {**form, "csrf": jons_csrf}),
        web.post(url, {**form, "csrf": csrf}, headers={"Origin": "https://evil.example"}),
        web.post(url, {**form, "csrf": csrf}, headers={"Origin": "null"}),
        web.post(url, {**form, "csrf": csrf}, headers={"Referer": "https://evil.example/x"}),
    ]
    for response in refused:
        assert response.status_code == 403
        assert "This form cannot be sent from here" in text_of(response.text)
    assert web.answers(ivy) == {}
    ok = web.post(url, {**form, "csrf": csrf}, headers={"Origin": web.base})
    assert ok.status_code == 200
    assert web.answers(ivy) == {(TODAY.isoformat(), "score"): 4, (TODAY.isoformat(), "moved"): "x"}


def test_a_scanner_opening_every_link_changes_nothing(web: Web) -> None:
    """Mail security scanners open (GET, HEAD) every link of an email, query and all."""
    kim = web.person()
    answer(web, kim, score="2")
    before = web.state(kim)
    urls = [
        *(web.url(Purpose.ANSWER, kim, score=n) for n in (1, 3, 5, 9, "x")),
        web.url(Purpose.ANSWER, kim),
        web.url(Purpose.JOURNAL, kim),
        web.url(Purpose.UNSUBSCRIBE, kim),
        web.url(Purpose.UNSUBSCRIBE, kim, program="*"),
        web.url(Purpose.PREFERENCES, kim),
        web.url(Purpose.PREFERENCES, kim) + "/export.json",
    ]
    for url in urls:
        assert web.get(url).status_code == 200
        assert web.get(url + ("&" if "?" in url else "?") + "List-Unsubscribe=One-Click").ok
        assert requests.head(url, timeout=10).status_code == 200
    assert web.state(kim) == before


# -- the log -------------------------------------------------------------------------------


def test_the_log_has_one_line_per_request_and_no_token_email_or_answer(web: Web) -> None:
    rae = web.person()
    url = web.url(Purpose.ANSWER, rae)
    answer(web, rae, score="3", moved="secret words of rae")
    line = "web POST /answer/{token} -> 200 saved (reflection 2026-11-05)"
    assert wait_for(lambda: line in web.served.stderr)
    log = web.served.stderr
    token = web.token(Purpose.ANSWER, rae)
    assert token not in log and rae not in log and "secret words" not in log
    assert url not in log and "/answer/" + token[:10] not in log
