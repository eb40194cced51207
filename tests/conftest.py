"""Shared fixtures: a working folder, and a CLI runner that returns what a user sees."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker import cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "ics"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run `steadyhand ARGS` in-process; return exit code, stdout and stderr."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("STEADYHAND_CONFIG", raising=False)

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, made the current directory; no clock or config from outside."""
    monkeypatch.delenv("STEADYHAND_NOW", raising=False)
    monkeypatch.delenv("STEADYHAND_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database on this machine's server, dropped afterwards.
    Outside CI a test skips when the server is not running; in CI that is a failure."""
    psycopg = pytest.importorskip("psycopg")
    name = f"steadyhand_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        )
    except psycopg.OperationalError as exc:
        if os.environ.get("STEADYHAND_CI"):
            raise
        pytest.skip(f"PostgreSQL is not running here ({exc}); .ci/run starts it")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL database (see :func:`postgres_database`)."""
    yield from postgres_database()


os.environ.setdefault("TZ", "UTC")
