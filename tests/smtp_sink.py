"""A real SMTP server for tests and benchmarks: aiosmtpd in its own process.

The server listens on a free loopback port it picks itself (bound to port 0, so no other
process can take it between choosing and listening) and appends one line per message
it accepts to a log file: ``X-Steadyhand-Key<TAB>Message-ID<TAB>recipients<TAB>client
port`` (the client's port tells one connection from another). The line
is written with one ``os.write`` on an ``O_APPEND`` file *before* the server answers
``250`` to the end of DATA, so every message the client was told is delivered is in the
log (and a message whose ``250`` the client never saw, because it was killed, is too:
that is the hand-over window the fault test measures).

From a test or a benchmark::

    with Sink(tmp_path / "received.log") as sink:
        ...  # send to sink.host, sink.port
        keys = sink.keys()

Run by hand: ``python tests/smtp_sink.py --log received.log [--port 2525]``; it prints
``READY <port>`` and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class Sink:
    """Start and stop the server process; read what it received."""

    def __init__(self, log: Path, host: str = HOST, port: int = 0) -> None:
        self.log = Path(log)
        self.host = host
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> Sink:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--log",
                str(self.log),
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY "):
                    self.port = int(line.split()[1])
                    return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the SMTP sink did not start within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what arrived ----------------------------------------------------------------
    def lines(self, start: int = 0) -> list[tuple[str, str, int, int]]:
        """``(key, message_id, recipients, client_port)`` per accepted message, in
        arrival order, from the ``start``-th on."""
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines()[start:]:
            key, mid, rcpts, peer = line.split("\t")
            out.append((key, mid, int(rcpts), int(peer)))
        return out

    def received(self, start: int = 0) -> list[tuple[str, str]]:
        """``(key, message_id)`` of every accepted message, from the ``start``-th on."""
        return [(key, mid) for key, mid, _, _ in self.lines(start)]

    def keys(self, start: int = 0) -> Counter[str]:
        """How many times each X-Steadyhand-Key arrived."""
        return Counter(key for key, _, _, _ in self.lines(start))

    def connections(self, start: int = 0) -> int:
        """How many client connections delivered at least one message."""
        return len({peer for _, _, _, peer in self.lines(start)})

    def count(self) -> int:
        """Messages accepted so far (cheap: counts lines)."""
        with open(self.log, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def compare(expected: set[str], arrived: Counter[str]) -> tuple[int, int, int]:
    """``(lost, duplicated, unexpected)``: keys that never arrived, extra copies of keys
    that did, and messages with a key nobody sent."""
    lost = len(expected - set(arrived))
    duplicated = sum(n - 1 for key, n in arrived.items() if key in expected and n > 1)
    unexpected = sum(n for key, n in arrived.items() if key not in expected)
    return lost, duplicated, unexpected


# -- the server process -------------------------------------------------------------------


def _header(raw: bytes, name: bytes) -> str:
    """One header's value from the raw message (unfolded); empty when absent."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    wanted = name.lower() + b":"
    for i, line in enumerate(lines):
        if line.lower().startswith(wanted):
            value = [line[len(wanted) :]]
            for more in lines[i + 1 :]:
                if more[:1] not in (b" ", b"\t"):
                    break
                value.append(more)
            return " ".join(b" ".join(value).decode("utf-8", "replace").split())
    return ""


class _Recorder:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        key = _header(raw, b"X-Steadyhand-Key")
        mid = _header(raw, b"Message-ID")
        peer = session.peer[1] if isinstance(session.peer, tuple) else 0
        os.write(self.fd, f"{key}\t{mid}\t{len(envelope.rcpt_tos)}\t{peer}\n".encode())
        return "250 OK"


async def _serve(log: Path, host: str, port: int) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    handler = _Recorder(fd)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.steadyhand.test", ident="steadyhand sink"),
        host=host,
        port=port,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    import asyncio
    import logging

    parser = argparse.ArgumentParser(description="an SMTP server that logs what it accepts")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd's per-command log
    asyncio.run(_serve(args.log, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
