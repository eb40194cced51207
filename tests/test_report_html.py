"""The HTML load report (`steadyhand analyze --format html`): the string, then the page as a
real headless Chromium shows it.

The report dict is built by hand in the shape of docs/metrics.md (day entries through
``DayMetrics.as_dict`` so the names stay exact): two people over five days, one day
overloaded for three reasons, one away day, one day off, one team spread.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from worker.core.analysis import DayMetrics
from worker.report.html import reason_text, render_html

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
THRESHOLDS: dict[str, Any] = {
    "max_meeting_load": 0.6,
    "max_chain_minutes": 180,
    "back_to_back_gap": timedelta(minutes=5),
    "focus_min": timedelta(minutes=120),
    "min_focus_minutes": 60,
    "max_after_hours_minutes": 30,
}
DAYS = [date(2026, 11, 23) + timedelta(days=i) for i in range(5)]  # Mon 23 .. Fri 27 Nov
OVERLOADED_REASONS = [
    "meeting_load: 83 % of working time in meetings (limit 60 %)",
    "back_to_back: 240 min back to back (limit 180)",
    "no_focus: 0 min of focus time (minimum 60)",
]


def day(
    d: date,
    meeting: float,
    *,
    working: float = 480,
    chain: float | None = None,
    focus: float = 180,
    after_hours: float = 0,
    double: float = 0,
    away: bool = False,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    return DayMetrics(
        date=d,
        working_minutes=working,
        meeting_minutes=meeting,
        busy_minutes=meeting,
        meeting_load=meeting / working if working else None,
        after_hours_meeting_minutes=after_hours,
        double_booked_minutes=double,
        longest_chain_minutes=meeting if chain is None else chain,
        focus_minutes=focus,
        fragmented_minutes=max(0.0, working - meeting - focus),
        away=away,
        overloaded=bool(reasons),
        reasons=reasons,
    ).as_dict()


def make_report(*, teams: bool = True) -> dict[str, Any]:
    mon, tue, wed, thu, fri = DAYS
    ana = [
        day(mon, 120),
        day(tue, 210, chain=120),
        day(wed, 400, chain=240, focus=0, reasons=("meeting_load", "back_to_back", "no_focus")),
        day(thu, 30),
        day(fri, 0),
    ]
    bo = [
        day(mon, 270, chain=150, focus=120),
        day(tue, 0, away=True, focus=480),
        day(wed, 90),
        day(thu, 60),
        day(fri, 45, working=0, focus=0, after_hours=45, reasons=("after_hours",)),
    ]
    people = []
    for email, zone, days in (
        ("ana@example.com", "Europe/Berlin", ana),
        ("bo@example.com", "America/New_York", bo),
    ):
        people.append(
            {
                "email": email,
                "timezone": zone,
                "days": days,
                "week": {
                    "meeting_minutes": sum(float(d["meeting_minutes"]) for d in days),
                    "overloaded_days": sum(1 for d in days if d["overloaded"]),
                },
            }
        )
    return {
        "period": {"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()},
        "people": people,
        "teams": [
            {
                "name": "Platform",
                "median_meeting_minutes": 900,
                "max_over_median": 1.7,
                "above_1_5x_median": ["bo@example.com"],
            }
        ]
        if teams
        else [],
    }


NAMES = {"ana@example.com": "Ana Lima", "bo@example.com": HOSTILE}


def render(**kwargs: Any) -> str:
    report = kwargs.pop("report", None) or make_report()
    kwargs.setdefault("names", NAMES)
    kwargs.setdefault("thresholds", THRESHOLDS)
    return render_html(report, generated_at="2026-11-30 08:00 UTC", **kwargs)


class _Text(HTMLParser):
    """The text of an HTML fragment, optionally only inside the element with ``id``."""

    def __init__(self, element_id: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id = element_id
        self.depth = 0 if element_id else 1
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += 1
        elif ("id", self.element_id) in attrs:
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and self.element_id:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and data.strip():
            self.parts.append(data)


def text_of(html: str, element_id: str | None = None) -> str:
    parser = _Text(element_id)
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


# -- the rendered string -------------------------------------------------------------


def test_page_is_self_contained() -> None:
    html = render()
    lowered = html.lower()
    for needle in ('src="http', "src='http", 'href="http', "href='http", "@import", "url(http"):
        assert needle not in lowered, needle
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", lowered)
    assert "url(" not in lowered
    assert not re.search(r"<(?:script|link|img|iframe|object|embed|base)\b", lowered)
    assert "default-src 'none'" in html
    assert html.startswith("<!doctype html>") or html.lstrip().startswith("<!doctype html>")
    assert '<html lang="en">' in html


def test_hostile_names_are_escaped() -> None:
    report = make_report()
    report["teams"][0]["name"] = '"><img src=x onerror=alert(2)>'
    report["people"][1]["timezone"] = "</style><script>alert(3)</script>"
    html = render(report=report)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "<script" not in html.lower()
    assert "&lt;/style&gt;&lt;script&gt;alert(3)" in html
    # the name is still shown, as text, in the heat map, the summary and the team spread
    assert HOSTILE in text_of(html, "heatmap")
    assert HOSTILE in text_of(html, "summary")
    assert HOSTILE in text_of(html, "teams")


def test_overloaded_section_lists_reasons_in_words() -> None:
    html = render()
    section = text_of(html, "overloaded")
    assert section.startswith("Overloaded days")
    assert "Ana Lima" in section
    assert "Wed 25 Nov 2026" in section
    for reason in OVERLOADED_REASONS:
        assert reason in section
    assert "after_hours: 45 min outside working hours (limit 30)" in section
    assert "Fri 27 Nov 2026" in section
    # the cell's tooltip carries the same words
    cell = re.search(r'<td class="cell [^"]*over"[^>]*data-date="2026-11-25" title="([^"]*)"', html)
    assert cell is not None
    for reason in OVERLOADED_REASONS:
        assert reason in cell.group(1)


def test_heat_map_cells_show_hours_and_kind() -> None:
    html = render()
    heat = text_of(html, "heatmap")
    assert "Mon 23 Nov" in heat and "Fri 27 Nov" in heat
    assert "Europe/Berlin" in heat and "America/New_York" in heat
    assert "6.7 h 83 % !" in heat  # 400 min, overloaded
    assert "0.0 h away" in heat
    assert "0.8 h day off" in heat  # Bo's Friday: 45 min on a day off
    assert html.count('class="cell ') == 10
    assert len(re.findall(r'<td class="cell [^"]* over"', html)) == 2


def test_title_summary_team_spread_and_legend() -> None:
    html = render()
    assert "<title>Calendar load, 23–27 Nov 2026</title>" in html
    assert "<h1>Calendar load, 23–27 Nov 2026</h1>" in html
    summary = text_of(html, "summary")
    assert "Ana Lima ana@example.com 12.7 h 1 of 5" in summary  # 760 min
    teams = text_of(html, "teams")
    assert "Platform 15.0 h 1.7× " + HOSTILE in teams
    legend = text_of(html, "legend")
    assert "overload.max_meeting_load: 0.6" in legend
    assert "more than 180 min" in legend and "gaps of up to 5 min" in legend
    assert "at least 120 min" in legend
    assert "docs/metrics.md" in legend
    assert 'href="docs' not in html
    assert '<th scope="col"' in html and '<th scope="row"' in html


def test_no_teams_says_why() -> None:
    html = render(report=make_report(teams=False))
    teams = text_of(html, "teams")
    assert "shown only for teams of at least privacy.min_team_size people" in teams
    sized = render(report=make_report(teams=False), thresholds={**THRESHOLDS, "min_team_size": 5})
    assert "shown only for teams of at least 5 people (privacy.min_team_size)" in text_of(
        sized, "teams"
    )


def test_reason_words() -> None:
    limits = {**THRESHOLDS, "back_to_back_gap": 5, "focus_min": 120}
    d = {
        "meeting_load": 0.604,
        "longest_chain_minutes": 180.4,
        "focus_minutes": 59.9,
        "after_hours_meeting_minutes": 45,
        "double_booked_minutes": 30,
    }
    assert reason_text("after_hours", d, limits) == (
        "after_hours: 45 min outside working hours (limit 30)"
    )
    assert reason_text("double_booked", d, limits) == "double_booked: 30 min double-booked"
    # rounding never makes a value look equal to the limit it crossed
    assert reason_text("meeting_load", d, limits) == (
        "meeting_load: 60.4 % of working time in meetings (limit 60 %)"
    )
    assert reason_text("back_to_back", d, limits) == (
        "back_to_back: 180.4 min back to back (limit 180)"
    )
    assert reason_text("no_focus", d, limits) == "no_focus: 59.9 min of focus time (minimum 60)"
    assert reason_text("something_new", d, limits) == "something_new"


def test_thresholds_from_yaml_strings_and_defaults() -> None:
    html = render(thresholds={"max_meeting_load": 0.5, "focus_min": "1h30m"})
    legend = text_of(html, "legend")
    assert "more than 50 % of working time" in legend
    assert "at least 90 min" in legend
    assert "more than 180 min" in legend  # the default
    assert "meeting_load: 83 % of working time in meetings (limit 50 %)" in text_of(
        html, "overloaded"
    )


def test_empty_report_renders() -> None:
    html = render_html(
        {"period": {"start": "2026-11-23", "end": "2026-11-24"}, "people": [], "teams": []},
        generated_at="now",
        thresholds={},
    )
    assert "No day in this period crossed a threshold." in html
    assert html.count('<th scope="col" data-date=') == 2


# -- in a real browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium through selenium; skipped locally when missing, a failure in CI."""
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
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_in_headless_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = tmp_path / "report.html"
    page.write_text(render(), encoding="utf-8")
    browser.get(page.as_uri())
    wait = WebDriverWait(browser, 5, poll_frequency=0.05)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    wait.until(lambda d: d.find_elements(By.ID, "heatmap"))

    assert browser.title == "Calendar load, 23–27 Nov 2026"
    assert browser.execute_script("return document.documentElement.lang") == "en"

    # one row per person, one column per day
    rows = browser.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr")
    assert len(rows) == 2
    headers = browser.find_elements(By.CSS_SELECTOR, "#heatmap thead th[scope=col]")
    assert [h.text.replace("\n", " ") for h in headers] == [
        "Person",
        "MON 23 Nov",
        "TUE 24 Nov",
        "WED 25 Nov",
        "THU 26 Nov",
        "FRI 27 Nov",
    ]
    for row in rows:
        assert len(row.find_elements(By.CSS_SELECTOR, "td")) == len(DAYS)
    assert rows[0].find_element(By.CSS_SELECTOR, "th").text.splitlines() == [
        "Ana Lima",
        "ana@example.com",
        "Europe/Berlin",
    ]
    # the hostile name is shown as text and ran nowhere
    assert rows[1].find_element(By.CSS_SELECTOR, "th .name").text == HOSTILE
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return document.scripts.length") == 0

    # the overloaded cell: its text, its tooltip, and a look of its own
    over = rows[0].find_element(By.CSS_SELECTOR, 'td[data-date="2026-11-25"]')
    normal = rows[0].find_element(By.CSS_SELECTOR, 'td[data-date="2026-11-23"]')
    assert over.text.splitlines()[:3] == ["6.7 h", "83 %", "!"]
    assert normal.text.splitlines() == ["2.0 h", "25 %"]
    title = over.get_attribute("title") or ""
    assert title.startswith("Ana Lima, Wed 25 Nov 2026: 6.7 h of meetings, 83 % of working time")
    for reason in OVERLOADED_REASONS:
        assert reason in title
    assert over.value_of_css_property("outline-style") == "solid"
    assert normal.value_of_css_property("outline-style") == "none"
    assert over.value_of_css_property("outline-color") in {
        "rgb(200, 16, 46)",
        "rgba(200, 16, 46, 1)",
    }
    assert over.value_of_css_property("outline-color") != normal.value_of_css_property(
        "outline-color"
    )
    assert over.value_of_css_property("background-color") != normal.value_of_css_property(
        "background-color"
    )
    flag = over.find_element(By.CSS_SELECTOR, ".flag")
    assert flag.is_displayed() and flag.text == "!"

    # away day and day off look different from a working day, and say what they are
    away = rows[1].find_element(By.CSS_SELECTOR, 'td[data-date="2026-11-24"]')
    off = rows[1].find_element(By.CSS_SELECTOR, 'td[data-date="2026-11-27"]')
    assert away.text.splitlines() == ["0.0 h", "AWAY"]  # uppercase by CSS
    assert off.text.splitlines()[:2] == ["0.8 h", "day off"]
    assert away.value_of_css_property("border-top-style") == "dashed"
    assert away.value_of_css_property("background-color") not in {
        normal.value_of_css_property("background-color"),
        off.value_of_css_property("background-color"),
    }
    assert "repeating-linear-gradient" in off.value_of_css_property("background-image")
    assert normal.value_of_css_property("background-image") == "none"

    # the overloaded days, in words, visible below the table
    section = browser.find_element(By.ID, "overloaded")
    assert section.is_displayed()
    text = section.text
    assert text.startswith("Overloaded days")
    for reason in OVERLOADED_REASONS:
        assert reason in text
    assert "after_hours: 45 min outside working hours (limit 30)" in text

    # the weekly summary and the team spread numbers are on the page
    summary = browser.find_element(By.ID, "summary").text
    assert "12.7 h" in summary and "1 of 5" in summary
    teams = browser.find_element(By.ID, "teams")
    assert teams.is_displayed()
    cells = [c.text for c in teams.find_elements(By.CSS_SELECTOR, "tbody tr > *")]
    assert cells == ["Platform", "15.0 h", "1.7×", f"{HOSTILE} (bo@example.com)"]

    # nothing was fetched: no resource entries at all, and the page is its own only document
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script(
        "return performance.getEntriesByType('navigation').map(e => e.name)"
    ) == [page.as_uri()]

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
