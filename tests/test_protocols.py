"""Optional capabilities (connectors/base.py): each real connector passes exactly the
protocol checks it should, and a connector without a capability is driven through the
plain calls of the contract (``sync`` and ``apply``) while one with it gets it called."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from connectors.base import (
    BatchSync,
    CalendarConnector,
    Closes,
    DeclinesConflicts,
    Describes,
    HasTokenHealth,
    MailTransport,
    ParallelReads,
)
from connectors.ics import IcsCalendar
from connectors.memory import MemoryCalendar, RecordingTransport
from connectors.secrets import TokenStore
from connectors.smtp import MaildirTransport, SmtpTransport
from connectors.vdir import VdirCalendar
from tests.conftest import write
from tests.tz import BERLIN, at
from worker import config
from worker.core.model import (
    Applied,
    Block,
    BlockChange,
    CalendarRef,
    Event,
    SyncResult,
    SyncState,
    TimeRange,
)
from worker.cycle.deliver import fill_at_send_time
from worker.cycle.run import run_cycle
from worker.cycle.runtime import Runtime
from worker.store import Store

CAPABILITIES = (BatchSync, ParallelReads, Describes, DeclinesConflicts, HasTokenHealth, Closes)


def offered(thing: object) -> set[str]:
    return {p.__name__ for p in CAPABILITIES if isinstance(thing, p)}


@pytest.fixture
def tokens(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens", Fernet.generate_key())


def test_the_file_and_memory_calendars_offer_what_they_implement() -> None:
    for connector, expected in (
        (MemoryCalendar(), set()),
        (IcsCalendar(), {"ParallelReads", "Describes"}),
        (VdirCalendar(), {"ParallelReads", "Describes"}),
    ):
        assert isinstance(connector, CalendarConnector), connector.kind
        assert offered(connector) == expected, connector.kind


def test_the_google_calendar_batches_reports_its_token_and_closes(tokens: TokenStore) -> None:
    google = pytest.importorskip("tests.test_google")  # skips without the google extra
    from tests.fakes.google import GoogleFake

    fake = GoogleFake(seed=6)
    try:
        connector = google.calendar(fake, tokens)
        assert isinstance(connector, CalendarConnector)
        assert offered(connector) == {"BatchSync", "HasTokenHealth", "Closes"}
        connector.close()
    finally:
        fake.close()


def test_the_outlook_calendar_batches_declines_and_reports_its_token(
    tokens: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    outlook = pytest.importorskip("tests.test_outlook")  # skips without the outlook extra
    from tests.fakes.graph import FakeGraph

    with FakeGraph(mailbox_timezone="Europe/Berlin") as fake:
        monkeypatch.setenv(outlook.SECRET_ENV, fake.client_secret)
        connector = outlook.connector(fake, store=tokens)
        assert isinstance(connector, CalendarConnector)
        assert offered(connector) == {"BatchSync", "DeclinesConflicts", "HasTokenHealth"}


def test_the_transports_that_hold_a_connection_close_it(tmp_path: Path) -> None:
    for transport, expected in (
        (RecordingTransport(), set()),
        (MaildirTransport(tmp_path / "outbox"), set()),
        (SmtpTransport("localhost"), {"Closes"}),
    ):
        assert isinstance(transport, MailTransport), transport.name
        assert offered(transport) == expected, transport.name


# -- driven through the plain calls ----------------------------------------------------
CONFIG = """\
timezone: Europe/Berlin
working_hours: {mon-fri: "09:00-17:00"}
people:
  - email: ana@example.com
    name: Ana Lima
    calendar: {memory: ana}
  - email: dee@example.com
    name: Dee Park
    calendar: {memory: dee}
mail: {from: "Steadyhand <steadyhand@example.com>", transport: memory}
protect:
  - rule: focus
    for: everyone
    per_day: 1h
    min_block: 60m
    defend: decline
"""
NOW = at(BERLIN, "2026-11-05 07:30")


class Plain:
    """Only the contract, each call recorded: none of the optional capabilities."""

    kind = "memory"
    read_only = False

    def __init__(self) -> None:
        start = at(BERLIN, "2026-11-05 09:00")
        meeting = Event("m1", "", start, start + timedelta(hours=2), title="Review")
        self.inner = MemoryCalendar({"ana": [meeting], "dee": [meeting]})
        self.calls: list[str] = []

    def sync(self, cal: CalendarRef, window: TimeRange, state: SyncState | None) -> SyncResult:
        self.calls.append(f"sync {cal.location}")
        return self.inner.sync(cal, window, state)

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        self.calls.append(f"apply {cal.location}")
        return self.inner.apply(cal, changes)


class Capable(Plain):
    """The same calendar, with describe, decline_conflicts and close."""

    def describe(self, cal: CalendarRef, event_id: str) -> str | None:
        self.calls.append(f"describe {event_id}")
        return "Notes\n- [ ] send the deck"

    def decline_conflicts(
        self, cal: CalendarRef, protected: Sequence[Block], message: str
    ) -> list[str]:
        self.calls.append(f"decline {cal.location}")
        return []

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Any]:
    settings = config.load(write(tmp_path / "steadyhand.yaml", CONFIG))
    made: list[Runtime] = []

    def make(connector: Plain) -> Runtime:
        rt = Runtime(
            settings=settings,
            store=Store(settings.store_url),
            transport=RecordingTransport(),
            clock=lambda: NOW,
            calendars={("memory", None): connector},  # type: ignore[dict-item]
        )
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.store.close()


def follow_up(rt: Runtime, now: datetime) -> Any:
    wanted = {"_describe": {"owner": "ana@example.com", "event_id": "m1"}}
    return fill_at_send_time(rt, "followup", wanted, now)["commitments"]


def test_a_connector_without_capabilities_is_driven_through_sync_and_apply(runtime: Any) -> None:
    connector = Plain()
    assert offered(connector) == set()
    rt = runtime(connector)
    report = run_cycle(rt, NOW)
    assert [r.outcome for r in report.syncs] == ["read", "read"]
    assert sorted(set(connector.calls)) == ["apply ana", "apply dee", "sync ana", "sync dee"]
    assert follow_up(rt, NOW) == []  # nothing to read the description with: a list to fill in
    rt.close()
    assert not any(c.startswith(("describe", "decline", "close")) for c in connector.calls)


def test_a_connector_with_capabilities_gets_them_called(runtime: Any) -> None:
    connector = Capable()
    assert offered(connector) == {"Describes", "DeclinesConflicts", "Closes"}
    rt = runtime(connector)
    run_cycle(rt, NOW)
    assert {"decline ana", "decline dee"} <= set(connector.calls)
    assert follow_up(rt, NOW) == ["send the deck"]
    rt.close()
    assert connector.calls[-1] == "close"
