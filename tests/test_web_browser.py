"""The pages in headless Chromium on a phone's 375 px wide screen, against a real
`steadyhand serve`: answer a reflection from a score link and find it on "Your last 30
days"; unsubscribe through the page; no page scrolls sideways. The pages run no
JavaScript; the tests only measure with it."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.test_report_html import CHROMEDRIVER, CHROMIUM
from tests.web_server import NOW, TODAY, Web, web_server
from worker.links import Purpose

WIDTH = 375


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    with web_server(tmp_path_factory.mktemp("web")) as running:
        yield running
    assert "Traceback" not in running.served.stderr, running.served.stderr


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium as a 375 px wide phone; skipped locally when missing, a failure
    in CI."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        reason = "the browser test needs " + ", ".join(missing) + ", which is missing"
        if os.environ.get("STEADYHAND_CI"):
            pytest.fail(f"{reason}; STEADYHAND_CI is set, so this fails (.ci/run installs them)")
        pytest.skip(f"{reason} (Debian: apt-get install chromium chromium-driver)")

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "mobileEmulation", {"deviceMetrics": {"width": WIDTH, "height": 800, "pixelRatio": 2}}
    )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(phone: Any, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    phone.get(url)
    wait = WebDriverWait(phone, 5, poll_frequency=0.05)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def click(phone: Any, text: str) -> None:
    """Click the button, link or label showing ``text``, as a thumb would, and wait for
    the page it opens."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = (
        f"//button[normalize-space()='{text}'] | //a[normalize-space()='{text}'] | "
        f"//label[normalize-space()='{text}']"
    )
    (element,) = phone.find_elements(By.XPATH, xpath)
    old = phone.find_element(By.TAG_NAME, "html")
    navigates = element.tag_name != "label"
    element.click()
    if navigates:
        wait = WebDriverWait(phone, 5, poll_frequency=0.05)
        wait.until(ec.staleness_of(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def words(phone: Any) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(phone.find_element(By.TAG_NAME, "main").text.split())


def assert_fits(phone: Any) -> None:
    width = phone.execute_script("return document.documentElement.scrollWidth")
    assert phone.execute_script("return window.innerWidth") == WIDTH
    assert width <= WIDTH, f"{phone.current_url}: {width} px wide, scrolls sideways"
    assert phone.execute_script("return document.scripts.length") == 0


def test_answer_a_reflection_from_a_score_link_and_see_it_in_your_last_30_days(
    phone: Any, web: Web
) -> None:
    from selenium.webdriver.common.by import By

    ana = web.person()
    web.store_events(ana, [(TODAY, 9, 2), (TODAY, 14, 1)])
    open_page(phone, web.url(Purpose.ANSWER, ana, score=4))  # the email's "4" link
    assert phone.title == "How was Thu 5 Nov? · steadyhand"
    assert phone.find_element(By.CSS_SELECTOR, "input[name=score][value='4']").is_selected()
    assert "Not saved yet: press Save to record your score." in words(phone)
    assert web.answers(ana) == {}  # opening the link recorded nothing
    assert_fits(phone)
    phone.find_element(By.ID, "moved").send_keys("The hiring plan is agreed")
    phone.find_element(By.ID, "dampened").send_keys("Three meetings in a row")
    click(phone, "Save")
    assert words(phone).startswith("Saved.")
    day = TODAY.isoformat()
    assert web.answers(ana) == {
        (day, "score"): 4,
        (day, "moved"): "The hiring plan is agreed",
        (day, "dampened"): "Three meetings in a row",
    }
    click(phone, "Your last 30 days")
    assert phone.title == "Your last 30 days · steadyhand"
    entry = " ".join(phone.find_element(By.ID, f"day-{day}").text.split())
    assert entry.startswith(
        "Thursday 5 November 2026 Score 4 of 5 Meetings 3.0 h Longest chain 2.0 h"
    )
    assert "What moved forward? The hiring plan is agreed" in entry
    assert "What dampened it? Three meetings in a row" in entry
    assert_fits(phone)


def test_unsubscribe_from_every_email_through_the_page(phone: Any, web: Web) -> None:
    ben = web.person()
    open_page(phone, web.url(Purpose.UNSUBSCRIBE, ben))
    assert phone.find_element("css selector", "input[value='one']").is_selected()
    assert_fits(phone)
    click(phone, "Every email from steadyhand")
    click(phone, "Confirm")
    assert words(phone).startswith(
        "You are unsubscribed You will get no more emails from steadyhand."
    )
    assert web.store.unsubscribed_from(ben) == {"*"}
    click(phone, "Your email settings and your data")
    assert "No email from steadyhand at all" in words(phone), (phone.current_url, words(phone))
    assert phone.find_element("css selector", "input[name=none]").is_selected()
    assert_fits(phone)


def test_no_page_scrolls_sideways_on_a_phone(phone: Any, web: Web) -> None:
    cleo = web.person()
    unbroken = "x" * 300
    web.store.record_answers(
        cleo,
        "reflection",
        (TODAY - timedelta(days=1)).isoformat(),
        {"score": 2, "moved": unbroken, "dampened": "a\nb"},
        NOW,
    )
    web.store_events(cleo, [(TODAY, 8, 9)])
    for url in (
        web.url(Purpose.ANSWER, cleo, period=(TODAY - timedelta(days=1)).isoformat()),
        web.url(Purpose.ANSWER, cleo, period=(TODAY - timedelta(days=3)).isoformat()),
        web.url(Purpose.JOURNAL, cleo),
        web.url(Purpose.UNSUBSCRIBE, cleo, program="*"),
        web.url(Purpose.PREFERENCES, cleo),
        f"{web.base}/answer/not-a-token",
        f"{web.base}/no-such-page",
    ):
        open_page(phone, url)
        assert_fits(phone)
