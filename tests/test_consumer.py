"""`steadyhand run`: the real Huey consumer on SqliteHuey, in its own process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, write
from tests.waiting import wait_for


def test_run_starts_the_consumer_which_ticks_sends_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", tmp_path / "cal" / "ana.ics")
    write(
        tmp_path / "steadyhand.yaml",
        "timezone: Europe/Berlin\n"
        "people:\n  - email: ana@example.com\n    name: Ana Lima\n    calendar: {ics: cal/ana.ics}\n"
        "teams:\n  - {name: T, leader: ana@example.com}\n"
        "emails:\n  reflection: {to: leaders, at: '16:30'}\n",
    )
    env = {**os.environ, "STEADYHAND_NOW": "2026-11-05T16:45:00+01:00", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "run", "-c", str(tmp_path / "steadyhand.yaml")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    outbox = tmp_path / "var" / "outbox" / "new"
    try:
        assert wait_for(lambda: len(list(outbox.glob("*.eml"))) == 1), "no email within 30 s"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "queue sqlite:///var/queue.db" in err
    assert (tmp_path / "var" / "queue.db").exists()
    (message,) = outbox.glob("*.eml")
    assert b"X-Steadyhand-Key: reflection:ana@example.com:2026-11-05" in message.read_bytes()
