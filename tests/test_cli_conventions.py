"""Command-line conventions a newcomer expects: usage errors exit 2 with click's message,
``--version``, global options before or after the command, Rich markup never eats text,
and the config file is found where the docs say (and ``doctor`` says which)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT, Result, write
from worker.config import loading

DEMO = ROOT / "config" / "demo"
RunCli = Callable[..., Result]
ENTRY = Path(sys.executable).with_name("steadyhand")

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    calendar: {ics: cal/ana.ics}
"""

CLASS_NAMES = ("NoSuchOption", "MissingParameter", "UsageError", "BadParameter", "Exception:")


def steadyhand(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYHAND_")}
    env.update(COLUMNS="200", HOME=str(cwd), XDG_CONFIG_HOME="")
    return subprocess.run(
        [str(ENTRY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def placed(command: list[str], options: list[str], before: bool) -> list[str]:
    """``steadyhand OPTIONS COMMAND`` or ``steadyhand COMMAND OPTIONS``."""
    return [*options, *command] if before else [*command, *options]


@pytest.fixture
def one_calendar(project: Path) -> Path:
    (project / "cal").mkdir()
    shutil.copyfile(DEMO / "ana.ics", project / "cal" / "ana.ics")
    return write(project / "conf" / "team.yaml", CONFIG.replace("cal/", f"{project}/cal/"))


@pytest.fixture
def nowhere(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No config in any place looked at: a fresh home, XDG and system path."""
    monkeypatch.setenv("HOME", str(project / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(loading, "SYSTEM_CONFIG", project / "etc" / "steadyhand.yaml")
    return project


def test_the_entry_point_is_installed() -> None:
    assert ENTRY.is_file(), "run `make test` (it installs the console script into .venv)"


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    done = steadyhand("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"steadyhand {metadata.version('steadyhand')}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--nope"], "Error: No such option: --nope"),
        (["--nope"], "Error: No such option: --nope"),
        (["bogus"], "Error: No such command 'bogus'."),
        (["unsubscribe"], "Error: Missing argument 'email'."),
        (["--log-level", "loud", "plan"], "Error: Invalid value for '--log-level'"),
        (["plan", "--log-format", "xml"], "Error: Invalid value for '--log-format'"),
        (["analyze", "--format"], "Error: Option '--format' requires an argument."),
    ],
)
def test_a_usage_error_exits_2_with_clicks_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = steadyhand(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    if "requires an argument" not in message:  # click names no command for that one
        assert "Usage: steadyhand" in done.stderr
        assert "--help' for help." in done.stderr
    assert not any(name in done.stderr for name in CLASS_NAMES), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_usage_error_in_process_exits_2_too(run_cli: RunCli, project: Path) -> None:
    result = run_cli("sync", "--nope")
    assert result.code == 2
    assert "Error: No such option: --nope" in result.err
    assert "NoSuchOption" not in result.err


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_config_works_before_or_after_the_command(
    run_cli: RunCli, one_calendar: Path, before: bool
) -> None:
    args = ["-c", str(one_calendar)]
    result = run_cli(*placed(["config", "check"], args, before))
    assert result.code == 0, result.err
    assert f"{one_calendar}: OK — 1 person" in result.out


def test_config_after_the_command_wins_over_before(
    run_cli: RunCli, one_calendar: Path, project: Path
) -> None:
    result = run_cli(
        "-c", str(project / "missing.yaml"), "config", "check", "-c", str(one_calendar)
    )
    assert result.code == 0, result.err


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_now_works_before_or_after_the_command(
    run_cli: RunCli, one_calendar: Path, before: bool
) -> None:
    opts = ["-c", str(one_calendar), "--now", "not-a-time"]
    result = run_cli(*placed(["plan"], opts, before))
    assert result.code == 2
    assert "--now 'not-a-time' is not a date-time" in result.err


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_verbose_works_before_or_after_the_command(
    tmp_path: Path, before: bool, nowhere: Path
) -> None:
    missing = ["-c", str(tmp_path / "missing.yaml")]
    quiet = steadyhand("plan", *missing, cwd=tmp_path)
    loud = steadyhand(*(["-v", "plan"] if before else ["plan", "-v"]), *missing, cwd=tmp_path)
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert "error: no configuration at" in loud.stderr


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_log_format_json_writes_one_object_per_line(
    tmp_path: Path, one_calendar: Path, before: bool
) -> None:
    opts = ["--log-format", "json", "--log-level", "info", "-c", str(one_calendar)]
    done = steadyhand(*placed(["sync"], opts, before), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "a sync logs what it read at INFO"
    entries = [json.loads(line) for line in lines]
    assert all(set(e) == {"time", "level", "logger", "message"} for e in entries)
    read = next(e for e in entries if e["logger"] == "connectors.ics")
    assert read["level"] == "INFO"
    assert "18 events" in read["message"]
    assert read["time"].endswith("+00:00")


def test_log_level_chooses_what_is_logged_and_text_is_the_default(
    tmp_path: Path, one_calendar: Path
) -> None:
    info = steadyhand("sync", "-c", str(one_calendar), "--log-level", "INFO", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert " INFO connectors.ics: ics sync ana@example.com" in info.stderr
    assert not info.stderr.lstrip().startswith("{")
    default = steadyhand("sync", "-c", str(one_calendar), cwd=tmp_path)
    assert " INFO " not in default.stderr
    error = steadyhand("--log-level", "error", "sync", "-c", str(one_calendar), cwd=tmp_path)
    assert " INFO " not in error.stderr


def test_a_missing_extra_hint_keeps_its_brackets(
    run_cli: RunCli, one_calendar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich markup would turn `steadyhand[google]` into `steadyhand`."""
    from connectors import registry

    write(tmp_path / "needs_extra" / "__init__.py", "import steadyhand_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.CALENDARS, "ics", ("needs_extra:Calendar", "google"))
    result = run_cli("sync", "-c", str(one_calendar))
    assert result.code != 0
    assert "pip install 'steadyhand[google]'" in result.err
    assert "see below" in result.out  # the table's row points at the one error line
    assert (result.out + result.err).count("steadyhand[google]") == 1


def test_the_error_printer_escapes_markup(run_cli: RunCli, nowhere: Path) -> None:
    result = run_cli("doctor", "-c", "[google]/[bold]x[/].yaml")
    assert result.code == 2
    assert "no configuration at [google]/[bold]x[/].yaml (from -c)" in result.err


# -- where the config is found ---------------------------------------------------------


def places(root: Path) -> dict[str, Path]:
    return {
        "-c": root / "given.yaml",
        "$STEADYHAND_CONFIG": root / "env.yaml",
        "the current folder": root / "steadyhand.yaml",
        "$XDG_CONFIG_HOME": root / "xdg" / "steadyhand" / "steadyhand.yaml",
        "/etc/steadyhand": root / "etc" / "steadyhand.yaml",
    }


def test_config_is_found_in_the_documented_order(
    run_cli: RunCli, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (nowhere / "cal").mkdir()
    shutil.copyfile(DEMO / "ana.ics", nowhere / "cal" / "ana.ics")
    found = places(nowhere)
    for path in found.values():
        write(path, CONFIG.replace("cal/", f"{nowhere}/cal/"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(nowhere / "xdg"))
    monkeypatch.setenv("STEADYHAND_CONFIG", str(found["$STEADYHAND_CONFIG"]))
    monkeypatch.setenv("STEADYHAND_STORE", f"sqlite:///{nowhere / 'sh.db'}")
    seen = []
    for how, path in found.items():
        args = ["-c", str(path)] if how == "-c" else []
        result = run_cli("doctor", *args)
        assert result.code == 1, result.err  # found; its calendar was never synced
        seen.append(result.out.splitlines()[0])
        if how == "$STEADYHAND_CONFIG":
            monkeypatch.delenv("STEADYHAND_CONFIG")
        elif how != "-c":
            path.unlink()
    assert seen == [f"config {path} (from {how})" for how, path in found.items()]
    result = run_cli("doctor")
    assert result.code == 2
    looked = ", ".join(str(found[k]) for k in list(found)[2:])
    assert f"error: no configuration found (looked at {looked})" in result.err
    assert "steadyhand init" in result.err


def test_config_home_defaults_to_dot_config(run_cli: RunCli, nowhere: Path) -> None:
    home = write(nowhere / "home" / ".config" / "steadyhand" / "steadyhand.yaml", CONFIG)
    assert loading.locate(cwd=nowhere) == (home, "~/.config")


def test_a_config_named_by_the_variable_must_exist(
    run_cli: RunCli, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(nowhere / "steadyhand.yaml", CONFIG)
    monkeypatch.setenv("STEADYHAND_CONFIG", str(nowhere / "gone.yaml"))
    result = run_cli("config", "check")
    assert result.code == 2
    assert f"no configuration at {nowhere / 'gone.yaml'} (from $STEADYHAND_CONFIG)" in result.err


GOOGLE = """\
timezone: Europe/Berlin
accounts:
  - name: google-main
    kind: google
    auth: access_token
    token_env: GOOGLE_ACCESS_TOKEN
people:
  - email: ana@example.com
    calendar: {account: google-main, id: primary}
"""


def test_doctor_keeps_the_brackets_of_a_missing_extra_hint(
    run_cli: RunCli, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`doctor`'s token table showed `pip install 'steadyhand'` for `steadyhand[google]`."""
    from connectors import registry

    write(nowhere / "needs_extra" / "__init__.py", "import steadyhand_absent_dependency\n")
    monkeypatch.syspath_prepend(str(nowhere))
    monkeypatch.setitem(registry.CALENDARS, "google", ("needs_extra:Calendar", "google"))
    config = write(nowhere / "steadyhand.yaml", GOOGLE)
    result = run_cli("doctor")
    assert result.out.splitlines()[0] == f"config {config} (from the current folder)"
    flat = " ".join(result.out.replace("│", " ").split())
    assert "missing extra" in flat
    assert "steadyhand[google]" in flat.replace(" ", "")


def test_plan_and_audit_keep_brackets_in_names_and_reasons(run_cli, project: Path) -> None:
    from connectors.vdir import import_ics
    from tests.conftest import ROOT

    import_ics(ROOT / "config" / "demo" / "ana.ics", project / "cal" / "ana")
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\n"
        "people:\n"
        "  - {email: ana@example.com, name: 'Ana [bold]Lima', calendar: {vdir: cal/ana}}\n"
        "protect:\n"
        "  - {rule: focus, for: everyone, per_day: 1h, min_block: 60m}\n",
    )
    result = run_cli("plan", "--horizon", "1w", "--now", "2026-11-02T08:00:00+01:00")
    assert result.code == 0, result.err
    assert "Ana [bold]Lima <ana@example.com>" in result.out
