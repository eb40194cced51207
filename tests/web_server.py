"""A real ``steadyhand serve`` for the page tests: a config of many people (each test
takes people of its own, so tests sharing one server never see each other's answers), a
fixed clock, links made with the server's key, and the store the server writes, read
directly to see what a request changed."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from tests.conftest import write
from tests.test_serve import KEY, Served, free_port
from tests.waiting import wait_for
from worker import config as config_mod
from worker.config import Settings
from worker.core.model import Event, SyncState, TimeRange
from worker.links import Links, Purpose
from worker.store import Store

BERLIN = ZoneInfo("Europe/Berlin")
#: The server's clock: Thursday 5 November 2026, 17:00 in Berlin.
NOW = datetime(2026, 11, 5, 17, 0, tzinfo=BERLIN)
TODAY = NOW.date()
PEOPLE = [f"person{i:02d}@example.com" for i in range(1, 61)]
LEADER = PEOPLE[0]


def config_text(port: int) -> str:
    people = "\n".join(
        f"  - email: {e}\n    name: Person {e[6:8]}\n    calendar: {{memory: {e[:8]}}}"
        for e in PEOPLE
    )
    members = ", ".join(PEOPLE[1:])
    return f"""\
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
web:
  listen: 127.0.0.1:{port}
  base_url: http://127.0.0.1:{port}
people:
{people}
teams:
  - name: Everyone
    leader: {LEADER}
    members: [{members}]
emails:
  reflection: {{to: everyone}}
  digest: {{to: leaders}}
  overload: {{}}
"""


@dataclass
class Web:
    """The running server, its links and its store."""

    served: Served
    base: str
    links: Links
    settings: Settings
    store: Store
    free: list[str] = field(default_factory=lambda: list(PEOPLE[1:]))

    def person(self) -> str:
        """A person no other test uses."""
        return self.free.pop(0)

    def token(
        self,
        purpose: Purpose,
        email: str,
        program: str = "reflection",
        period: str = TODAY.isoformat(),
        now: datetime = NOW,
    ) -> str:
        return self.links.token(purpose, email, program, period, now)

    def url(
        self,
        purpose: Purpose,
        email: str,
        program: str = "reflection",
        period: str = TODAY.isoformat(),
        now: datetime = NOW,
        **query: str | int,
    ) -> str:
        found = self.links.url(purpose, email, program, period, now, **query)
        assert found is not None
        return found

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return requests.get(url, timeout=10, allow_redirects=False, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> requests.Response:
        return requests.post(url, data=data, timeout=10, allow_redirects=False, **kwargs)

    def answers(self, email: str) -> dict[tuple[str, str], int | str | None]:
        """``{(period, question): score or text}`` of a person's reflection answers."""
        return {
            (a.period, a.question): a.score if a.question == "score" else a.text
            for a in self.store.answers_of(email)
        }

    def state(self, email: str) -> tuple[Any, ...]:
        """Everything the pages may change about a person."""
        return (
            sorted(
                (a.program, a.period, a.question, a.score, a.text)
                for a in self.store.answers_of(email)
            ),
            sorted(self.store.unsubscribed_from(email)),
            self.store.paused_until(email),
        )

    def store_events(self, email: str, days: list[tuple[date, int, int]]) -> None:
        """Store meetings for ``email``: each (day, start hour, hours) one meeting with a
        colleague, as a sync would have stored them."""
        ref = self.settings.calendar_ref(email)
        assert ref is not None
        events = [
            Event(
                id=f"{email}-{day}-{start}",
                calendar_id=ref.location,
                start=datetime.combine(day, datetime.min.time(), BERLIN) + timedelta(hours=start),
                end=datetime.combine(day, datetime.min.time(), BERLIN)
                + timedelta(hours=start + length),
                attendees=(email, LEADER),
                organizer=LEADER,
            )
            for day, start, length in days
        ]
        window = TimeRange(NOW - timedelta(days=60), NOW + timedelta(days=30))
        self.store.save_sync(
            ref.key, email, ref.kind, SyncState(window=window), events, (), True, NOW, False
        )


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page)
    assert found, "the page has no csrf field"
    return html.unescape(found.group(1))


def text_of(page: str) -> str:
    """The page's words, tags dropped and entities read, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@contextmanager
def serve_process(tmp_path: Path, config: str) -> Iterator[Served]:
    """``steadyhand serve --now NOW`` of the config text ``config``, its stderr in a
    file; killed at the end if it still runs."""
    cfg = write(tmp_path / "steadyhand.yaml", config)
    env = {**os.environ, "COLUMNS": "200", "STEADYHAND_SECRET_KEY": KEY}
    env.pop("STEADYHAND_CONFIG", None)
    env.pop("STEADYHAND_NOW", None)
    port = int(re.findall(r"listen: 127\.0\.0\.1:(\d+)", config)[0])
    log = tmp_path / "stderr.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "serve", "-c", str(cfg), "--now", NOW.isoformat()],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    served = Served(proc, log, port)
    try:
        assert wait_for(lambda: served.health() is not None or proc.poll() is not None)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@contextmanager
def web_server(tmp_path: Path) -> Iterator[Web]:
    """``steadyhand serve --now NOW`` on a free port, and what the tests need beside it."""
    port = free_port()
    text = config_text(port)
    settings = config_mod.load(write(tmp_path / "steadyhand.yaml", text))
    store = Store(settings.store_url)  # the tables exist before the server's first request
    try:
        with serve_process(tmp_path, text) as served:
            assert served.health() == (200, {"store": "ok"}), served.stderr
            links = Links(KEY, settings.web.base_url, settings.mail.unsubscribe_url)
            yield Web(served, f"http://127.0.0.1:{port}", links, settings, store)
    finally:
        store.close()


CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
EXPIRED = "This link has expired; the next email will bring a fresh one."
INVALID = "This link is not valid. Use the link from your email."


def page_of(web: Web, url: str) -> tuple[str, str]:
    """(the page's words, its csrf field) of a GET that must answer 200."""
    got = web.get(url)
    assert got.status_code == 200, text_of(got.text)
    return text_of(got.text), csrf_of(got.text)


def answer(web: Web, email: str, period: str = TODAY.isoformat(), **fields: str) -> str:
    """Open the answer page and post ``fields`` with its csrf; the answer's page words."""
    url = web.url(Purpose.ANSWER, email, period=period)
    _, csrf = page_of(web, url)
    got = web.post(url, {"csrf": csrf, **fields})
    assert got.status_code == 200, text_of(got.text)
    return text_of(got.text)


def assert_headers(response: requests.Response, *, cached: bool = False) -> None:
    """The security headers every response carries (docs/web.md)."""
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    if not cached:
        assert headers["Cache-Control"] == "no-store"


def tampered(token: str) -> str:
    """``token`` with the first character of its signature changed."""
    body, _, signature = token.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{body}.{flipped}{signature[1:]}"


@dataclass
class DemoServed:
    """`steadyhand demo` made in ``folder`` and `steadyhand serve --demo` over it."""

    folder: Path
    port: int
    said: str  # what the demo printed
    log: Path


@contextmanager
def demo_served(folder: Path, key: str, *demo_args: str) -> Iterator[DemoServed]:
    """Run `steadyhand demo [demo_args]` in ``folder`` with ``key``, then `steadyhand serve
    --demo` on a free port until the end; the server's log may hold no traceback."""
    env = {**os.environ, "STEADYHAND_SECRET_KEY": key, "COLUMNS": "200"}
    env.pop("STEADYHAND_CONFIG", None)
    env.pop("STEADYHAND_NOW", None)
    made = subprocess.run(
        [sys.executable, "-m", "worker.cli", "demo", *demo_args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = folder / "serve.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker.cli",
                "serve",
                "--demo",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
        except requests.ConnectionError:
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            return False

    try:
        assert wait_for(up, timeout=30), log.read_text(encoding="utf-8")
        yield DemoServed(folder, port, made.stdout, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(encoding="utf-8")
