"""What the command line says is plain English: counts with the right plural, no
leftover wording that reads wrong."""

from __future__ import annotations

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
