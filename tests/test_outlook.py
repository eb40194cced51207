"""The Outlook connector against a loopback Graph (``tests/fakes/graph.py``).

Real msal (through its ``http_client``) and real requests; the fake follows Graph's
documented behaviour and counts what it is asked. Nothing leaves the machine and no test
waits: ``sleep`` is a recorder.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from connectors.base import AccountSpec, CalendarConnector, MailTransport
from connectors.outlook import (
    CATEGORY,
    TAG_PROPERTY,
    WINDOWS_ZONES,
    OutlookCalendar,
    OutlookTransport,
    connect,
    iana_zone,
    parse_graph_time,
    token_name,
    transaction_id,
)
from connectors.retry import Backoff
from connectors.secrets import TokenStore
from tests.fakes.graph import FakeGraph, iter_secrets
from tests.test_connector_contract import (
    INSIDE,
    OWNER,
    SAMPLE,
    TZ,
    WINDOW,
    Backend,
    CalendarContract,
    at,
    block,
    fields,
    merge,
)
from worker.core.errors import NotOwned, PermanentError, TransientError, UserError
from worker.core.model import (
    UTC,
    Block,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    EventType,
    Response,
    Status,
    TimeRange,
    Transparency,
)

SECRET_ENV = "TEST_GRAPH_CLIENT_SECRET"
TOKEN_ENV = "TEST_GRAPH_ACCESS_TOKEN"


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[FakeGraph]:
    with FakeGraph(mailbox_timezone="Europe/Berlin") as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    server.reset()
    server.mailbox_timezone = "Europe/Berlin"
    server.authority_host = "login.microsoftonline.com"
    monkeypatch.setenv(SECRET_ENV, server.client_secret)
    return server


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens", Fernet.generate_key())


class Sleeps:
    """A ``sleep`` that records instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def spec_for(fake: FakeGraph, auth: str, **fields: Any) -> AccountSpec:
    values: dict[str, Any] = {
        "name": "m365",
        "kind": "outlook",
        "auth": auth,
        "tenant": fake.tenant,
        "client_id": fake.client_id,
        "client_secret_env": SECRET_ENV,
        "token_env": TOKEN_ENV,
        "graph_endpoint": fake.root,
    }
    values.update(fields)
    return AccountSpec(**values)


def sign_in(fake: FakeGraph, store: TokenStore, email: str, **kw: Any) -> list[str]:
    """``steadyhand connect outlook --person EMAIL``, the user approving the code."""
    shown: list[str] = []

    def show(message: str) -> None:
        shown.append(message)
        if "enter the code" in message:
            fake.approve(message.split("enter the code ")[1].split(maxsplit=1)[0], email)

    fake.add_user(email)
    connect(
        spec_for(fake, "device_code"),
        email,
        store,
        show=show,
        msal_http_client=fake.http_client(),
        **kw,
    )
    return shown


def connector(
    fake: FakeGraph,
    auth: str = "client_credentials",
    store: TokenStore | None = None,
    sleep: Callable[[float], None] | None = None,
    **kw: Any,
) -> OutlookCalendar:
    spec_fields = kw.pop("spec_fields", {})
    return OutlookCalendar(
        spec_for(fake, auth, **spec_fields),
        token_store=store,
        session=fake.session(),
        msal_http_client=fake.http_client(),
        sleep=sleep or Sleeps(),
        **kw,
    )


def ref(owner: str = OWNER, location: str = "primary") -> CalendarRef:
    return CalendarRef(
        key=f"{owner}:outlook:{location}",
        owner=owner,
        kind="outlook",
        location=location,
        timezone="Europe/Berlin",
        account="m365",
    )


def utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


_ANSWERS = {
    Response.ACCEPTED: "accepted",
    Response.TENTATIVE: "tentativelyAccepted",
    Response.DECLINED: "declined",
    Response.NEEDS_ACTION: "notResponded",
}


def graph_json(e: Event) -> dict[str, Any]:
    """``e`` as Outlook holds it in OWNER's mailbox (what a user or an inviter made)."""
    if e.all_day:
        start = {"dateTime": f"{e.start.astimezone(TZ):%Y-%m-%d}T00:00:00", "timeZone": "UTC"}
        end = {"dateTime": f"{e.end.astimezone(TZ):%Y-%m-%d}T00:00:00", "timeZone": "UTC"}
    else:
        start, end = utc(e.start), utc(e.end)
    if e.event_type is EventType.OUT_OF_OFFICE:
        show_as = "oof"
    elif e.event_type is EventType.WORKING_LOCATION:
        show_as = "workingElsewhere"
    elif e.transparency is Transparency.FREE:
        show_as = "free"
    elif e.status is Status.TENTATIVE:
        show_as = "tentative"
    else:
        show_as = "busy"
    data: dict[str, Any] = {
        "id": e.id,
        "subject": e.title or "",
        "start": start,
        "end": end,
        "isAllDay": e.all_day,
        "showAs": show_as,
        "isCancelled": e.status is Status.CANCELLED,
        "isOrganizer": e.response is Response.ORGANIZER,
        "responseStatus": {"response": _ANSWERS.get(e.response, "organizer")},
        "attendees": [
            {"type": "required", "emailAddress": {"address": a, "name": a}} for a in e.attendees
        ],
        "categories": [],
    }
    if e.organizer:
        data["organizer"] = {"emailAddress": {"address": e.organizer, "name": e.organizer}}
    if e.series_id:
        data["type"], data["seriesMasterId"] = "occurrence", e.series_id
    if e.event_type is EventType.FOCUS:
        data["categories"] = ["Focus time"]
    if e.owned_block_id:
        data["categories"] = [CATEGORY]
        data["singleValueExtendedProperties"] = [{"id": TAG_PROPERTY, "value": e.owned_block_id}]
    return data


def as_graph_reads(e: Event) -> Event:
    """What survives a trip through Graph: it has one ``showAs``, so an event that is both
    tentative and free (an iCalendar STATUS:TENTATIVE + TRANSP:TRANSPARENT) reads as free."""
    if e.status is Status.TENTATIVE and e.transparency is Transparency.FREE:
        return replace(e, status=Status.CONFIRMED)
    return e


class OutlookBackend:
    def __init__(self, fake: FakeGraph, connector: OutlookCalendar) -> None:
        self.fake = fake
        self.connector = connector

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        self.fake.add_mailbox(OWNER)
        self.change(ref(), events)
        return ref()

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        self.fake.replace(cal.owner, cal.location, [graph_json(e) for e in events])


# -- the common contract -------------------------------------------------------------------
class TestOutlook(CalendarContract):
    """The contract, app-only (``/users/{id}``) and signed in by device code (``/me``)."""

    @pytest.fixture(params=["client_credentials", "device_code"])
    def backend(
        self, request: pytest.FixtureRequest, fake: FakeGraph, store: TokenStore
    ) -> Iterator[Backend]:
        if request.param == "device_code":
            sign_in(fake, store, OWNER)
        yield OutlookBackend(fake, connector(fake, request.param, store))

    def test_event_meaning_is_read_back_as_written(self, backend: Backend) -> None:
        # Graph has one showAs per event: "tentative-free" comes back free and confirmed.
        _, result = self.full_sync(backend)
        got = {e.id: fields(e) for e in result.events}
        assert got == {e.id: fields(as_graph_reads(e)) for e in INSIDE}
        changed = [e.id for e in INSIDE if as_graph_reads(e) != e]
        assert changed == ["tentative-free"]

    def test_untagged_event_never_receives_a_write(self, backend: OutlookBackend) -> None:
        cal, _ = self.full_sync(backend)
        for kind in (ChangeKind.MOVE, ChangeKind.DELETE):
            with pytest.raises(NotOwned, match="steadyhand changes only its own blocks"):
                backend.connector.apply(
                    cal, [BlockChange(kind, block("b1", at(23, 11)), "bug", event_id="standup")]
                )
        assert [m for m, _ in backend.fake.log if m in ("PATCH", "DELETE")] == []


# -- reading --------------------------------------------------------------------------------
def test_delta_pages_with_the_preferred_size_in_utc_to_the_delta_link(fake: FakeGraph) -> None:
    cal_conn = connector(fake, page_size=2)
    backend = OutlookBackend(fake, cal_conn)
    cal = backend.calendar(SAMPLE)
    result = cal_conn.sync(cal, WINDOW, None)
    assert result.full and len(result.events) == len(INSIDE)
    deltas = [path for _, path in fake.log if "calendarView/delta" in path]
    assert len(deltas) == math.ceil(len(INSIDE) / 2)
    assert "startDateTime=2026-11-22T23:00:00Z" in deltas[0]
    assert all("$skiptoken=" in path for path in deltas[1:])
    assert all(p == 'odata.maxpagesize=2, outlook.timezone="UTC"' for p in fake.prefer_seen), (
        fake.prefer_seen
    )
    assert result.state.token and "$deltatoken=" in result.state.token
    assert result.state.window == WINDOW


def test_graph_fields_map_to_the_event_model(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER)
    base = {"start": utc(at(24, 9)), "end": utc(at(24, 10)), "isOrganizer": False}
    rows: dict[str, dict[str, Any]] = {
        "free": {"showAs": "free", "responseStatus": {"response": "accepted"}},
        "tentative": {"showAs": "tentative", "responseStatus": {"response": "tentativelyAccepted"}},
        "busy": {"showAs": "busy", "responseStatus": {"response": "declined"}},
        "oof": {"showAs": "oof", "isOrganizer": True, "responseStatus": {"response": "organizer"}},
        "elsewhere": {"showAs": "workingElsewhere", "responseStatus": {"response": "none"}},
        "pending": {"showAs": "busy", "responseStatus": {"response": "notResponded"}},
        "cancelled": {"showAs": "busy", "isCancelled": True},
        "master": {"type": "seriesMaster"},
        "occurrence": {"type": "occurrence", "seriesMasterId": "MASTER-1"},
        "people": {
            "organizer": {"emailAddress": {"address": "Boss@Example.COM", "name": "Boss"}},
            "attendees": [
                {"emailAddress": {"address": "CY@example.com"}},
                {"emailAddress": {"address": "Ana@Example.com"}},
                {"emailAddress": {"name": "a room without an address"}},
            ],
            "subject": "Planning",
        },
        "all-day": {
            "isAllDay": True,
            "start": {"dateTime": "2026-11-25T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-26T00:00:00.0000000", "timeZone": "UTC"},
        },
    }
    for event_id, extra in rows.items():
        fake.put(OWNER, "primary", {"id": event_id, **base, **extra})
    got = {e.id: e for e in connector(fake).sync(ref(), WINDOW, None).events}
    assert "master" not in got
    assert (got["free"].transparency, got["free"].status) == (Transparency.FREE, Status.CONFIRMED)
    assert got["free"].response is Response.ACCEPTED
    assert (got["tentative"].transparency, got["tentative"].status) == (
        Transparency.BUSY,
        Status.TENTATIVE,
    )
    assert got["tentative"].response is Response.TENTATIVE
    assert got["busy"].response is Response.DECLINED
    assert got["oof"].event_type is EventType.OUT_OF_OFFICE
    assert got["oof"].response is Response.ORGANIZER
    assert got["elsewhere"].event_type is EventType.WORKING_LOCATION
    assert got["elsewhere"].response is Response.NEEDS_ACTION
    assert got["pending"].response is Response.NEEDS_ACTION
    assert got["cancelled"].status is Status.CANCELLED
    assert got["occurrence"].series_id == "MASTER-1"
    assert got["people"].organizer == "boss@example.com"
    assert got["people"].attendees == ("cy@example.com", "ana@example.com")
    assert got["people"].title == "Planning" and got["busy"].title is None
    day = got["all-day"]
    assert day.all_day and (day.start, day.end) == (at(25, 0), at(26, 0))
    assert day.start.tzinfo == TZ
    assert all(e.etag for e in got.values())


def test_windows_time_zone_names_are_read_as_iana_zones(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER)
    fake.echo_original_timezones = True  # answer in each event's own (Windows) zone
    fake.put(
        OWNER,
        "primary",
        {
            "id": "berlin",
            "start": {
                "dateTime": "2026-11-24T09:00:00.0000000",
                "timeZone": "W. Europe Standard Time",
            },
            "end": {
                "dateTime": "2026-11-24T10:00:00.0000000",
                "timeZone": "W. Europe Standard Time",
            },
        },
    )
    fake.put(
        OWNER,
        "primary",
        {
            "id": "delhi",
            "start": {"dateTime": "2026-11-24T14:30:00.0000000", "timeZone": "India Standard Time"},
            "end": {"dateTime": "2026-11-24T15:15:00.0000000", "timeZone": "India Standard Time"},
        },
    )
    got = {e.id: e for e in connector(fake).sync(ref(), WINDOW, None).events}
    assert (got["berlin"].start, got["berlin"].end) == (at(24, 9), at(24, 10))
    assert got["delhi"].start == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_the_windows_zone_table_resolves_and_unknown_names_fall_back() -> None:
    for name, zone in WINDOWS_ZONES.items():
        expected = "UTC" if zone == "Etc/UTC" else ZoneInfo(zone).key  # each one exists
        assert iana_zone(name, ZoneInfo("Asia/Tokyo")).key == expected, name
    assert iana_zone("Pacific Standard Time", UTC).key == "America/Los_Angeles"
    assert iana_zone("w. europe standard time", UTC).key == "Europe/Berlin"
    assert iana_zone("Europe/Lisbon", UTC).key == "Europe/Lisbon"
    assert iana_zone("tzone://Microsoft/Custom", TZ) is TZ
    assert parse_graph_time("2026-11-24T09:00:00.1234567", UTC).microsecond == 123456


def test_incremental_sync_reports_edits_and_removed_events(fake: FakeGraph) -> None:
    conn = connector(fake)
    backend = OutlookBackend(fake, conn)
    cal = backend.calendar(INSIDE)
    first = conn.sync(cal, WINDOW, None)
    fake.edit("standup", start=utc(at(23, 9, 30)), end=utc(at(23, 10)))
    fake.remove("declined")
    fake.edit("focus", start=utc(at(10, 9, 0, month=12)), end=utc(at(10, 10, 0, month=12)))
    second = conn.sync(cal, WINDOW, first.state)
    assert not second.full and not second.unchanged
    assert [e.id for e in second.events] == ["standup"]
    assert set(second.removed) == {"declined", "focus"}  # deleted; moved out of the window
    view = merge(merge({}, first), second)
    assert view["standup"].start == at(23, 9, 30)


@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_an_expired_delta_restarts_a_full_sync(fake: FakeGraph, code: str) -> None:
    conn = connector(fake)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    first = conn.sync(cal, WINDOW, None)
    fake.expire_deltas(code)
    fake.remove("declined")
    second = conn.sync(cal, WINDOW, first.state)
    assert second.full
    assert {e.id for e in second.events} == {e.id for e in INSIDE} - {"declined"}
    paths = [p for _, p in fake.log if "delta" in p]
    assert "$deltatoken=" in paths[-2] and "startDateTime=" in paths[-1]
    third = conn.sync(cal, WINDOW, second.state)
    assert third.unchanged


def test_a_stored_link_outside_graph_is_never_followed(fake: FakeGraph) -> None:
    conn = connector(fake)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    first = conn.sync(cal, WINDOW, None)
    forged = replace(first.state, token="https://attacker.example/v1.0/me/calendarView/delta")
    second = conn.sync(cal, WINDOW, forged)
    assert second.full and len(second.events) == len(INSIDE)


def test_block_tag_is_read_once_then_kept_in_the_sync_state(fake: FakeGraph) -> None:
    conn = connector(fake)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    first = conn.sync(cal, WINDOW, None)
    expands = [p for _, p in fake.log if "$expand" in p]
    assert len(expands) == 1 and "/events/block?" in expands[0]  # only the tagged one
    [applied] = conn.apply(cal, [BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "t")])
    fake.reset_counters()
    second = conn.sync(cal, WINDOW, first.state)
    assert [e.owned_block_id for e in second.events] == ["b9"]
    assert len([p for _, p in fake.log if "$expand" in p]) == 1
    # the user drags the block: delta says so without the tag; the state remembers it
    fake.edit(applied.event_id, start=utc(at(25, 15)), end=utc(at(25, 15, 45)))
    fake.reset_counters()
    third = conn.sync(cal, WINDOW, second.state)
    assert [(e.owned_block_id, e.start) for e in third.events] == [("b9", at(25, 15))]
    assert [p for _, p in fake.log if "$expand" in p] == []
    # a user's own event in the category is looked at, and is not ours
    fake.put(
        OWNER,
        "primary",
        {
            "id": "mine",
            "start": utc(at(26, 9)),
            "end": utc(at(26, 10)),
            "categories": ["steadyhand"],
        },
    )
    fourth = conn.sync(cal, WINDOW, third.state)
    assert [(e.id, e.owned_block_id) for e in fourth.events] == [("mine", None)]
    view = merge(merge(merge(merge({}, first), second), third), fourth)
    assert {e.owned_block_id for e in view.values() if e.owned_block_id} == {"b1", "b9"}


# -- writing --------------------------------------------------------------------------------
def test_created_blocks_are_tagged_busy_or_free_in_our_category(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER)
    conn = connector(fake)
    busy, free = block("b1", at(24, 13)), block("b2", at(24, 15), transparency=Transparency.FREE)
    done = conn.apply(ref(), [BlockChange(ChangeKind.CREATE, b, "t") for b in (busy, free)])
    stored = {s.props[TAG_PROPERTY.casefold()]: s for s in fake.live(OWNER)}
    assert stored["b1"].data["showAs"] == "busy" and stored["b2"].data["showAs"] == "free"
    assert stored["b1"].data["categories"] == ["steadyhand"]
    assert stored["b1"].data["transactionId"] == transaction_id(busy)
    assert stored["b1"].data["subject"] == "Coaching" and stored["b1"].data["isReminderOn"] is False
    assert [a.etag for a in done] == [stored["b1"].change_key, stored["b2"].change_key]


@pytest.mark.parametrize("lost", ["drop_after", 503])
def test_a_retried_create_makes_one_event(fake: FakeGraph, lost: int | str) -> None:
    fake.add_mailbox(OWNER)
    sleeps = Sleeps()
    conn = connector(fake, sleep=sleeps)
    fake.fail_next(lost, path="/events", method="POST", after=True, retry_after="2")
    [applied] = conn.apply(ref(), [BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "t")])
    posts = [p for m, p in fake.log if m == "POST"]
    assert len(posts) == 2  # the lost answer, then the retry
    assert [s.id for s in fake.live(OWNER)] == [applied.event_id]
    assert len(sleeps.waits) == 1


def test_a_move_after_the_user_changed_the_event_is_transient_and_writes_nothing(
    fake: FakeGraph,
) -> None:
    fake.add_mailbox(OWNER)
    conn = connector(fake)
    original = block("b9", at(25, 14))
    [created] = conn.apply(ref(), [BlockChange(ChangeKind.CREATE, original, "t")])
    fake.edit(created.event_id, subject="Coaching (mine now)")
    moved = replace(original, start=at(26, 9), end=at(26, 9, 45))
    move = BlockChange(ChangeKind.MOVE, moved, "x", created.event_id, created.etag)
    with pytest.raises(TransientError, match="changed since it was read"):
        conn.apply(ref(), [move])
    assert [m for m, _ in fake.log if m == "PATCH"] == []
    assert fake.events[created.event_id].data["subject"] == "Coaching (mine now)"


def test_a_change_without_an_event_id_finds_the_block_by_its_tag(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER)
    conn = connector(fake)
    original = block("b9", at(25, 14))
    [created] = conn.apply(ref(), [BlockChange(ChangeKind.CREATE, original, "t")])
    [deleted] = conn.apply(ref(), [BlockChange(ChangeKind.DELETE, original, "gone")])
    assert deleted.event_id == created.event_id and fake.live(OWNER) == []


def test_decline_conflicts_declines_only_new_invitations_inside_protected_blocks(
    fake: FakeGraph,
) -> None:
    fake.add_mailbox(OWNER)
    focus = block("f1", at(24, 9), minutes=120)
    invite = {"isOrganizer": False, "responseStatus": {"response": "notResponded"}}
    rows: dict[str, dict[str, Any]] = {
        "new-invite": {**invite, "start": utc(at(24, 10)), "end": utc(at(24, 11))},
        "overlaps-start": {
            **invite,
            "responseStatus": {"response": "none"},
            "start": utc(at(24, 8, 30)),
            "end": utc(at(24, 9, 30)),
        },
        "accepted": {
            **invite,
            "responseStatus": {"response": "accepted"},
            "start": utc(at(24, 9)),
            "end": utc(at(24, 10)),
        },
        "mine": {"isOrganizer": True, "start": utc(at(24, 9)), "end": utc(at(24, 10))},
        "free-fyi": {**invite, "showAs": "free", "start": utc(at(24, 9)), "end": utc(at(24, 10))},
        "outside": {**invite, "start": utc(at(24, 13)), "end": utc(at(24, 14))},
        "cancelled": {
            **invite,
            "isCancelled": True,
            "start": utc(at(24, 9)),
            "end": utc(at(24, 10)),
        },
    }
    for event_id, data in rows.items():
        fake.put(OWNER, "primary", {"id": event_id, **data})
    conn = connector(fake, page_size=2)  # the view comes in pages too
    declined = conn.decline_conflicts(ref(), [focus], "Focus time — please pick another slot")
    assert sorted(declined) == ["new-invite", "overlaps-start"]
    assert sorted(fake.declines) == [
        (OWNER, "new-invite", "Focus time — please pick another slot"),
        (OWNER, "overlaps-start", "Focus time — please pick another slot"),
    ]
    assert conn.decline_conflicts(ref(), [focus], "again") == []  # answered now
    assert conn.decline_conflicts(ref(), [], "nothing protected") == []


# -- many calendars -------------------------------------------------------------------------
def mailboxes(fake: FakeGraph, n: int, events: int = 2) -> list[CalendarRef]:
    refs = []
    for k in range(n):
        owner = f"person{k:03d}@example.com"
        fake.add_mailbox(owner)
        for j in range(events):
            start = at(23 + j % 5, 9 + j % 8)
            fake.put(
                owner,
                "primary",
                {
                    "id": f"{owner}-{j}",
                    "start": utc(start),
                    "end": utc(start + timedelta(minutes=30)),
                },
            )
        refs.append(ref(owner))
    return refs


@pytest.mark.parametrize("n", [1, 19, 20, 21, 45])
def test_incremental_sync_of_n_unchanged_calendars_takes_n_over_20_requests(
    fake: FakeGraph, n: int
) -> None:
    conn = connector(fake)
    refs = mailboxes(fake, n)
    first = conn.sync_many([(r, WINDOW, None) for r in refs])
    assert all(not isinstance(r, Exception) and r.full and len(r.events) == 2 for r in first)
    fake.reset_counters()
    second = conn.sync_many([(r, WINDOW, f.state) for r, f in zip(refs, first, strict=True)])  # type: ignore[union-attr]
    assert all(not isinstance(r, Exception) and r.unchanged for r in second)
    assert fake.graph_requests == math.ceil(n / 20)
    assert fake.batch_items == n and max(fake.batch_sizes) <= 20


def test_batches_match_answers_by_id_and_retry_throttled_items(fake: FakeGraph) -> None:
    sleeps = Sleeps()
    conn = connector(fake, sleep=sleeps)
    refs = mailboxes(fake, 30, events=3)
    fake.item_fault_rate = 0.3  # per-item 429 / 503 with Retry-After: 1
    results = conn.sync_many([(r, WINDOW, None) for r in refs])
    for r, result in zip(refs, results, strict=True):
        assert not isinstance(result, Exception)
        assert sorted(e.id for e in result.events) == [f"{r.owner}-{j}" for j in range(3)]
    assert fake.faults.get("429", 0) + fake.faults.get("503", 0) > 0
    assert sleeps.waits and min(sleeps.waits) >= 1  # Retry-After honoured


def test_sync_many_signs_each_persons_batch_with_their_own_token(
    fake: FakeGraph, store: TokenStore
) -> None:
    people = ["ana@example.com", "bo@example.com"]
    for person in people:
        sign_in(fake, store, person)
        fake.put(
            person,
            "primary",
            {"id": f"{person}-1", "start": utc(at(24, 9)), "end": utc(at(24, 10))},
        )
    conn = connector(fake, "device_code", store)
    results = conn.sync_many([(ref(p), WINDOW, None) for p in people])
    assert [[e.id for e in r.events] for r in results] == [[f"{p}-1"] for p in people]  # type: ignore[union-attr]
    assert fake.batch_sizes == [1, 1]


def test_sync_many_restarts_expired_rounds_in_full(fake: FakeGraph) -> None:
    conn = connector(fake)
    refs = mailboxes(fake, 5)
    first = conn.sync_many([(r, WINDOW, None) for r in refs])
    fake.expire_deltas("resyncRequired")
    fake.remove(f"{refs[0].owner}-0")
    fake.reset_counters()
    second = conn.sync_many([(r, WINDOW, f.state) for r, f in zip(refs, first, strict=True)])  # type: ignore[union-attr]
    assert all(not isinstance(r, Exception) and r.full for r in second)
    assert [len(r.events) for r in second] == [1, 2, 2, 2, 2]  # type: ignore[union-attr]
    assert fake.graph_requests == 2  # one batch answered 410 item by item, one full round


def test_connect_without_a_key_fails_before_the_sign_in(fake: FakeGraph, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="STEADYHAND_SECRET_KEY"):
        sign_in(fake, TokenStore(tmp_path, None), OWNER)
    assert fake.token_requests == 0


def test_a_failing_mailbox_in_a_batch_does_not_fail_the_others(fake: FakeGraph) -> None:
    conn = connector(fake)
    refs = mailboxes(fake, 3)
    results = conn.sync_many([(r, WINDOW, None) for r in [*refs, ref("nobody@example.com")]])
    assert [type(r).__name__ for r in results] == ["SyncResult"] * 3 + ["PermanentError"]
    assert "no Exchange Online mailbox for nobody@example.com" in str(results[-1])


def test_twenty_percent_faults_still_converge_without_duplicate_blocks(
    fake: FakeGraph,
) -> None:
    """Every kind of fault (429, 503, 500, a connection dropped before or after the work)
    on 20 % of requests and of batch items; creates, moves and deletes go through them too.
    What fails is tried again on the next tick, as the worker does."""
    conn = connector(fake, backoff=Backoff(attempts=8), page_size=5)
    refs = mailboxes(fake, 12, events=20)
    fake.fault_rate = 0.2
    view: dict[str, dict[str, Event]] = {r.key: {} for r in refs}
    states: dict[str, Any] = {r.key: None for r in refs}

    def sync_round() -> None:
        todo = list(refs)
        for _ in range(5):
            results = conn.sync_many([(r, WINDOW, states[r.key]) for r in todo])
            retry = []
            for r, result in zip(todo, results, strict=True):
                if isinstance(result, Exception):
                    assert isinstance(result, TransientError), result
                    retry.append(r)
                    continue
                view[r.key] = merge(view[r.key], result)
                states[r.key] = result.state
            todo = retry
            if not todo:
                return
        raise AssertionError(f"not converged: {todo}")

    def owned(r: CalendarRef, block_id: str) -> Event:
        [found] = [e for e in view[r.key].values() if e.owned_block_id == block_id]
        return found

    def apply(r: CalendarRef, make: Callable[[], BlockChange]) -> None:
        for _ in range(5):  # a failed write is carried out again, re-read if it must be
            try:
                conn.apply(r, [make()])
                return
            except TransientError:
                sync_round()
        raise AssertionError("the write did not go through")

    sync_round()
    for k, r in enumerate(refs):
        for n in range(4):
            new = block(f"b{k}-{n}", at(27, 9 + 2 * n))
            apply(r, partial(BlockChange, ChangeKind.CREATE, new, "t"))
    sync_round()
    for k, r in enumerate(refs):
        later = block(f"b{k}-0", at(28, 8))

        def move(r: CalendarRef = r, later: Block = later) -> BlockChange:
            e = owned(r, later.id)  # re-read: the etag of the event as it is now
            return BlockChange(ChangeKind.MOVE, later, "slot taken", e.id, e.etag)

        apply(r, move)
        gone = owned(r, f"b{k}-1")
        delete = BlockChange(ChangeKind.DELETE, block(f"b{k}-1", gone.start), "x", gone.id)
        apply(r, partial(replace, delete))  # the same change each time
        fake.edit(f"{r.owner}-0", start=utc(at(28, 16)), end=utc(at(28, 17)))
        fake.remove(f"{r.owner}-1")
        fake.put(
            r.owner,
            "primary",
            {"id": f"{r.owner}-new", "start": utc(at(29, 9)), "end": utc(at(29, 10))},
        )
    sync_round()
    sync_round()
    for k, r in enumerate(refs):
        truth = {s.id: s for s in fake.live(r.owner)}
        assert set(view[r.key]) == set(truth)
        for event_id, stored in truth.items():
            assert view[r.key][event_id].etag == stored.change_key
        tags = sorted(t for s in truth.values() if (t := s.props.get(TAG_PROPERTY.casefold())))
        assert tags == [f"b{k}-0", f"b{k}-2", f"b{k}-3"]  # one event per block, none twice
        assert (
            sorted(e.owned_block_id or "" for e in view[r.key].values() if e.owned_block_id) == tags
        )
        assert owned(r, f"b{k}-0").start == at(28, 8)
    injected = sum(fake.faults.values())
    assert injected > 50 and {"429", "503", "500", "drop", "drop_after"} <= set(fake.faults)


# -- limits and errors ----------------------------------------------------------------------
@pytest.mark.parametrize(("status", "after"), [(429, "7"), (503, "3")])
def test_throttling_honours_retry_after(fake: FakeGraph, status: int, after: str) -> None:
    sleeps = Sleeps()
    conn = connector(fake, sleep=sleeps)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    fake.fail_next(status, path="calendarView", retry_after=after, times=2)
    result = conn.sync(cal, WINDOW, None)
    assert len(result.events) == len(INSIDE)
    assert sleeps.waits == [float(after), float(after)]


def test_throttling_that_never_ends_is_transient_with_the_hint(fake: FakeGraph) -> None:
    conn = connector(fake, backoff=Backoff(attempts=3))
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    fake.fail_next(429, path="calendarView", retry_after="30", times=3)
    with pytest.raises(TransientError) as raised:
        conn.sync(cal, WINDOW, None)
    assert raised.value.retry_after == 30 and "HTTP 429" in str(raised.value)


def concurrent_syncs(conn: OutlookCalendar, refs: Sequence[CalendarRef]) -> list[Any]:
    results: list[Any] = [None] * len(refs)

    def run(k: int) -> None:
        try:
            results[k] = conn.sync(refs[k], WINDOW, None)
        except Exception as exc:
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(refs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return results


def test_at_most_four_requests_per_mailbox_are_in_flight(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER, *(f"cal{k}" for k in range(10)))
    refs = [ref(OWNER, f"cal{k}") for k in range(10)]
    fake.delay = 0.05
    results = concurrent_syncs(connector(fake), refs)
    assert all(not isinstance(r, Exception) for r in results)
    assert fake.max_inflight[OWNER] == 4 and fake.concurrency_rejections == 0
    # the fake does enforce Exchange's limit: without ours, requests are refused
    fake.reset_counters()
    concurrent_syncs(connector(fake, max_concurrent_per_mailbox=10), refs)
    assert fake.concurrency_rejections > 0
    # and a batch never carries more than four items of one mailbox
    fake.reset_counters()
    fake.concurrency_rejections = 0
    results = connector(fake).sync_many([(r, WINDOW, None) for r in refs])
    assert all(not isinstance(r, Exception) for r in results)
    assert max(fake.batch_sizes) == 4 and fake.max_inflight[OWNER] == 4
    assert fake.concurrency_rejections == 0


def test_missing_permissions_are_permanent_and_say_what_to_grant(fake: FakeGraph) -> None:
    fake.app_roles = {"Mail.Send"}
    conn = connector(fake)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    with pytest.raises(PermanentError) as raised:
        conn.sync(cal, WINDOW, None)
    message = str(raised.value)
    assert "HTTP 403" in message and "Calendars.ReadWrite" in message and "admin consent" in message
    assert "\n" not in message


def test_an_unknown_mailbox_is_permanent_naming_it(fake: FakeGraph) -> None:
    with pytest.raises(PermanentError, match=r"no Exchange Online mailbox for ghost@example\.com"):
        connector(fake).sync(ref("ghost@example.com"), WINDOW, None)


def test_an_unknown_calendar_is_permanent_naming_it(fake: FakeGraph) -> None:
    fake.add_mailbox(OWNER)
    with pytest.raises(PermanentError, match="has no calendar 'team-cal'"):
        connector(fake).sync(ref(OWNER, "team-cal"), WINDOW, None)


def test_a_refused_token_is_refreshed_once_then_permanent(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_mailbox(OWNER)
    monkeypatch.setenv(TOKEN_ENV, "eyJ.not-a-token-graph-knows.sig")
    with pytest.raises(PermanentError) as raised:
        connector(fake, "access_token").sync(ref(), WINDOW, None)
    message = str(raised.value)
    assert "HTTP 401" in message and f"${TOKEN_ENV}" in message and "\n" not in message
    assert "not-a-token" not in message
    assert fake.graph_requests == 2


def test_access_token_auth_uses_the_token_from_the_environment(
    fake: FakeGraph, store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(fake, store, OWNER)
    token = next(t for t in fake.access)  # a token some other tool manages
    monkeypatch.setenv(TOKEN_ENV, token)
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    result = connector(fake, "access_token").sync(ref(), WINDOW, None)
    assert [e.id for e in result.events] == ["x"]
    assert fake.log[0][1].startswith(f"/users/{OWNER}/calendarView/delta")
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(PermanentError, match=f"\\${TOKEN_ENV}, which is not set"):
        connector(fake, "access_token").sync(ref(), WINDOW, None)


def test_mailbox_settings_give_the_zone_and_working_hours(
    fake: FakeGraph, store: TokenStore
) -> None:
    sign_in(fake, store, OWNER)
    fake.add_mailbox("ny@example.com")
    fake.settings["ny@example.com"] = {
        "timeZone": "Eastern Standard Time",
        "workingHours": {
            "daysOfWeek": ["Monday", "Thursday"],
            "startTime": "09:30:00.0000000",
            "endTime": "16:00:00.0000000",
        },
    }
    mine = connector(fake, "device_code", store).mailbox_settings(OWNER)
    assert mine.timezone == "Europe/Berlin"
    assert mine.working_days == ("mon", "tue", "wed", "thu", "fri")
    assert (mine.working_start, mine.working_end) == (time(8), time(17))
    assert fake.log == [("GET", "/me/mailboxSettings")]
    theirs = connector(fake).mailbox_settings("ny@example.com")  # app-only
    assert (theirs.timezone, theirs.working_days) == ("America/New_York", ("mon", "thu"))
    assert theirs.working_start == time(9, 30)


# -- auth -----------------------------------------------------------------------------------
def test_device_code_sign_in_shows_code_and_url_waits_and_stores_encrypted(
    fake: FakeGraph, store: TokenStore
) -> None:
    fake.pending_polls = 2  # the user takes a while
    shown = sign_in(fake, store, OWNER)
    assert len(shown) == 1
    assert "https://microsoft.com/devicelogin" in shown[0] and "enter the code" in shown[0]
    assert fake.token_requests == 1 + 3  # devicecode, then polls until approved
    saved = (store.folder / "outlook_m365_cy@example.com.token").read_bytes()
    assert all(secret.encode() not in saved for secret in fake.issued)
    assert store.load(token_name(spec_for(fake, "device_code"), OWNER)) is not None


def test_later_runs_refresh_silently_and_save_the_cache_back(
    fake: FakeGraph, store: TokenStore
) -> None:
    fake.token_lifetime = 120  # msal treats a token this close to expiry as expired
    sign_in(fake, store, OWNER)
    name = token_name(spec_for(fake, "device_code"), OWNER)
    before = store.load(name)
    fake.token_requests = 0
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    result = connector(fake, "device_code", store).sync(ref(), WINDOW, None)  # a new process
    assert [e.id for e in result.events] == ["x"]
    assert fake.token_requests == 1  # one refresh-token grant, no device code
    assert store.load(name) != before
    fake.token_requests = 0
    fake.token_lifetime = 3600
    conn = connector(fake, "device_code", store)
    conn.sync(ref(), WINDOW, None)
    conn.sync(ref(), WINDOW, None)
    assert fake.token_requests == 1  # the fresh token is used from the cache


def test_a_revoked_access_token_is_refreshed_and_the_sync_goes_on(
    fake: FakeGraph, store: TokenStore
) -> None:
    sign_in(fake, store, OWNER)
    conn = connector(fake, "device_code", store)
    cal = ref()
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    first = conn.sync(cal, WINDOW, None)
    fake.revoke_access_tokens()
    fake.token_requests = 0
    second = conn.sync(cal, WINDOW, first.state)
    assert second.unchanged and fake.token_requests == 1


def test_no_sign_in_yet_is_permanent_saying_how_to_connect(
    fake: FakeGraph, store: TokenStore
) -> None:
    fake.add_user(OWNER)
    with pytest.raises(PermanentError, match=r"steadyhand connect outlook --person cy@example.com"):
        connector(fake, "device_code", store).sync(ref(), WINDOW, None)


def test_connect_is_only_for_device_code(fake: FakeGraph, store: TokenStore) -> None:
    with pytest.raises(UserError, match="device_code"):
        connect(spec_for(fake, "client_credentials"), OWNER, store, show=lambda _: None)


def test_authority_can_be_overridden(fake: FakeGraph, store: TokenStore) -> None:
    fake.authority_host = "login.example.test"
    authority = f"https://login.example.test/{fake.tenant}"
    sign_in(fake, store, OWNER, authority=authority)
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    result = connector(fake, "device_code", store, authority=authority).sync(ref(), WINDOW, None)
    assert [e.id for e in result.events] == ["x"]


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        ("nothing", "ok"),
        ("not-connected", "missing"),
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("consent", "missing_scopes"),
        ("bad-tenant", "error"),
        ("other-app", "missing"),
    ],
)
def test_token_health_for_device_code(
    fake: FakeGraph, store: TokenStore, setup: str, status: str
) -> None:
    if setup != "not-connected":
        sign_in(fake, store, OWNER)
    fields_: dict[str, Any] = {}
    if setup == "expired":
        fake.expire_refresh_tokens(OWNER)
    elif setup == "revoked":
        fake.revoke_refresh_tokens(OWNER)
    elif setup == "consent":
        fake.revoke_consent(OWNER, "Mail.Send")
    elif setup == "bad-tenant":
        fields_["tenant"] = "nope.onmicrosoft.com"
    elif setup == "other-app":  # client_id changed since the sign-in
        fields_["client_id"] = "00000000-0000-0000-0000-000000000000"
    conn = connector(fake, "device_code", store, spec_fields=fields_)
    got, detail = conn.token_health(OWNER)
    assert got == status, detail
    assert detail and "\n" not in detail


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        ("nothing", "ok"),
        ("no-secret", "missing"),
        ("wrong-secret", "revoked"),
        ("roles", "missing_scopes"),
    ],
)
def test_token_health_for_app_only(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, setup: str, status: str
) -> None:
    if setup == "no-secret":
        monkeypatch.delenv(SECRET_ENV)
    elif setup == "wrong-secret":
        monkeypatch.setenv(SECRET_ENV, "an-old-secret")
    elif setup == "roles":
        fake.app_roles = {"Calendars.ReadWrite"}
    got, detail = connector(fake).token_health(OWNER)
    assert got == status, detail
    if status == "missing_scopes":
        assert "Mail.Send" in detail


def test_token_health_for_a_managed_token(
    fake: FakeGraph, store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connector(fake, "access_token")
    assert conn.token_health(OWNER)[0] == "missing"
    sign_in(fake, store, OWNER)
    monkeypatch.setenv(TOKEN_ENV, next(iter(fake.access)))
    assert conn.token_health(OWNER) == ("ok", "token present")
    fake.token_lifetime = -60
    sign_in(fake, store, "old@example.com")
    monkeypatch.setenv(TOKEN_ENV, list(fake.access)[-1])
    assert conn.token_health(OWNER)[0] == "expired"


def test_tokens_never_reach_the_logs(
    fake: FakeGraph, store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.token_lifetime = 120  # refreshes too
    sign_in(fake, store, OWNER)
    conn = connector(fake, "device_code", store)
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    state = conn.sync(ref(), WINDOW, None).state
    fake.revoke_access_tokens()
    conn.sync(ref(), WINDOW, state)
    conn.apply(ref(), [BlockChange(ChangeKind.CREATE, block("b9", at(25, 14)), "t")])
    connector(fake).sync(ref(), WINDOW, None)  # app-only: the client secret
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = OWNER, "bo@example.com", "hi"
    message.set_content("hello")
    OutlookTransport(
        spec_for(fake, "device_code"),
        OWNER,
        token_store=store,
        session=fake.session(),
        msal_http_client=fake.http_client(),
    ).send(message)
    fake.revoke_refresh_tokens(OWNER)
    conn.token_health(OWNER)
    assert "outlook sync" in caplog.text and "Authorization" not in caplog.text
    leaked = [s[:12] for s in iter_secrets(fake) if s in caplog.text]
    assert leaked == []


# -- mail -----------------------------------------------------------------------------------
def message_to(recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Steadyhand <{OWNER}>"
    message["To"] = recipient
    message["Subject"] = "Your week — a reflection"
    message["Message-ID"] = "<reflection.cy.2026-W48@steadyhand.example>"
    message["List-Unsubscribe"] = "<mailto:unsubscribe@steadyhand.example?subject=reflection>"
    message.set_content("What moved forward this week?")
    return message


def test_send_mail_keeps_our_headers_and_returns_the_message_id(
    fake: FakeGraph, store: TokenStore
) -> None:
    sign_in(fake, store, OWNER)
    transport = OutlookTransport(
        spec_for(fake, "device_code"),
        f"Steadyhand <{OWNER}>",
        token_store=store,
        session=fake.session(),
        msal_http_client=fake.http_client(),
    )
    assert transport.name == "outlook"
    sent_id = transport.send(message_to("bo@example.com"))
    assert sent_id == "<reflection.cy.2026-W48@steadyhand.example>"
    assert fake.log == [("POST", "/me/sendMail")]
    [(mailbox, mime)] = fake.sent
    assert mailbox == OWNER
    assert b"Message-ID: <reflection.cy.2026-W48@steadyhand.example>" in mime
    assert b"List-Unsubscribe: <mailto:unsubscribe@steadyhand.example?subject=reflection>" in mime


def test_app_only_sends_as_the_sender_mailbox_and_makes_a_message_id(fake: FakeGraph) -> None:
    fake.add_mailbox("steadyhand@example.com")
    transport = OutlookTransport(
        spec_for(fake, "client_credentials"),
        "steadyhand@example.com",
        session=fake.session(),
        msal_http_client=fake.http_client(),
    )
    message = message_to("bo@example.com")
    del message["Message-ID"]
    sent_id = transport.send(message)
    assert sent_id.endswith("@example.com>") and message["Message-ID"] == sent_id
    assert fake.log == [("POST", "/users/steadyhand@example.com/sendMail")]


def test_a_send_whose_answer_was_lost_is_not_repeated(fake: FakeGraph) -> None:
    fake.add_mailbox("steadyhand@example.com")
    transport = OutlookTransport(
        spec_for(fake, "client_credentials"),
        "steadyhand@example.com",
        session=fake.session(),
        msal_http_client=fake.http_client(),
        sleep=Sleeps(),
    )
    fake.fail_next("drop_after", path="sendMail")
    with pytest.raises(TransientError, match="connection to Graph failed"):
        transport.send(message_to("bo@example.com"))
    assert len(fake.sent) == 1  # it did go out; the outbox decides what to do
    fake.fail_next(429, path="sendMail", retry_after="1")
    transport.send(message_to("bo@example.com"))  # refused before any work: retried
    assert len(fake.sent) == 2


def test_the_connector_is_registered_and_speaks_the_protocol(
    fake: FakeGraph, store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors import registry

    sign_in(fake, store, OWNER)
    monkeypatch.setenv(TOKEN_ENV, next(iter(fake.access)))
    fake.put(OWNER, "primary", {"id": "x", "start": utc(at(24, 9)), "end": utc(at(24, 10))})
    spec = spec_for(fake, "access_token")
    # As the runtime builds them: the registry's class, the account's spec, the token store
    # (and the loopback session, which trusts no proxy settings).
    conn = registry.load("outlook")(spec, token_store=store, session=fake.session())
    transport = registry.load_transport("outlook")(
        spec, f"Steadyhand <{OWNER}>", token_store=store, session=fake.session()
    )
    assert registry.load("outlook") is OutlookCalendar
    assert registry.load_transport("outlook") is OutlookTransport
    assert isinstance(conn, CalendarConnector) and isinstance(transport, MailTransport)
    assert conn.kind == "outlook" and conn.read_only is False
    assert [e.id for e in conn.sync(ref(), WINDOW, None).events] == ["x"]
    assert (
        transport.send(message_to("bo@example.com"))
        == "<reflection.cy.2026-W48@steadyhand.example>"
    )
    assert len(fake.sent) == 1


def test_window_change_is_a_full_sync(fake: FakeGraph) -> None:
    conn = connector(fake)
    cal = OutlookBackend(fake, conn).calendar(INSIDE)
    first = conn.sync(cal, WINDOW, None)
    later = TimeRange(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    second = conn.sync(cal, later, first.state)
    assert second.full and second.state.window == later
