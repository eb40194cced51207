"""What the command line says is plain English: counts with the right plural, no
leftover wording that reads wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write

ONE_PERSON = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    calendar: {memory: ana}
teams:
  - name: Solo
    leader: ana@example.com
"""


def test_unsubscribe_from_everything_says_so_in_plain_words(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", ONE_PERSON)
    first = run_cli("unsubscribe", "ana@example.com")
    assert first.code == 0
    assert "ana@example.com will get no more emails from steadyhand." in first.out
    again = run_cli("unsubscribe", "ana@example.com")
    assert "ana@example.com had already opted out of emails from steadyhand." in again.out


def test_config_check_counts_with_the_right_plural(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", ONE_PERSON)
    result = run_cli("config", "check")
    assert result.code == 0
    assert "OK — 1 person, 1 team, 0 accounts" in result.out


def test_no_text_cites_a_design_file_outside_the_repository() -> None:
    """The definitions live in docs/ and are cited there (docs/metrics.md, …)."""
    root = Path(__file__).resolve().parent.parent
    folders = ("worker", "connectors", "templates", "config", "docs", "bench", "tests")
    files = [p for f in folders for p in (root / f).rglob("*") if p.is_file()]
    files += [root / "README.md", root / "DEVELOPERS.md", root / "Makefile"]
    cited = "DESIGN" + ".md"
    section = "DESIGN" + " §"
    found = [
        str(p.relative_to(root))
        for p in files
        if p.suffix in {".py", ".md", ".j2", ".yaml", ".txt", ""} and "__pycache__" not in p.parts
        for text in [p.read_text(encoding="utf-8", errors="replace")]
        if cited in text or section in text
    ]
    assert not found, f"these cite a design file outside the repository: {found}"


BAD_EVENT = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//made up//EN
BEGIN:VEVENT
UID:backwards@example.com
DTSTART:20261104T150000Z
DTEND:20261104T140000Z
END:VEVENT
END:VCALENDAR
"""


def test_a_calendar_read_with_a_note_is_said_in_its_row_not_again_in_the_log(
    project: Path,
) -> None:
    write(project / "ana.ics", BAD_EVENT)
    write(
        project / "steadyhand.yaml",
        "timezone: Europe/Berlin\npeople:\n  - email: ana@example.com\n"
        "    calendar: {ics: ana.ics}\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "--now", "2026-11-05T16:45+01:00", "sync"],
        check=False,
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "1 event skipped (ends before it starts)" in result.stdout
    assert "skipped" not in result.stderr
