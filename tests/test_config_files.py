"""What `config check` says about the calendars on disk, an empty config and CalDAV, and
how `sync` says a failing calendar (once)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, write

ANA_ICS = ROOT / "config" / "demo" / "ana.ics"  # a good calendar, read in place
NOW = "2026-11-05T16:45:00+01:00"

CALENDARS = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    calendar: {{ics: {ana}}}
  - email: bo@example.com
    calendar: {{ics: {bo}}}
  - email: cy@example.com
    calendar: {{vdir: {cy}}}
"""


def lines(text: str, folder: Path) -> list[str]:
    """The output's lines, with ``folder`` taken off the paths."""
    return text.replace(f"{folder}/", "").strip().splitlines()


@pytest.fixture
def conf(project: Path) -> Path:
    """A config in ./conf, checked from the folder above it: its paths start at ./conf."""
    path = write(
        project / "conf" / "steadyhand.yaml",
        CALENDARS.format(ana=ANA_ICS, bo="cal/bo.ics", cy="cal/cy"),
    )
    return path


# -- calendars on disk -------------------------------------------------------------------


def test_a_missing_ics_file_and_vdir_folder_are_warnings_at_their_line_exit_0(
    run_cli, project: Path, conf: Path
) -> None:
    result = run_cli("config", "check", "-c", str(conf))
    assert result.code == 0, result.err
    assert lines(result.err, project) == [
        "warning: conf/steadyhand.yaml:6: people[1].calendar.ics: the file conf/cal/bo.ics "
        "does not exist yet — sync fails for this calendar until it does: export or sync the "
        "calendar there, or fix the path",
        "warning: conf/steadyhand.yaml:8: people[2].calendar.vdir: the folder conf/cal/cy "
        "does not exist yet — sync fails for this calendar until it does (steadyhand does "
        "not create it): `vdirsyncer discover` or mkdir creates it, or fix the path",
    ]
    assert "OK — 3 people" in result.out


def test_paths_start_at_the_config_files_folder_so_present_ones_pass_quietly(
    run_cli, project: Path, conf: Path
) -> None:
    write(conf.parent / "cal" / "bo.ics", ANA_ICS.read_text())
    (conf.parent / "cal" / "cy").mkdir()
    write(project / "cal" / "bo.ics", "not these: the config's folder is ./conf")
    result = run_cli("config", "check", "-c", str(conf))
    assert (result.code, result.err) == (0, "")
    assert "OK — 3 people" in result.out


def test_a_folder_given_as_ics_and_a_file_given_as_vdir_are_problems_exit_2(
    run_cli, project: Path, conf: Path
) -> None:
    (conf.parent / "cal" / "bo.ics").mkdir(parents=True)
    write(conf.parent / "cal" / "cy", "a file")
    result = run_cli("config", "check", "-c", str(conf))
    assert result.code == 2
    assert lines(result.err, project) == [
        "conf/steadyhand.yaml:6: people[1].calendar.ics: conf/cal/bo.ics is a folder, "
        "not an .ics file — for a folder of .ics files use vdir:",
        "conf/steadyhand.yaml:8: people[2].calendar.vdir: conf/cal/cy is a file, not a "
        "folder — for a single .ics file use ics:",
        "2 problems.",
    ]
    assert result.out == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_ics_file_and_vdir_folder_are_problems(
    run_cli, project: Path, conf: Path
) -> None:
    bo = write(conf.parent / "cal" / "bo.ics", ANA_ICS.read_text())
    cy = conf.parent / "cal" / "cy"
    cy.mkdir()
    bo.chmod(0)
    cy.chmod(0)
    try:
        result = run_cli("config", "check", "-c", str(conf))
    finally:
        bo.chmod(0o644)
        cy.chmod(0o755)
    assert result.code == 2
    fix = "let the user steadyhand runs as read it, or fix the path"
    assert lines(result.err, project) == [
        "conf/steadyhand.yaml:6: people[1].calendar.ics: conf/cal/bo.ics cannot be read "
        f"(permission denied) — {fix}",
        "conf/steadyhand.yaml:8: people[2].calendar.vdir: conf/cal/cy cannot be read "
        f"(permission denied) — {fix}",
        "2 problems.",
    ]


def test_a_path_through_a_file_is_a_problem(run_cli, project: Path) -> None:
    write(project / "cal", "a file, not a folder")
    write(project / "steadyhand.yaml", CALENDARS.format(ana=ANA_ICS, bo="cal/bo.ics", cy=ROOT))
    result = run_cli("config", "check")
    assert result.code == 2
    assert lines(result.err, project) == [
        "error: steadyhand.yaml:6: people[1].calendar.ics: cal/bo.ics cannot exist: a part "
        "of the path is a file — fix the path"
    ]


def test_a_feed_url_and_a_home_path_are_read_as_sync_reads_them(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(project))
    (project / "cy").mkdir()
    config = CALENDARS.format(ana=ANA_ICS, bo="https://calendar.example.com/bo.ics", cy="~/cy")
    write(project / "steadyhand.yaml", config)
    result = run_cli("config", "check")  # no network: the feed is read at sync
    assert (result.code, result.err) == (0, "")


# -- an empty config ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "# steadyhand.yaml, to be written\n\n# people: later\n", "timezone: UTC\npeople: []\n"],
    ids=["empty", "only comments", "an empty list"],
)
def test_a_config_with_no_people_is_told_there_is_nothing_to_do(
    run_cli, project: Path, text: str
) -> None:
    write(project / "steadyhand.yaml", text)
    result = run_cli("config", "check")
    assert result.code == 0
    line = 2 if "[]" in text else 1
    assert lines(result.err, project) == [
        f"warning: steadyhand.yaml:{line}: no people: steadyhand has nothing to do — add "
        "people: (see config/example.yaml)"
    ]


def test_init_then_config_check_passes_and_names_the_example_calendars_to_make(
    run_cli, project: Path
) -> None:
    assert run_cli("init").code == 0
    result = run_cli("config", "check")
    assert result.code == 0, result.err
    example = (ROOT / "config" / "example.yaml").read_text().splitlines()
    bo, cy = (
        next(n for n, li in enumerate(example, 1) if f"{{{key}" in li) for key in ("ics:", "vdir:")
    )
    said = lines(result.err, project)
    assert [line.split(" — ")[0] for line in said] == [
        f"warning: steadyhand.yaml:{bo}: people[1].calendar.ics: the file calendars/bo.ics "
        "does not exist yet",
        f"warning: steadyhand.yaml:{cy}: people[2].calendar.vdir: the folder calendars/cy "
        "does not exist yet",
    ]
    assert "OK — 3 people" in result.out
    write(project / "calendars" / "bo.ics", ANA_ICS.read_text())
    (project / "calendars" / "cy").mkdir()
    assert run_cli("config", "check").err == ""


# -- CalDAV: not offered until its connector lands ---------------------------------------

CALDAV_FIX = (
    "kind caldav is not available yet — use ics: with the calendar's shared iCalendar "
    "link, or a vdir: folder that vdirsyncer keeps in sync with the CalDAV server"
)

WITH_CALDAV = f"""\
accounts:
  - name: dav
    kind: caldav
    auth: basic
people:
  - email: ana@example.com
    calendar: {{ics: {ANA_ICS}}}
  - email: bo@example.com
    calendar: {{account: dav, id: work}}
"""


def test_config_check_says_kind_caldav_is_not_available_yet_at_its_line(
    run_cli, project: Path
) -> None:
    write(project / "steadyhand.yaml", WITH_CALDAV)
    result = run_cli("config", "check")
    assert result.code == 2
    assert lines(result.err, project) == [
        f"error: steadyhand.yaml:3: accounts[0].kind: {CALDAV_FIX}"
    ]


def test_a_caldav_calendar_fails_alone_at_sync_in_the_same_words(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "steadyhand.yaml", WITH_CALDAV)
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    result = run_cli("sync")
    assert result.code != 0
    assert lines(result.err, project) == [f"error: {CALDAV_FIX}"]
    rows = {line.split()[1]: line for line in result.out.splitlines() if "@example.com" in line}
    assert "read" in rows["ana@example.com"]
    assert "failed: see below" in rows["bo@example.com"]


def test_readme_example_and_extras_do_not_offer_caldav() -> None:
    readme = (ROOT / "README.md").read_text().lower()
    assert "caldav" not in readme
    example = (ROOT / "config" / "example.yaml").read_text()
    said = [line for line in example.splitlines() if "caldav" in line.lower()]
    assert len(said) == 1 and said[0].startswith("# CalDAV is not available yet: use ics:")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "caldav" not in extras["optional-dependencies"]


# -- sync says each failure once ---------------------------------------------------------


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever stderr is now (pytest swaps it between phases)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@pytest.fixture
def terminal_log() -> Iterator[None]:
    """The log handler `steadyhand` has on a terminal, a stream handler on stderr (in-process,
    pytest's own handler keeps basicConfig from adding it)."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)


ONE_MISSING = f"""\
people:
  - email: ana@example.com
    calendar: {{ics: {ANA_ICS}}}
  - email: bo@example.com
    calendar: {{ics: nowhere/bo.ics}}
"""
MISSING = "the file does not exist"


@pytest.mark.usefixtures("terminal_log")
def test_sync_says_a_failing_calendar_once_in_its_row_and_one_error_line(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "steadyhand.yaml", ONE_MISSING)
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    result = run_cli("sync")
    assert result.code == 2
    assert (result.out + result.err).count(MISSING) == 1
    assert lines(result.err, project) == [
        f"error: nowhere/bo.ics: {MISSING} — fix the path in steadyhand.yaml or export it there"
    ]
    bo = next(line for line in result.out.splitlines() if "bo@example.com" in line)
    assert "failed: see below" in bo


def test_sync_through_the_real_entry_point_says_a_failure_once(project: Path) -> None:
    write(project / "steadyhand.yaml", ONE_MISSING)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYHAND_")}
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "sync", "--now", NOW],
        cwd=project,
        env={**env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert (done.stdout + done.stderr).count(MISSING) == 1, done.stdout + done.stderr
    assert lines(done.stderr, project)[0].startswith(f"error: nowhere/bo.ics: {MISSING}")
