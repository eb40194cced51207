"""A non-editable install of the wheel carries templates/ and config/ and runs the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("steadyhand-*.whl")
    return built


def test_wheel_ships_templates_and_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "worker/_shipped/templates/reflection.txt.j2",
        "worker/_shipped/templates/reflection.html.j2",
        "worker/_shipped/config/example.yaml",
        "worker/_shipped/config/demo.yaml",
        "worker/_shipped/config/demo/ana.ics",
        "connectors/base.py",
    ):
        assert expected in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_installed_wheel_runs_the_demo_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # The dependencies come from the test venv (no network here); steadyhand itself
    # only from the wheel: the editable install's .pth is not read through this line.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    python = venv / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import worker; print(worker.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=work,
    ).stdout
    assert where.startswith(str(site))
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("STEADYHAND_NOW", None)
    result = subprocess.run(
        [str(python), "-m", "worker.cli", "demo"],
        check=False,
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Emails written (4)" in result.stdout
    assert len(list((work / "var" / "outbox" / "new").glob("*.eml"))) == 4
