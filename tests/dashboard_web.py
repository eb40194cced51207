"""A real ``steadyhand serve`` for the dashboard and sign-in tests: teams whose pulse
answers are seeded in the store (in the shapes the pulse program stores), a Maildir outbox
the sign-in emails land in, and a way to sign in as a real browser would (the link from the
real email)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from tests.conftest import write
from tests.test_serve import KEY, Served, free_port
from tests.waiting import wait_for
from tests.web_server import csrf_of, text_of
from worker import config as config_mod
from worker.config import Settings
from worker.core.model import Event, SyncState, TimeRange
from worker.store import Store
from worker.web.dashboard import monday, week_of

BERLIN = ZoneInfo("Europe/Berlin")
#: The server's clock: Thursday 5 November 2026, 17:00 in Berlin (ISO week 2026-W45).
NOW = datetime(2026, 11, 5, 17, 0, tzinfo=BERLIN)
WEEK = week_of(NOW.date())
QUESTION = "workload"
ADMIN = "boss@example.com"
#: team -> (leader, members)
TEAMS: dict[str, tuple[str, list[str]]] = {
    "Five": ("pl@example.com", [f"f{i}@example.com" for i in range(1, 6)]),
    "Four": ("ql@example.com", [f"g{i}@example.com" for i in range(1, 6)]),
    "Big": ("ol@example.com", [f"b{i}@example.com" for i in range(1, 7)]),
    "Small": ("ol@example.com", [f"b{i}@example.com" for i in range(1, 5)]),
}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/signin/[^\s\"<>]+")


def everyone() -> list[str]:
    found = [ADMIN, "nobody@example.com"]
    for leader, members in TEAMS.values():
        found += [leader, *members]
    return list(dict.fromkeys(found))


def config_text(port: int) -> str:
    people = "\n".join(
        f"  - email: {e}\n    name: {e.split('@')[0].title()}\n    calendar: {{memory: {e.split('@')[0]}}}"
        for e in everyone()
    )
    teams = "\n".join(
        f"  - name: {name}\n    leader: {leader}\n    members: [{', '.join(members)}]"
        for name, (leader, members) in TEAMS.items()
    )
    return f"""\
timezone: Europe/Berlin
store: sqlite:///var/steadyhand.db
web:
  listen: 127.0.0.1:{port}
  base_url: http://127.0.0.1:{port}
mail:
  from: "Steadyhand <steadyhand@example.com>"
  transport: outbox
  outbox: var/outbox
admins: [{ADMIN}]
people:
{people}
teams:
{teams}
emails:
  pulse:
    questions:
      - {{id: {QUESTION}, text: "How sustainable was your workload this week?"}}
"""


def seed_pulse(store: Store, scores: dict[str, int], period: str = WEEK) -> None:
    """Pulse answers as the pulse program stores them."""
    for person, score in scores.items():
        store.record_answers(person, "pulse", period, {QUESTION: score}, NOW)


def seed_meetings(store: Store, settings: Settings, people: list[str], weeks: int = 12) -> None:
    """A 2 h meeting every working day of the last ``weeks`` weeks, and 3 h on Wednesdays."""
    first = monday(NOW.date()) - timedelta(weeks=weeks - 1)
    for person in people:
        ref = settings.calendar_ref(person)
        assert ref is not None
        events = []
        for n in range(weeks * 7):
            day = first + timedelta(days=n)
            if day.weekday() >= 5 or day > NOW.date():
                continue
            hours = 3 if day.weekday() == 2 and n < (weeks - 2) * 7 else 2
            start = datetime.combine(day, datetime.min.time(), BERLIN) + timedelta(hours=10)
            events.append(
                Event(
                    id=f"{person}-{day}",
                    calendar_id=ref.location,
                    start=start,
                    end=start + timedelta(hours=hours),
                    attendees=(person, "pl@example.com"),
                    organizer="pl@example.com",
                )
            )
        window = TimeRange(NOW - timedelta(days=120), NOW + timedelta(days=30))
        store.save_sync(
            ref.key, person, ref.kind, SyncState(window=window), events, (), True, NOW, False
        )


@dataclass
class Board:
    """A running server over a folder: its base URL, settings and store."""

    base: str
    folder: Path
    settings: Settings
    store: Store
    served: Served
    #: The Set-Cookie header of the last sign-in.
    set_cookie: str = ""

    def emails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in sorted((self.folder / "var" / "outbox" / "new").glob("*")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if address in str(message["To"]):
                found.append(message)
        return found

    def sign_in_links(self, address: str) -> list[str]:
        out = []
        for message in self.emails_to(address):
            body = message.get_body(("plain",))
            assert body is not None
            out += LINK.findall(str(body.get_content()))
        return out

    def ask_for_link(self, session: requests.Session, address: str) -> requests.Response:
        page = session.get(f"{self.base}/dashboard", timeout=10)
        nonce = re.search(r'name="nonce" value="([^"]*)"', page.text)
        assert nonce, page.text
        return session.post(
            f"{self.base}/signin",
            data={"nonce": nonce.group(1), "csrf": csrf_of(page.text), "email": address},
            headers={"Origin": self.base},
            timeout=10,
        )

    def sign_in(self, address: str) -> requests.Session:
        """A session signed in as ``address`` through the link of the real email."""
        session = requests.Session()
        before = set(self.sign_in_links(address))
        self.ask_for_link(session, address)
        assert wait_for(lambda: set(self.sign_in_links(address)) - before)
        (link,) = set(self.sign_in_links(address)) - before
        got = session.post(
            link,
            data={"csrf": csrf_of(session.get(link, timeout=10).text)},
            headers={"Origin": self.base},
            timeout=10,
            allow_redirects=False,
        )
        assert got.status_code == 303, text_of(got.text)
        self.set_cookie = got.headers["set-cookie"]
        return session


@contextmanager
def serve_at(folder: Path, now: datetime) -> Iterator[Board]:
    """``steadyhand serve --now NOW`` over ``folder`` (its config, store and outbox made the
    first time), on a free port."""
    port = free_port()
    text = config_text(port)
    cfg = write(folder / "steadyhand.yaml", text)
    settings = config_mod.load(cfg)
    store = Store(settings.store_url)
    env = {**os.environ, "COLUMNS": "200", "STEADYHAND_SECRET_KEY": KEY}
    env.pop("STEADYHAND_CONFIG", None)
    env.pop("STEADYHAND_NOW", None)
    log = folder / f"stderr-{port}.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "serve", "-c", str(cfg), "--now", now.isoformat()],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    served = Served(proc, log, port)
    try:
        assert wait_for(lambda: served.health() is not None or proc.poll() is not None)
        assert served.health() == (200, {"store": "ok"}), served.stderr
        yield Board(f"http://127.0.0.1:{port}", folder, settings, store, served)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        store.close()


def day(n: int) -> date:
    return NOW.date() - timedelta(days=n)
