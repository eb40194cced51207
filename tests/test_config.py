"""steadyhand.yaml: typed settings, and every problem reported with its line and fix."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, write
from worker import config
from worker.core.errors import ConfigError

BROKEN = """\
timezon: Europe/Berlin
store: sqlite:///var/s.db
working_hours:
  mon-fri: "09:00-12:30, 13:30-17:30"
sync: {past: 4w, future: 8x}
people:
  - email: ana@example.com
    timezone: Europe/Berlni
    working_hours: {mon-thu: "08:00-16:00", fri: off}
    calendar: {ics: calendars/ana.ics}
  - email: bo@example.com
    calendar: {account: gogle-main, id: primary}
teams:
  - name: Platform
    leader: ana@example.com
    members: [bo@example.com, cyy@example.com]
mail:
  transport: smtp
  smtp: {host: smtp.example.com, password: hunter2}
emails:
  reflection: {to: leaders, at: "25:30"}
accounts:
  - name: google-main
    kind: google
    auth: oauth
"""


def test_the_shipped_example_and_demo_configs_are_valid() -> None:
    for name in ("example.yaml", "demo.yaml"):
        assert config.check(ROOT / "config" / name) == []


def test_example_documents_every_option_of_the_settings() -> None:
    text = (ROOT / "config" / "example.yaml").read_text()
    missing = []
    for key in config._all_keys():
        if f"{key}:" not in text:
            missing.append(key)
    assert missing == []


def test_every_problem_is_reported_at_once_with_line_key_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "steadyhand.yaml", BROKEN)
    lines = [str(p) for p in config.check(path)]
    f = str(path)
    assert lines == [
        f"{f}:1: timezon: unknown key 'timezon' — did you mean 'timezone'?",
        f"{f}:5: sync.future: '8x' is not a duration — write it like 45m, 2h, 1h30m or 4w",
        f"{f}:8: people[0].timezone: unknown time zone 'Europe/Berlni' — did you mean 'Europe/Berlin'?",
        f"{f}:12: people[1].calendar.account: no account named 'gogle-main' — did you mean 'google-main'?",
        f"{f}:16: teams[0].members[1]: cyy@example.com is not listed under people: "
        "— add them under people: or fix the address",
        f"{f}:19: mail.smtp.password: a secret must not be written in the config file "
        "— put it in an environment variable and write `password_env: SMTP_PASSWORD`",
        f"{f}:21: emails.reflection.at: '25:30' is not a time of day — write it as HH:MM, e.g. \"16:30\"",
    ]


def test_config_check_prints_every_problem_and_exits_2(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", BROKEN)
    result = run_cli("config", "check")
    assert result.code == 2
    assert (
        "steadyhand.yaml:1: timezon: unknown key 'timezon' — did you mean 'timezone'?" in result.err
    )
    assert "steadyhand.yaml:16: teams[0].members[1]: cyy@example.com" in result.err
    assert "7 problems." in result.err
    assert "Traceback" not in result.err


def test_config_check_on_a_good_file_says_ok(run_cli) -> None:
    result = run_cli("config", "check", "-c", str(ROOT / "config" / "demo.yaml"))
    assert result.code == 0, result.err
    assert "OK — 5 people, 1 team, 0 accounts" in result.out


def test_missing_config_is_one_line_with_the_fix(run_cli, project: Path) -> None:
    result = run_cli("sync")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(
        f"error: no configuration found (looked at {project / 'steadyhand.yaml'}, "
    )
    assert line.endswith(
        " — run `steadyhand init` to make a starter steadyhand.yaml, or pass -c FILE"
        " or set $STEADYHAND_CONFIG"
    )


def test_yaml_syntax_error_names_the_line(run_cli, project: Path) -> None:
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\npeople:\n  - email: a@example.com\n   name: [x\n",
    )
    result = run_cli("config", "check")
    assert result.code == 2
    assert result.err.startswith(f"error: {project / 'steadyhand.yaml'}:4: YAML syntax error")
    assert len(result.err.strip().splitlines()) == 1


def test_unknown_leader_and_unknown_team_in_an_audience(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "people:\n  - email: a@example.com\nteams:\n  - name: T\n    leader: zed@example.com\n"
        "emails:\n  reflection: {to: 'team:Platfrom'}\n",
    )
    lines = [str(p) for p in config.check(path)]
    assert any(
        ":5: teams[0].leader: zed@example.com is not listed under people:" in s for s in lines
    )
    assert any(":7: emails.reflection.to: no team named 'Platfrom'" in s for s in lines)


def test_an_env_option_must_name_a_variable_not_hold_the_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "mail:\n  transport: smtp\n  smtp: {host: h, password_env: 'hunter2 is my password'}\n",
    )
    (problem,) = config.check(path)
    assert problem.line == 3
    assert problem.path == "mail.smtp.password_env"
    assert "is not an environment variable name" in problem.what


def test_settings_are_typed_frozen_and_resolve_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "timezone: Asia/Kathmandu\nworking_hours: {mon-fri: '09:00-12:00, 13:00-17:00', sat: off}\n"
        "people:\n  - email: Ana@Example.com\n    calendar: {ics: cal/ana.ics}\n"
        "emails:\n  reflection: {at: '17:15', days: [mon, wed]}\n",
    )
    settings = config.load(path)
    (ana,) = settings.persons()
    assert ana.email == "ana@example.com"
    assert ana.timezone == "Asia/Kathmandu"
    assert ana.working_hours.days[0] == ((time(9), time(12)), (time(13), time(17)))
    assert 5 not in ana.working_hours.days
    assert settings.emails.reflection is not None
    assert settings.emails.reflection.at == time(17, 15)
    assert settings.emails.reflection.days == frozenset({0, 2})
    assert settings.sync.past == timedelta(weeks=4)
    assert settings.store_url == f"sqlite:///{tmp_path / 'var' / 'steadyhand.db'}"
    ref = settings.calendar_ref("ana@example.com")
    assert ref is not None and ref.location == str(tmp_path / "cal" / "ana.ics")
    with pytest.raises(Exception, match="frozen"):
        settings.timezone = "UTC"  # type: ignore[misc]


def test_load_raises_one_config_error_carrying_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "timezone: Mars/Olympus\nsync: {every: soon}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert [p.line for p in info.value.problems] == [1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("45m", timedelta(minutes=45)), ("2h", timedelta(hours=2)), ("1h30m", timedelta(minutes=90))],
)
def test_durations_read_as_the_design_writes_them(text: str, expected: timedelta) -> None:
    assert config.parse_duration(text) == expected


def test_a_feed_url_secret_never_reaches_the_calendar_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "people:\n  - email: a@example.com\n"
        "    calendar: {ics: 'https://user:pw@cal.example.com/feed.ics?token=s3cret'}\n",
    )
    ref = config.load(path).calendar_ref("a@example.com")
    assert ref is not None
    assert ref.location == "https://user:pw@cal.example.com/feed.ics?token=s3cret"
    assert "s3cret" not in ref.key and "pw" not in ref.key
    assert ref.key.startswith("a@example.com:ics:https://cal.example.com/feed.ics#")
