"""The demo's output, byte for byte: a refactoring that changes no behaviour must leave
what users see exactly as it was. The golden copies in tests/golden/ were made by this
test (``STEADYHAND_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_demo.py``);
remake them only for a change that means to alter the output, and read their diff."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = "2026-11-05T16:45:00+01:00"
PERIOD = ("--from", "2026-10-26", "--to", "2026-11-08")

RUNS = {
    "demo.txt": ("demo",),
    "analyze.table.txt": ("analyze", *PERIOD, "--format", "table"),
    "analyze.week.txt": ("analyze", *PERIOD, "--by", "week"),
    "analyze.json": ("analyze", *PERIOD, "--format", "json"),
    "analyze.csv": ("analyze", *PERIOD, "--format", "csv"),
    "analyze.html": ("analyze", *PERIOD, "--format", "html"),
    "plan.txt": ("plan",),
    "plan.json": ("plan", "--format", "json"),
}


#: A link's token: signed with the demo's key, made afresh in each folder it runs in.
TOKEN = re.compile(r"/(answer|journal|unsubscribe|preferences)/[A-Za-z0-9_.%-]+")


def _steady(text: str, folder: Path) -> str:
    """The output without what differs from run to run: the folder it ran in, the
    tokens of links (signed with a key made per folder) and the time each calendar's
    read took (the sync table, whose widths follow those times)."""
    text = text.replace(str(folder), "<DIR>")
    text = TOKEN.sub(r"/\1/<TOKEN>", text)
    text = re.sub(r"\nCalendars *\n┏.*?\n└[─┴]*┘\n", "\n<sync table>\n", text, flags=re.S)
    return re.sub(r"\b\d+ ms\b", "<ms>", text)


@pytest.fixture
def demo_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "config" / "demo", project / "demo")
    shutil.copyfile(ROOT / "config" / "demo.yaml", project / "steadyhand.yaml")
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    return project


@pytest.mark.parametrize("name", list(RUNS))
def test_the_demo_output_is_the_golden_copy(run_cli, demo_folder: Path, name: str) -> None:
    result = run_cli(*RUNS[name])
    assert result.code == 0, result.err
    seen = _steady(result.out, demo_folder)
    golden = GOLDEN / name
    if os.environ.get("STEADYHAND_WRITE_GOLDEN"):
        golden.write_text(seen, encoding="utf-8")
    assert seen == golden.read_text(encoding="utf-8"), f"{name} differs from tests/golden/{name}"
