"""Secret feed addresses stay secret: a Google private address, a ?token= feed and a feed
with a password are read, and their secrets appear in no output, no log and no store row."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, write
from worker import config as config_mod
from worker.core.model import redact_location
from worker.store import Store

DEMO = ROOT / "config" / "demo"
HEX = "0123456789abcdef0123456789abcdef"  # Google's private-<hex> part
TOKEN = "SECRETtokenVALUE"
PASSWORD = "pw-Hunter2-pw"
SECRETS = (HEX, TOKEN, PASSWORD)


class Feeds:
    """A loopback web server answering every path with one of the demo calendars."""

    def __init__(self) -> None:
        bodies = {name: (DEMO / f"{name}.ics").read_bytes() for name in ("ana", "bo", "cy")}
        self.paths: list[str] = []
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feeds.paths.append(self.path)
                name = "ana" if "ana" in self.path else "bo" if "token" in self.path else "cy"
                body = bodies[name]
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Feeds]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    server = Feeds()
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    calendar: {{ics: "http://{server.base}/calendar/ical/ana%40example.com/private-{HEX}/basic.ics"}}
  - email: bo@example.com
    calendar: {{ics: "http://{server.base}/cal.ics?token={TOKEN}"}}
  - email: cy@example.com
    calendar: {{ics: "http://user:{PASSWORD}@{server.base}/cal.ics"}}
teams:
  - name: Platform
    leader: ana@example.com
    members: [bo@example.com, cy@example.com]
protect:
  - rule: coaching
    for: leaders
    duration: 45m
    per_week: 2
    window: {{days: [tue, wed, thu], time: "13:00-17:00"}}
""",
    )
    yield server
    server.close()


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def store_bytes(project: Path) -> bytes:
    """Every byte of the SQLite store, its write-ahead log included."""
    return b"".join(p.read_bytes() for p in sorted((project / "var").glob("steadyhand.db*")))


def test_secret_feed_addresses_never_reach_the_logs_the_store_or_doctor(
    run_cli, project: Path, feeds: Feeds, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    synced = run_cli("--log-level", "debug", "sync")  # every logger, the libraries too
    assert synced.code == 0, synced.err
    assert len(feeds.paths) == 3  # the three feeds were really fetched, with their secrets
    assert any(HEX in p for p in feeds.paths) and any(TOKEN in p for p in feeds.paths)
    assert caplog.text.count("ics sync") == 3
    assert "private-…" in caplog.text and "?token=…" in caplog.text
    settings = config_mod.load(project / "steadyhand.yaml")
    keys = [settings.calendar_ref(f"{n}@example.com") for n in ("ana", "bo", "cy")]
    assert all(ref is not None and f"ics sync {ref.key}:" in caplog.text for ref in keys)
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert leaks(records) == []
    assert leaks(caplog.text) == []

    doctor = run_cli("doctor")
    assert doctor.code == 0, doctor.err
    assert "ana@example.com:ics:" in doctor.out and "private-…" in doctor.out
    assert leaks(doctor.out + doctor.err) == []

    planned = run_cli("plan")
    assert "read-only" in planned.out + planned.err
    assert f"ics: http://{feeds.base}/calendar/ical/ana%40example.com/private-…/basic.ics" in (
        planned.out
    )
    assert leaks(planned.out + planned.err) == []
    planned_json = run_cli("plan", "--format", "json")
    assert leaks(planned_json.out + planned_json.err) == []
    applied = run_cli("apply")
    assert "read-only" in applied.out + applied.err
    assert leaks(applied.out + applied.err) == []

    assert leaks(caplog.text) == []  # the later commands logged nothing secret either
    raw = store_bytes(project)
    assert b"ana@example.com:ics:" in raw  # the keys are there ...
    assert [s for s in SECRETS if s.encode() in raw] == []  # ... and no secret


def test_the_sync_table_shows_feed_addresses_without_their_secrets(
    run_cli, project: Path, feeds: Feeds
) -> None:
    synced = run_cli("sync")
    assert synced.code == 0, synced.err
    assert leaks(synced.out + synced.err) == []


def test_a_feed_is_keyed_by_its_redacted_address_and_a_hash(project: Path, feeds: Feeds) -> None:
    settings = config_mod.load(project / "steadyhand.yaml")
    ana, bo, cy = (settings.calendar_ref(f"{n}@example.com") for n in ("ana", "bo", "cy"))
    assert ana is not None and bo is not None and cy is not None
    assert ana.key.startswith(
        f"ana@example.com:ics:http://{feeds.base}/calendar/ical/ana%40example.com/private-…/basic.ics#"
    )
    assert bo.key.startswith(f"bo@example.com:ics:http://{feeds.base}/cal.ics#")  # no query
    assert cy.key.startswith(f"cy@example.com:ics:http://{feeds.base}/cal.ics#")
    assert leaks(ana.key + bo.key + cy.key) == []
    assert HEX in ana.location and TOKEN in bo.location  # the connector still gets the address
    assert ana.shown == ana.key.split(":ics:", 1)[1].rsplit("#", 1)[0]


def test_two_feeds_differing_only_in_their_secret_have_two_keys(tmp_path: Path) -> None:
    write(
        tmp_path / "steadyhand.yaml",
        """\
people:
  - {email: a@example.com, calendar: {ics: "https://host/cal.ics?token=one"}}
  - {email: b@example.com, calendar: {ics: "https://host/cal.ics?token=two"}}
""",
    )
    settings = config_mod.load(tmp_path / "steadyhand.yaml")
    a, b = settings.calendar_ref("a@example.com"), settings.calendar_ref("b@example.com")
    assert a is not None and b is not None
    assert a.key.split(":", 1)[1] != b.key.split(":", 1)[1]
    assert a.shown == b.shown == "https://host/cal.ics?token=…"


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (
            f"https://calendar.google.com/calendar/ical/ana%40example.com/private-{HEX}/basic.ics",
            "https://calendar.google.com/calendar/ical/ana%40example.com/private-…/basic.ics",
        ),
        ("https://host/cal.ics?token=SECRET&view=week", "https://host/cal.ics?token=…&view=…"),
        ("https://user:pw@host:8443/cal.ics#frag", "https://host:8443/cal.ics"),
        (
            "webcal://p52-caldav.icloud.com/published/2/MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3",
            "webcal://p52-caldav.icloud.com/published/2/…",
        ),
        (
            "https://cloud.example.com/remote.php/dav/public-calendars/rmJ4KyjBQHD3MWnY?export",
            "https://cloud.example.com/remote.php/dav/public-calendars/…?…",
        ),
        (
            "https://outlook.office365.com/owa/calendar/ab@contoso.com/a1b2c3d4e5f60718293a4b5c6d/calendar.ics",
            "https://outlook.office365.com/owa/calendar/ab@contoso.com/…/calendar.ics",
        ),
        ("HTTPS://host/Secret_abc/x.ics", "https://host/Secret_…/x.ics"),
        ("https://u:p@[::1]:99/a.ics", "https://[::1]:99/a.ics"),
        ("https://u:p@host:notaport/a.ics", "https://host/a.ics"),
        ("https://host/team-calendar.ics", "https://host/team-calendar.ics"),
        ("cal/ana.ics", "cal/ana.ics"),
        ("/srv/user:pw@host/cal.ics", "/srv/user:pw@host/cal.ics"),  # a path, not a URL
    ],
)
def test_a_feed_address_is_shown_without_its_secrets(location: str, shown: str) -> None:
    assert redact_location(location) == shown


_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=24, max_size=40)


@given(
    secret=_secret,
    password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ!$", min_size=6, max_size=12),
    value=_secret,
    name=st.sampled_from(["token", "key", "auth", "k", "x-sig"]),
)
def test_no_secret_part_of_a_feed_address_survives(
    secret: str, password: str, value: str, name: str
) -> None:
    url = f"https://me:{password}@cal.example.com/ical/{secret}/basic.ics?{name}={value}&v=1"
    shown = redact_location(url)
    assert secret not in shown and password not in shown and value not in shown
    assert shown.startswith("https://cal.example.com/ical/")
    assert redact_location(shown) == shown  # showing a shown address changes nothing


def test_a_store_from_before_keeps_its_feeds_under_keys_without_their_secrets(
    run_cli, project: Path, feeds: Feeds
) -> None:
    """An older steadyhand keyed a feed by its whole path, ``private-<hex>`` and all: the
    keys are renamed when the store opens (the hash is the same), the secret leaves the
    file, and the events are not counted twice at the next sync."""
    assert run_cli("sync").code == 0
    settings = config_mod.load(project / "steadyhand.yaml")
    ana = settings.calendar_ref("ana@example.com")
    assert ana is not None
    old = ana.key.replace("private-…", f"private-{HEX}")
    db = project / "var" / "steadyhand.db"
    with sqlite3.connect(db) as conn:
        for table in ("events", "sync_state"):
            conn.execute(
                f"UPDATE {table} SET calendar_key = ? WHERE calendar_key = ?", (old, ana.key)
            )
        before = conn.execute(
            "SELECT COUNT(*) FROM events WHERE owner = 'ana@example.com'"
        ).fetchone()
    conn.close()
    assert HEX.encode() in store_bytes(project)

    doctor = run_cli("doctor")
    assert doctor.code == 0, doctor.err
    assert leaks(doctor.out) == [] and "private-…" in doctor.out
    assert HEX.encode() not in store_bytes(project)
    assert run_cli("sync").code == 0
    with sqlite3.connect(db) as conn:
        keys = conn.execute(
            "SELECT DISTINCT calendar_key FROM events WHERE owner = 'ana@example.com'"
        ).fetchall()
        after = conn.execute(
            "SELECT COUNT(*) FROM events WHERE owner = 'ana@example.com'"
        ).fetchone()
    conn.close()
    assert keys == [(ana.key,)] and after == before


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_old_feed_keys_are_renamed_on_sqlite_and_postgresql(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'steadyhand.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    now = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
    old = f"ana@example.com:ics:https://calendar.google.com/calendar/ical/a/private-{HEX}/basic.ics#0a1b2c3d"
    new = "ana@example.com:ics:https://calendar.google.com/calendar/ical/a/private-…/basic.ics#0a1b2c3d"
    twice = f"bo@example.com:ics:https://host/{TOKEN * 2}/cal.ics#99999999"
    store = Store(url)
    for key, owner in ((old, "ana@example.com"), (twice, "bo@example.com")):
        store.record_sync_error(key, owner, "ics", "HTTP 503", now)
    store.record_sync_error(
        twice.replace(TOKEN * 2, "…"), "bo@example.com", "ics", "HTTP 503", now
    )  # a newer steadyhand ran meanwhile: the old row goes, the new one stays
    store.record_sync_error("cy@example.com:ics:cal/cy.ics", "cy@example.com", "ics", "x", now)
    store.close()
    store = Store(url)
    try:
        keys = sorted(c.calendar_key for c in store.calendars())
    finally:
        store.close()
    assert keys == sorted([new, twice.replace(TOKEN * 2, "…"), "cy@example.com:ics:cal/cy.ics"])


def test_doctor_and_the_worker_banner_show_store_and_queue_without_passwords(
    run_cli: Any, project: Path
) -> None:
    write(
        project / "steadyhand.yaml",
        "store: sqlite:///var/steadyhand.db\nqueue: redis://:queue-pw-123@127.0.0.1:6399/0\n",
    )
    result = run_cli("doctor")
    assert "queue  redis://127.0.0.1:6399/0" in result.out
    assert "store  sqlite:///var/steadyhand.db: ok" in result.out
    assert "queue-pw-123" not in result.out + result.err
