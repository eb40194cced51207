"""A ``protect:`` rule's ``window.time``: parsed once by the settings, told apart in
``config check`` when it is not one range of the day."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from tests.conftest import write
from worker import config
from worker.cycle import protect

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    calendar: {{memory: ana}}
protect:
  - rule: coaching
    window: {{days: [tue, wed, thu], time: {time}}}
"""


def problems(tmp_path: Path, window_time: str) -> list[str]:
    path = write(tmp_path / "steadyhand.yaml", CONFIG.format(time=window_time))
    return [str(p).removeprefix(f"{path}:") for p in config.check(path)]


def test_the_planner_gets_the_window_time_the_settings_parsed(tmp_path: Path) -> None:
    path = write(tmp_path / "steadyhand.yaml", CONFIG.format(time='" 13:00 - 17:30 "'))
    settings = config.load(path)
    assert settings.protect[0].window is not None
    assert settings.protect[0].window.time == (time(13), time(17, 30))
    (rule,) = protect.rules_for(settings, "ana@example.com")
    assert rule.window == (time(13), time(17, 30))
    assert rule.days == frozenset({1, 2, 3})


@pytest.mark.parametrize(
    ("window_time", "problem"),
    [
        ('"25:00-17:00"', "'25:00' is not a time of day — write it as HH:MM, e.g. \"16:30\""),
        ('"13:00"', "'13:00' is not a time range — write it as HH:MM-HH:MM"),
        ('"17:00-13:00"', "'17:00-13:00' ends before it starts — swap the times"),
        ("13", "input should be a valid string (got 13) — write it as text"),
        # Both passed config check and then failed while planning.
        ('"off"', "'off' is not a time range — write it as HH:MM-HH:MM"),
        (
            '"09:00-12:00, 13:00-17:00"',
            "'09:00-12:00, 13:00-17:00' is more than one time range — write one, "
            "HH:MM-HH:MM, and give each other range a rule of its own",
        ),
    ],
)
def test_config_check_says_what_is_wrong_with_a_window_time(
    tmp_path: Path, window_time: str, problem: str
) -> None:
    assert problems(tmp_path, window_time) == [f"7: protect[0].window.time: {problem}"]
