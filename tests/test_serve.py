"""`steadyhand serve`: the web process, run for real in its own process. GET /healthz says
whether the store answers; no secret key, no start; `web.base_url` is https (or http to this
machine); SIGINT and SIGTERM stop it with exit 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import write
from tests.waiting import wait_for

KEY = "x" * 43 + "="  # serve only checks that one is set (for now)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config(tmp_path: Path, port: int, store: str = "sqlite:///var/steadyhand.db") -> Path:
    return write(
        tmp_path / "steadyhand.yaml",
        f"store: {store}\nweb:\n  listen: 127.0.0.1:{port}\n  trusted_proxies: [10.0.0.0/8]\n",
    )


class Served:
    def __init__(self, proc: subprocess.Popen[str], log: Path, port: int) -> None:
        self.proc, self.log, self.port = proc, log, port

    @property
    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def health(self) -> tuple[int, object] | None:
        """(status, JSON body) of GET /healthz; None while nothing answers."""
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None


@contextmanager
def serving(
    tmp_path: Path, port: int, store: str = "sqlite:///var/steadyhand.db", key: str | None = KEY
) -> Iterator[Served]:
    """`steadyhand serve -c CONFIG` listening on ``port``, its stderr in a file; killed at the
    end if it still runs."""
    cfg = config(tmp_path, port, store)
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("STEADYHAND_CONFIG", None)
    env.pop("STEADYHAND_SECRET_KEY", None)
    if key is not None:
        env["STEADYHAND_SECRET_KEY"] = key
    log = tmp_path / "stderr.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "serve", "-c", str(cfg)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        yield Served(proc, log, port)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_healthz_says_the_store_is_ok_and_sigterm_stops_with_exit_0(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, port) as served:
        assert wait_for(lambda: served.health() is not None or served.proc.poll() is not None)
        assert served.health() == (200, {"store": "ok"}), served.stderr
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=30) == 0, served.stderr
    lines = served.stderr.splitlines()
    assert any(
        f"steadyhand web serving on http://127.0.0.1:{port} (store sqlite:///var/steadyhand.db)"
        in line
        for line in lines
    ), lines
    assert "Traceback" not in served.stderr


def test_ctrl_c_stops_the_server_with_exit_0(tmp_path: Path) -> None:
    with serving(tmp_path, free_port()) as served:
        assert wait_for(lambda: served.health() is not None or served.proc.poll() is not None)
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(timeout=30) == 0, served.stderr
    assert "steadyhand web stopped (SIGINT)" in served.stderr


def test_an_unreachable_store_is_503_without_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    store = "postgresql://steadyhand@127.0.0.1:1/x"  # nothing listens on port 1
    with serving(tmp_path, free_port(), store) as served:
        assert wait_for(lambda: served.health() is not None or served.proc.poll() is not None)
        assert served.health() == (503, {"store": "unreachable"}), served.stderr
    assert "store unreachable: OperationalError" in served.stderr
    assert "Traceback" not in served.stderr


def test_without_a_secret_key_it_refuses_to_start_and_says_how_to_make_one(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, free_port(), key=None) as served:
        assert served.proc.wait(timeout=30) == 2
    (line,) = served.stderr.splitlines()
    assert line.startswith("error: STEADYHAND_SECRET_KEY is not set — make a key with python -c")
    assert "Fernet.generate_key()" in line


def test_config_check_refuses_a_plain_http_base_url_to_another_host(run_cli, project: Path) -> None:
    write(project / "steadyhand.yaml", "web: {base_url: http://steadyhand.example.com}\n")
    result = run_cli("config", "check")
    assert result.code == 2, result
    assert "web.base_url" in result.err
    assert "write https://steadyhand.example.com" in result.err
    assert "http is for 127.0.0.1 and localhost only" in result.err


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8080", "http://localhost:8080", "https://sh.example.com/"]
)
def test_config_check_accepts_https_or_http_to_this_machine(
    run_cli, project: Path, base_url: str
) -> None:
    write(project / "steadyhand.yaml", f"web: {{base_url: '{base_url}'}}\n")
    result = run_cli("config", "check")
    assert result.code == 0, result


@pytest.mark.parametrize(
    ("web", "said"),
    [
        ("{listen: '127.0.0.1'}", "has no port from 1 to 65535 — write HOST:PORT"),
        ("{listen: '127.0.0.1:70000'}", "has no port from 1 to 65535"),
        ("{listen: 'bad host:80'}", "has no valid host"),
        ("{trusted_proxies: [10.0.0.0/33]}", "is not an IP address or network — write one"),
    ],
)
def test_config_check_refuses_a_bad_listen_address_or_proxy(
    run_cli, project: Path, web: str, said: str
) -> None:
    write(project / "steadyhand.yaml", f"web: {web}\n")
    result = run_cli("config", "check")
    assert result.code == 2, result
    assert said in result.err, result.err
