"""The Google connector: the real google-api-python-client against tests/fakes/google.py.

Runs the common calendar contract (:class:`TestGoogle`), then the scenarios of issue 6:
sync tokens and pages, 410, writes with client-chosen ids, If-Match and focus time,
errors and backoff, batch sync, 20 % injected faults, Gmail, OAuth and token health,
and the figures the fake counts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import threading
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import AccountSpec
from connectors.retry import Backoff
from connectors.secrets import TokenStore
from tests.fakes.google import GoogleFake, client_secrets
from tests.test_connector_contract import (
    INSIDE,
    OWNER,
    TZ,
    WINDOW,
    Backend,
    CalendarContract,
    at,
    block,
    merge,
)
from worker.core.errors import ConfigError, NotOwned, PermanentError, TransientError, UserError
from worker.core.model import (
    Block,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    EventType,
    Response,
    Status,
    SyncResult,
    SyncState,
    TimeRange,
    Transparency,
)

try:
    import httplib2
except ModuleNotFoundError:  # the google extra is missing
    if os.environ.get("STEADYHAND_CI"):
        raise  # CI installs it (Makefile: '.[test,redis,postgres,google]'): a miss is a bug
    pytest.skip(
        "the google extra is not installed: .venv/bin/pip install -e '.[google,test]'",
        allow_module_level=True,
    )

from connectors.google import (  # needs the google extra, like httplib2 above
    SCOPE_CALENDAR,
    SCOPE_GMAIL_SEND,
    SCOPES,
    GmailTransport,
    GoogleCalendar,
    connect,
    event_id_for,
    token_name,
)

ACCOUNT = "google-main"
GOOGLE_TYPES = {
    EventType.FOCUS: "focusTime",
    EventType.OUT_OF_OFFICE: "outOfOffice",
    EventType.WORKING_LOCATION: "workingLocation",
}
GOOGLE_RESPONSES = {
    Response.ACCEPTED: "accepted",
    Response.TENTATIVE: "tentative",
    Response.DECLINED: "declined",
    Response.NEEDS_ACTION: "needsAction",
    Response.ORGANIZER: "accepted",
}


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def google_server() -> Iterator[GoogleFake]:
    server = GoogleFake(seed=6)
    yield server
    server.close()


@pytest.fixture
def fake(google_server: GoogleFake) -> GoogleFake:
    google_server.reset()
    google_server.rng.seed(6)
    return google_server


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens", Fernet.generate_key())


class Sleeps(list[float]):
    """An injected ``sleep`` that only records: tests never wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


OPENED: list[Any] = []


def new_http() -> Any:
    http = httplib2.Http(timeout=10, proxy_info=None)
    OPENED.append(http)
    return http


@pytest.fixture(autouse=True)
def close_connections() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def spec_for(fake: GoogleFake, **fields: Any) -> AccountSpec:
    fields.setdefault("auth", "oauth")
    return AccountSpec(name=ACCOUNT, kind="google", api_endpoint=fake.url, **fields)


def connect_person(
    fake: GoogleFake,
    store: TokenStore,
    email: str,
    *,
    scopes: Sequence[str] = SCOPES,
    expired: bool = False,
) -> dict[str, Any]:
    """What ``steadyhand connect google`` leaves in the store, without the browser."""
    secrets = client_secrets(fake)["installed"]
    expiry = datetime.now(UTC) + (timedelta(hours=-1) if expired else timedelta(minutes=50))
    info = {
        "token": fake.issue_token(email, set(scopes)),
        "refresh_token": fake.issue_refresh_token(email, set(scopes)),
        "token_uri": secrets["token_uri"],
        "client_id": secrets["client_id"],
        "client_secret": secrets["client_secret"],
        "scopes": list(SCOPES),
        "expiry": expiry.replace(tzinfo=None).isoformat() + "Z",
        "steadyhand": {"email": email, "granted_scopes": sorted(scopes)},
    }
    store.save(token_name(spec_for(fake), email), json.dumps(info).encode())
    return info


def calendar(
    fake: GoogleFake,
    store: TokenStore | None,
    sleeps: Sleeps | None = None,
    backoff: Backoff | None = None,
    **fields: Any,
) -> GoogleCalendar:
    return GoogleCalendar(
        spec_for(fake, **fields),
        token_store=store,
        http=new_http,
        sleep=sleeps if sleeps is not None else Sleeps(),
        backoff=backoff or Backoff(),
    )


def gref(location: str = OWNER, owner: str = OWNER, timezone: str = "Europe/Berlin") -> CalendarRef:
    return CalendarRef(
        key=f"{owner}:{ACCOUNT}:{location}",
        owner=owner,
        kind="google",
        location=location,
        timezone=timezone,
        account=ACCOUNT,
    )


def to_google(e: Event, owner: str = OWNER) -> dict[str, Any]:
    """``e`` as Google stores it on ``owner``'s calendar."""
    resource: dict[str, Any] = {"id": e.id, "status": e.status.value}
    if e.all_day:
        resource["start"] = {"date": e.start.astimezone(TZ).date().isoformat()}
        resource["end"] = {"date": e.end.astimezone(TZ).date().isoformat()}
    else:
        resource["start"] = {"dateTime": e.start.isoformat(), "timeZone": "Europe/Berlin"}
        resource["end"] = {"dateTime": e.end.isoformat(), "timeZone": "Europe/Berlin"}
    if e.transparency is Transparency.FREE:
        resource["transparency"] = "transparent"
    if e.event_type is not EventType.DEFAULT:
        resource["eventType"] = GOOGLE_TYPES[e.event_type]
    if e.organizer:
        resource["organizer"] = {"email": e.organizer, "self": e.organizer == owner}
    if e.attendees:
        resource["attendees"] = [
            {
                "email": a,
                "responseStatus": GOOGLE_RESPONSES[e.response] if a == owner else "accepted",
                **({"self": True} if a == owner else {}),
            }
            for a in e.attendees
        ]
    if e.owned_block_id:
        resource["extendedProperties"] = {"private": {"steadyhand": e.owned_block_id}}
    if e.series_id:
        resource["recurringEventId"] = e.series_id
    if e.title:
        resource["summary"] = e.title
    return resource


def block_id(n: int, salt: str = "") -> str:
    """A block id as worker.core.planning makes them: 26 characters of base32hex."""
    digest = hashlib.sha256(f"{salt}{n}".encode()).digest()[:16]
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def create(b: Block) -> BlockChange:
    return BlockChange(ChangeKind.CREATE, b, "test")


# -- the contract ----------------------------------------------------------------------
class GoogleBackend:
    def __init__(self, fake: GoogleFake, store: TokenStore) -> None:
        self.fake = fake
        connect_person(fake, store, OWNER)
        self.connector = calendar(fake, store)

    def calendar(self, events: Sequence[Event]) -> CalendarRef:
        self.fake.calendar(OWNER, "Europe/Berlin")
        for e in events:
            self.fake.put_event(OWNER, to_google(e))
        return gref()

    def change(self, cal: CalendarRef, events: Sequence[Event]) -> None:
        self.fake.replace_events(cal.location, [to_google(e) for e in events])


class TestGoogle(CalendarContract):
    @pytest.fixture
    def backend(self, fake: GoogleFake, store: TokenStore) -> Iterator[Backend]:
        yield GoogleBackend(fake, store)


@pytest.fixture
def backend(fake: GoogleFake, store: TokenStore) -> GoogleBackend:
    return GoogleBackend(fake, store)


# -- sync ------------------------------------------------------------------------------
def test_full_sync_asks_for_single_events_with_deleted_ones_in_pages_of_2500(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(INSIDE)
    result = backend.connector.sync(cal, WINDOW, None)
    [call] = fake.calls
    assert call.path == "/calendar/v3/calendars/cy%40example.com/events"
    assert call.param("singleEvents") == "true" and call.param("showDeleted") == "true"
    assert call.param("maxResults") == "2500"
    assert call.param("timeMin") == "2026-11-22T23:00:00Z"
    assert call.param("timeMax") == "2026-11-29T23:00:00Z"
    assert result.full and result.state.token and result.state.window == WINDOW


def test_incremental_sync_sends_the_sync_token_and_nothing_google_forbids_beside_it(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(INSIDE)
    first = backend.connector.sync(cal, WINDOW, None)
    second = backend.connector.sync(cal, WINDOW, first.state)
    call = fake.calls[-1]
    assert call.param("syncToken") == first.state.token
    forbidden = {"timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID"}
    assert not forbidden & call.query.keys()
    assert not any(k.endswith("ExtendedProperty") for k in call.query)
    assert second.unchanged and not second.full and second.state.token


def test_short_pages_are_followed_until_the_sync_token(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    fake.page_cap = 3  # Google may return fewer items than maxResults
    cal = backend.calendar(INSIDE)
    result = backend.connector.sync(cal, WINDOW, None)
    assert sorted(e.id for e in result.events) == sorted(e.id for e in INSIDE)
    pages = fake.calls_to("/events", "GET")
    assert len(pages) == math.ceil(len(INSIDE) / 3) == 3
    assert [p.param("pageToken") is not None for p in pages] == [False, True, True]
    assert all(p.param("timeMin") for p in pages)  # the same query on every page


def test_expired_sync_token_makes_a_full_sync_that_replaces_the_calendar(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(INSIDE)
    first = backend.connector.sync(cal, WINDOW, None)
    fake.invalidate_sync_tokens(OWNER)
    fake.delete_event(OWNER, "standup")
    again = backend.connector.sync(cal, WINDOW, first.state)
    assert again.full and again.state.token != first.state.token
    assert "standup" not in {e.id for e in again.events}
    statuses = [c.status for c in fake.calls_to("/events", "GET")]
    assert statuses == [200, 410, 200]
    assert fake.calls[-1].param("syncToken") is None and fake.calls[-1].param("timeMin")


def test_cancelled_instance_of_a_series_is_removed(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    series = [
        Event(f"weekly_2026112{d}T080000Z", "", at(20 + d, 9), at(20 + d, 10), series_id="weekly")
        for d in (3, 4, 5)
    ]
    cal = backend.calendar(series)
    first = backend.connector.sync(cal, WINDOW, None)
    assert {e.series_id for e in first.events} == {"weekly"}
    # Google: a cancelled exception carries only its id, recurringEventId and start
    fake.put_event(
        OWNER,
        {
            "id": series[1].id,
            "status": "cancelled",
            "recurringEventId": "weekly",
            "originalStartTime": {"dateTime": series[1].start.isoformat()},
        },
    )
    second = backend.connector.sync(cal, WINDOW, first.state)
    assert second.removed == (series[1].id,) and second.events == ()
    assert sorted(merge(merge({}, first), second)) == [series[0].id, series[2].id]


def test_event_moved_out_of_the_window_is_removed(backend: GoogleBackend, fake: GoogleFake) -> None:
    cal = backend.calendar(INSIDE)
    first = backend.connector.sync(cal, WINDOW, None)
    moved = replace(INSIDE[0], start=at(10, 9, month=12), end=at(10, 10, month=12))
    fake.put_event(OWNER, to_google(moved))
    second = backend.connector.sync(cal, WINDOW, first.state)
    assert second.removed == ("standup",) and second.events == ()


def test_google_fields_are_mapped(backend: GoogleBackend, fake: GoogleFake) -> None:
    fake.calendar(OWNER, "Europe/Berlin")
    base = {
        "start": {"dateTime": "2026-11-24T10:00:00+01:00"},
        "end": {"dateTime": "2026-11-24T11:00:00+01:00"},
    }
    fake.put_event(
        OWNER,
        {
            "id": "wloc1",
            "eventType": "workingLocation",
            "start": {"date": "2026-11-24"},
            "end": {"date": "2026-11-25"},
            "transparency": "transparent",
        },
    )
    fake.put_event(
        OWNER,
        {
            "id": "invite",
            **base,
            "organizer": {"email": "Boss@Example.com"},
            "attendees": [
                {"email": "Boss@Example.com", "responseStatus": "accepted", "organizer": True},
                {"email": "CY@example.com", "responseStatus": "tentative"},
                {
                    "email": "room-1@resource.calendar.google.com",
                    "resource": True,
                    "responseStatus": "accepted",
                },
            ],
        },
    )
    fake.put_event(
        OWNER,
        {
            "id": "unanswered",
            **base,
            "organizer": {"email": "x@example.com"},
            "attendees": [
                {"email": "alias@example.com", "self": True, "responseStatus": "needsAction"}
            ],
        },
    )
    fake.put_event(
        OWNER,
        {
            "id": "mine",
            **base,
            "organizer": {"email": OWNER, "self": True},
            "attendees": [
                {"email": OWNER, "responseStatus": "declined"},
                {"email": "ana@example.com"},
            ],
        },
    )
    result = backend.connector.sync(gref(), WINDOW, None)
    got = {e.id: e for e in result.events}
    wloc = got["wloc1"]
    assert wloc.event_type is EventType.WORKING_LOCATION and wloc.all_day
    assert (wloc.start, wloc.end) == (at(24, 0), at(25, 0))
    assert wloc.transparency is Transparency.FREE
    invite = got["invite"]
    assert invite.response is Response.TENTATIVE and invite.organizer == "boss@example.com"
    assert invite.attendees == ("boss@example.com", "cy@example.com")  # no room
    assert invite.etag == fake.events(OWNER)[1]["etag"]
    assert got["unanswered"].response is Response.NEEDS_ACTION  # self=true under an alias
    assert got["mine"].response is Response.ORGANIZER


def test_all_day_events_are_midnights_in_the_calendar_time_zone(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    fake.calendar(OWNER, "America/New_York")
    fake.put_event(
        OWNER, {"id": "dstday", "start": {"date": "2026-11-01"}, "end": {"date": "2026-11-02"}}
    )
    window = TimeRange(datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    [e] = backend.connector.sync(gref(timezone="America/New_York"), window, None).events
    assert e.all_day and e.start.isoformat() == "2026-11-01T00:00:00-04:00"
    assert e.end.isoformat() == "2026-11-02T00:00:00-05:00"  # a 25-hour day
    assert e.range.duration == timedelta(hours=25)


# -- writes ----------------------------------------------------------------------------
def test_created_block_uses_its_block_id_as_event_id_and_carries_the_tag(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(())
    b = block(block_id(1), at(25, 14))
    [applied] = backend.connector.apply(cal, [create(b)])
    assert applied.event_id == b.id and len(b.id) == 26
    [stored] = fake.events(OWNER)
    assert stored["id"] == b.id and stored["etag"] == applied.etag
    assert stored["extendedProperties"] == {"private": {"steadyhand": b.id}}
    assert stored["summary"] == "Coaching" and stored["transparency"] == "opaque"
    assert "eventType" not in stored
    assert event_id_for("b9") == "sh" + base64.b32hexencode(b"b9").decode().rstrip("=").lower()


def test_retried_create_whose_answer_was_lost_is_a_no_op(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(())
    b = block(block_id(2), at(25, 14))
    fake.fail_next(503, "backendError", path="/events", after=True)  # done, answer lost
    [applied] = backend.connector.apply(cal, [create(b)])
    assert [e["id"] for e in fake.events(OWNER)] == [b.id]
    assert [(c.method, c.status) for c in fake.calls] == [
        ("POST", 503),
        ("POST", 409),  # duplicate: it is there
        ("GET", 200),  # ours and as wanted: done
    ]
    assert applied.etag == fake.events(OWNER)[0]["etag"]
    # and the whole create again, as a retried task would do it: still one event
    backend.connector.apply(cal, [create(b)])
    assert len(fake.events(OWNER)) == 1


def test_creating_a_block_the_user_deleted_restores_it(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(())
    b = block(block_id(3), at(25, 14))
    backend.connector.apply(cal, [create(b)])
    fake.delete_event(OWNER, b.id)
    later = replace(b, start=at(26, 9), end=at(26, 9, 45))
    [applied] = backend.connector.apply(cal, [create(later)])
    [stored] = fake.events(OWNER)
    assert (
        stored["status"] == "confirmed" and stored["start"]["dateTime"] == later.start.isoformat()
    )
    assert applied.etag == stored["etag"]


def test_move_with_a_stale_etag_raises_transient_and_changes_nothing(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(())
    b = block(block_id(4), at(25, 14))
    [created] = backend.connector.apply(cal, [create(b)])
    touched = fake.put_event(OWNER, {**fake.events(OWNER)[0], "summary": "Coaching (mine now)"})
    move = BlockChange(
        ChangeKind.MOVE,
        replace(b, start=at(26, 9), end=at(26, 10)),
        "x",
        created.event_id,
        created.etag,
    )
    with pytest.raises(TransientError, match="changed since it was read"):
        backend.connector.apply(cal, [move])
    patch = fake.calls_to(f"/events/{b.id}", "PATCH")[-1]
    assert patch.headers["if-match"] == created.etag and patch.status == 412
    assert fake.events(OWNER) == [touched]


def test_move_sends_if_match_and_keeps_the_event(backend: GoogleBackend, fake: GoogleFake) -> None:
    cal = backend.calendar(())
    b = block(block_id(5), at(25, 14))
    [created] = backend.connector.apply(cal, [create(b)])
    later = replace(b, start=at(26, 9), end=at(26, 10), transparency=Transparency.FREE)
    [moved] = backend.connector.apply(
        cal, [BlockChange(ChangeKind.MOVE, later, "x", created.event_id, created.etag)]
    )
    [stored] = fake.events(OWNER)
    assert moved.etag == stored["etag"] != created.etag
    assert (
        stored["transparency"] == "transparent"
        and stored["start"]["dateTime"] == later.start.isoformat()
    )
    assert fake.calls_to(b.id, "PATCH")[0].headers["if-match"] == created.etag


def test_delete_whose_answer_was_lost_meets_410_and_counts_as_done(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    cal = backend.calendar(())
    b = block(block_id(6), at(25, 14))
    [created] = backend.connector.apply(cal, [create(b)])
    fake.fail_next(500, "backendError", path=f"/events/{b.id}", method="GET")
    fake.fail_next(503, "backendError", path=f"/events/{b.id}", method="DELETE", after=True)
    delete = BlockChange(ChangeKind.DELETE, b, "x", created.event_id, created.etag)
    [done] = backend.connector.apply(cal, [delete])
    assert done.event_id == b.id and fake.events(OWNER) == []
    deletes = fake.calls_to(b.id, "DELETE")
    assert [d.status for d in deletes] == [503, 410]
    assert all(d.headers["if-match"] == created.etag for d in deletes)


def test_create_over_someone_elses_event_with_that_id_raises_not_owned(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    b = block(block_id(7), at(25, 14))
    user = Event(b.id, "", at(25, 14), at(25, 15), title="Mine")
    cal = backend.calendar([user])
    with pytest.raises(NotOwned):
        backend.connector.apply(cal, [create(b)])
    assert fake.events(OWNER)[0]["summary"] == "Mine"
    assert not [c for c in fake.calls if c.method in ("PATCH", "PUT", "DELETE")]


def focus_block(n: int) -> Block:
    return Block(block_id(n, "focus"), OWNER, "focus", at(25, 9), at(25, 11), "Focus")


def test_focus_block_on_the_primary_calendar_is_focus_time_that_declines(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    backend.connector.apply(gref("primary"), [create(focus_block(1))])
    [stored] = fake.events(OWNER)
    assert stored["eventType"] == "focusTime"
    assert stored["focusTimeProperties"] == {
        "autoDeclineMode": "declineOnlyNewConflictingInvitations",
        "chatStatus": "doNotDisturb",
    }
    assert stored["extendedProperties"]["private"]["steadyhand"] == focus_block(1).id
    coaching = block(block_id(8), at(26, 14))
    backend.connector.apply(gref("primary"), [create(coaching)])
    assert "eventType" not in fake.events(OWNER)[1]


def test_account_without_focus_time_gets_tagged_default_events_and_is_remembered(
    backend: GoogleBackend, fake: GoogleFake
) -> None:
    fake.focus_time_allowed = False
    cal = gref("primary")
    backend.connector.apply(cal, [create(focus_block(1))])
    backend.connector.apply(cal, [create(replace(focus_block(2), start=at(26, 9), end=at(26, 11)))])
    inserts = fake.calls_to("/events", "POST")
    assert [(json.loads(c.body).get("eventType"), c.status) for c in inserts] == [
        ("focusTime", 400),
        (None, 200),
        (None, 200),  # remembered: no second focusTime attempt
    ]
    assert backend.connector.focus_time_refused == {OWNER}
    assert all(e["extendedProperties"]["private"]["steadyhand"] for e in fake.events(OWNER))


# -- errors ----------------------------------------------------------------------------
def test_429_is_retried_after_the_retry_after_it_names(fake: GoogleFake, store: TokenStore) -> None:
    connect_person(fake, store, OWNER)
    fake.calendar(OWNER)
    sleeps = Sleeps()
    conn = calendar(fake, store, sleeps)
    fake.fail_next(429, "rateLimitExceeded", **{"Retry-After": "7"})
    fake.fail_next(403, "userRateLimitExceeded")
    conn.sync(gref(), WINDOW, None)
    assert [c.status for c in fake.calls] == [429, 403, 200]
    assert sleeps[0] == 7 and len(sleeps) == 2 and sleeps[1] <= Backoff().base * 2


def test_endless_5xx_gives_up_with_a_transient_error_carrying_retry_after(
    fake: GoogleFake, store: TokenStore
) -> None:
    connect_person(fake, store, OWNER)
    fake.calendar(OWNER)
    sleeps = Sleeps()
    for _ in range(5):
        fake.fail_next(503, "backendError", **{"Retry-After": "2"})
    with pytest.raises(TransientError) as raised:
        calendar(fake, store, sleeps).sync(gref(), WINDOW, None)
    assert raised.value.retry_after == 2 and len(fake.calls) == 5 and len(sleeps) == 4


def test_quota_exceeded_is_permanent_at_once_in_one_line(
    fake: GoogleFake, store: TokenStore
) -> None:
    connect_person(fake, store, OWNER)
    fake.calendar(OWNER)
    fake.fail_next(403, "quotaExceeded")
    with pytest.raises(PermanentError) as raised:
        calendar(fake, store).sync(gref(), WINDOW, None)
    assert len(fake.calls) == 1 and "\n" not in str(raised.value)
    assert "quota" in str(raised.value)


def test_401_after_a_refresh_is_permanent_and_says_to_connect_again(
    fake: GoogleFake, store: TokenStore
) -> None:
    connect_person(fake, store, OWNER)
    fake.calendar(OWNER)
    fake.reject_all_tokens = True
    with pytest.raises(PermanentError) as raised:
        calendar(fake, store).sync(gref(), WINDOW, None)
    assert [c.status for c in fake.calls] == [401, 401]
    assert [t["grant_type"] for t in fake.token_requests] == ["refresh_token"]
    assert "steadyhand connect google --person cy@example.com" in str(raised.value)


def test_revoked_access_is_permanent(fake: GoogleFake, store: TokenStore) -> None:
    connect_person(fake, store, OWNER, expired=True)
    fake.revoke(OWNER)
    with pytest.raises(PermanentError, match="connect again"):
        calendar(fake, store).sync(gref(), WINDOW, None)
    assert fake.calls == []


def test_unknown_calendar_is_permanent_naming_it(fake: GoogleFake, store: TokenStore) -> None:
    connect_person(fake, store, OWNER)
    with pytest.raises(PermanentError) as raised:
        calendar(fake, store).sync(gref("nope@group.calendar.google.com"), WINDOW, None)
    message = str(raised.value)
    assert "nope@group.calendar.google.com" in message and "\n" not in message


def test_person_never_connected_is_permanent_saying_how(
    fake: GoogleFake, store: TokenStore
) -> None:
    with pytest.raises(PermanentError, match=r"steadyhand connect google --person cy@example\.com"):
        calendar(fake, store).sync(gref(), WINDOW, None)


# -- credentials -----------------------------------------------------------------------
def test_expired_token_is_refreshed_and_saved_back_encrypted(
    fake: GoogleFake, store: TokenStore
) -> None:
    old = connect_person(fake, store, OWNER, expired=True)
    fake.calendar(OWNER)
    calendar(fake, store).sync(gref(), WINDOW, None)
    saved = json.loads(store.load(token_name(spec_for(fake), OWNER)) or b"")
    assert saved["token"] != old["token"] and saved["token"] in fake.access_tokens
    assert saved["refresh_token"] == old["refresh_token"]
    assert saved["steadyhand"]["email"] == OWNER
    raw = b"".join(p.read_bytes() for p in store.folder.iterdir())
    assert saved["token"].encode() not in raw and old["refresh_token"].encode() not in raw


def service_account_key(fake: GoogleFake, folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = folder / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "steadyhand-tests",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "steadyhand@steadyhand-tests.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": f"{fake.url}token",
            }
        )
    )
    return path


def test_service_account_impersonates_each_person(fake: GoogleFake, tmp_path: Path) -> None:
    fake.delegated_scopes = {SCOPE_CALENDAR}
    conn = calendar(
        fake, None, auth="service_account", key_file=service_account_key(fake, tmp_path)
    )
    for person in ("ana@example.com", "bo@example.com"):
        fake.put_event(
            person,
            {
                "id": f"x{person[:2]}xxx",
                "start": {"dateTime": "2026-11-24T10:00:00Z"},
                "end": {"dateTime": "2026-11-24T11:00:00Z"},
            },
        )
        [e] = conn.sync(gref("primary", owner=person), WINDOW, None).events
        assert e.id == f"x{person[:2]}xxx"
    assert [t["grant_type"] for t in fake.token_requests] == [
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ] * 2
    assert conn.token_health("ana@example.com") == (
        "ok",
        "impersonating ana@example.com as steadyhand@steadyhand-tests.iam.gserviceaccount.com",
    )
    fake.delegated_scopes = set()
    status, detail = conn.token_health("ana@example.com")
    assert status == "missing_scopes" and "Admin console" in detail


def test_access_token_comes_from_the_named_variable(
    fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.calendar(OWNER)
    conn = calendar(fake, None, auth="access_token", token_env="GOOGLE_ACCESS_TOKEN")
    with pytest.raises(PermanentError, match="GOOGLE_ACCESS_TOKEN"):
        conn.sync(gref(), WINDOW, None)
    assert conn.token_health(OWNER)[0] == "missing"
    monkeypatch.setenv(
        "GOOGLE_ACCESS_TOKEN", fake.issue_token(OWNER, {SCOPE_CALENDAR}, expires_in=None)
    )
    assert conn.sync(gref(), WINDOW, None).full
    assert conn.token_health(OWNER)[0] == "ok"
    fake.revoke(OWNER)
    assert (
        calendar(fake, None, auth="access_token", token_env="GOOGLE_ACCESS_TOKEN").token_health(
            OWNER
        )[0]
        == "expired"
    )


def test_token_health_of_oauth_tokens(fake: GoogleFake, store: TokenStore) -> None:
    conn = calendar(fake, store)
    assert conn.token_health(OWNER)[0] == "missing"
    connect_person(fake, store, OWNER)
    assert conn.token_health(OWNER)[0] == "ok"
    assert conn.token_health(OWNER, scopes=SCOPES)[0] == "ok"
    connect_person(fake, store, OWNER, scopes=[SCOPE_CALENDAR])
    status, detail = conn.token_health(OWNER, scopes=SCOPES)
    assert status == "missing_scopes" and SCOPE_GMAIL_SEND in detail
    fake.revoke(OWNER)
    status, detail = conn.token_health(OWNER)
    assert status == "revoked" and "steadyhand connect google --person cy@example.com" in detail


# -- batch -----------------------------------------------------------------------------
def many_calendars(fake: GoogleFake, store: TokenStore, n: int) -> list[CalendarRef]:
    refs = []
    for i in range(n):
        person = f"p{i:03d}@example.com"
        connect_person(fake, store, person)
        fake.calendar(person)
        fake.put_event(
            person,
            {
                "id": f"ev{i:03d}aa",
                "start": {"dateTime": "2026-11-24T10:00:00Z"},
                "end": {"dateTime": "2026-11-24T11:00:00Z"},
            },
        )
        refs.append(gref(person, owner=person))
    return refs


def test_incremental_sync_of_n_unchanged_calendars_takes_n_over_50_requests(
    fake: GoogleFake, store: TokenStore
) -> None:
    n = 120
    refs = many_calendars(fake, store, n)
    conn = calendar(fake, store)
    fake.http_requests = 0
    first = conn.sync_many([(r, WINDOW, None) for r in refs])
    full_requests = fake.http_requests
    assert all(isinstance(r, SyncResult) and r.full and len(r.events) == 1 for r in first)
    fake.http_requests = 0
    states = [r.state for r in first if isinstance(r, SyncResult)]
    second = conn.sync_many([(r, WINDOW, s) for r, s in zip(refs, states, strict=True)])
    assert all(isinstance(r, SyncResult) and r.unchanged for r in second)
    print(
        f"\nfigure: incremental sync of {n} unchanged calendars: {fake.http_requests} HTTP requests (full: {full_requests})"
    )
    assert fake.http_requests == math.ceil(n / 50) == 3
    assert full_requests == 3
    assert max(len(c.query) for c in fake.calls) and all(c.in_batch for c in fake.calls)


def test_full_sync_of_e_events_takes_e_over_2500_pages_per_calendar(
    fake: GoogleFake, store: TokenStore
) -> None:
    e = 5_001
    refs = many_calendars(fake, store, 2)
    for r in refs:
        for i in range(e - 1):
            minute = i % 1000
            fake.put_event(
                r.location,
                {
                    "id": f"big{i:05d}",
                    "start": {
                        "dateTime": f"2026-11-24T{10 + minute // 60 % 10:02d}:{minute % 60:02d}:00Z"
                    },
                    "end": {"dateTime": "2026-11-24T23:00:00Z"},
                },
            )
    conn = calendar(fake, store)
    fake.http_requests, fake.calls = 0, []
    single = conn.sync(refs[0], WINDOW, None)
    assert len(single.events) == e and fake.http_requests == math.ceil(e / 2500) == 3
    fake.http_requests, fake.calls = 0, []
    results = conn.sync_many([(r, WINDOW, None) for r in refs])
    pages = {
        r.location: len(fake.calls_to(f"/calendars/{r.location.replace('@', '%40')}/events"))
        for r in refs
    }
    print(
        f"\nfigure: full sync of {e} events: {pages} pages per calendar, {fake.http_requests} HTTP requests for both"
    )
    assert all(isinstance(r, SyncResult) and len(r.events) == e for r in results)
    assert set(pages.values()) == {math.ceil(e / 2500)}
    assert fake.http_requests == 3  # both calendars' pages ride in the same batches


def test_batch_sync_returns_each_calendars_error_in_its_place(
    fake: GoogleFake, store: TokenStore
) -> None:
    refs = many_calendars(fake, store, 3)
    conn = calendar(fake, store)
    first = conn.sync_many([(r, WINDOW, None) for r in refs])
    states = [r.state for r in first if isinstance(r, SyncResult)]
    fake.invalidate_sync_tokens(refs[0].location)
    items: list[tuple[CalendarRef, TimeRange, SyncState | None]] = [
        (refs[0], WINDOW, states[0]),
        (gref("gone@group.calendar.google.com", owner=refs[1].owner), WINDOW, None),
        (refs[2], WINDOW, states[2]),
        (gref(owner="never@example.com"), WINDOW, None),
    ]
    results = conn.sync_many(items)
    assert isinstance(results[0], SyncResult) and results[0].full and len(results[0].events) == 1
    assert isinstance(results[1], PermanentError) and "gone@group" in str(results[1])
    assert isinstance(results[2], SyncResult) and results[2].unchanged
    assert isinstance(results[3], PermanentError) and "connect google" in str(results[3])


# -- 20 % faults -----------------------------------------------------------------------
def plan(view: dict[str, Event], desired: dict[str, Block]) -> list[BlockChange]:
    """A minimal reconcile, as the planner does it: create, move, delete duplicates."""
    owned: dict[str, list[Event]] = {}
    for e in sorted(view.values(), key=lambda e: e.id):
        if e.owned_block_id and e.status is not Status.CANCELLED:
            owned.setdefault(e.owned_block_id, []).append(e)
    changes = []
    for bid, b in desired.items():
        have = owned.pop(bid, [])
        if not have:
            changes.append(create(b))
            continue
        first, *extra = have
        if (first.start, first.end) != (b.start, b.end):
            changes.append(BlockChange(ChangeKind.MOVE, b, "moved", first.id, first.etag))
        changes += [BlockChange(ChangeKind.DELETE, b, "duplicate", e.id, e.etag) for e in extra]
    for events in owned.values():
        for e in events:
            gone = Block(e.owned_block_id or "", OWNER, "coaching", e.start, e.end, "x")
            changes.append(BlockChange(ChangeKind.DELETE, gone, "not wanted", e.id, e.etag))
    return changes


def converge(conn: GoogleCalendar, cal: CalendarRef, desired: dict[str, Block]) -> int:
    view: dict[str, Event] = {}
    state: SyncState | None = None
    for rounds in range(1, 40):
        try:
            result = conn.sync(cal, WINDOW, state)
        except TransientError:
            continue
        view, state = merge(view, result), result.state
        changes = plan(view, desired)
        if not changes:
            return rounds
        for change in changes:
            with contextlib.suppress(TransientError):  # read again, plan again
                conn.apply(cal, [change])
    raise AssertionError("did not converge")


def test_twenty_percent_faults_still_converge_to_the_exact_event_set(
    fake: GoogleFake, store: TokenStore
) -> None:
    connect_person(fake, store, OWNER)
    fake.calendar(OWNER, "Europe/Berlin")
    users = [to_google(e) for e in INSIDE if not e.owned_block_id]
    for resource in users:
        fake.put_event(OWNER, resource)
    before = {e["id"]: e["etag"] for e in fake.events(OWNER)}
    fake.fault_rate = 0.2
    conn = calendar(fake, store, backoff=Backoff(attempts=8))
    cal = gref()
    desired = {block_id(i): block(block_id(i), at(23 + i % 5, 9 + i % 8)) for i in range(30)}
    rounds = converge(conn, cal, desired)
    moved = {
        bid: replace(b, start=b.start + timedelta(minutes=30), end=b.end + timedelta(minutes=30))
        for bid, b in list(desired.items())[:20:2]
    }
    rounds += converge(conn, cal, moved)  # half moved, the rest deleted
    fake.fault_rate = 0.0
    print(
        f"\nfigure: 20% faults: {fake.faults_injected} injected over {len(fake.calls)} calls, converged in {rounds} rounds"
    )
    assert fake.faults_injected >= 0.1 * len(fake.calls)
    live = fake.events(OWNER)
    tagged = [e for e in live if e.get("extendedProperties")]
    assert sorted(e["extendedProperties"]["private"]["steadyhand"] for e in tagged) == sorted(moved)
    for e in tagged:
        b = moved[e["extendedProperties"]["private"]["steadyhand"]]
        assert datetime.fromisoformat(e["start"]["dateTime"]) == b.start
    assert {e["id"]: e["etag"] for e in live if not e.get("extendedProperties")} == before
    assert not [
        c
        for c in fake.calls
        if c.method in ("PATCH", "PUT", "DELETE") and c.path.rsplit("/", 1)[-1] in before
    ]
    # a fresh full sync, through the batch endpoint under faults, sees exactly that
    fake.fault_rate = 0.2
    [result] = conn.sync_many([(cal, WINDOW, None)])
    assert isinstance(result, SyncResult) and result.full
    synced = [e for e in result.events if e.status is not Status.CANCELLED]
    assert sorted(e.id for e in synced) == sorted(e["id"] for e in live)  # all inside WINDOW
    assert sorted(e.owned_block_id for e in synced if e.owned_block_id) == sorted(moved)


# -- Gmail -----------------------------------------------------------------------------
def message() -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Steadyhand <bot@example.com>"
    m["To"] = "ana@example.com"
    m["Subject"] = "Your week — ünïcode"
    m["Message-ID"] = "<reflection.ana.2026-11-23@steadyhand>"
    m.set_content("Hello Ana.\n")
    return m


def test_gmail_sends_the_raw_message_and_returns_its_id(
    fake: GoogleFake, store: TokenStore
) -> None:
    connect_person(fake, store, "bot@example.com")
    transport = GmailTransport(
        spec_for(fake),
        "Steadyhand <bot@example.com>",
        token_store=store,
        http=new_http,
        sleep=Sleeps(),
    )
    fake.fail_next(429, "rateLimitExceeded", **{"Retry-After": "1"})
    sent_id = transport.send(message())
    [call] = [c for c in fake.calls if c.status == 200]
    assert call.path == "/gmail/v1/users/me/messages/send"
    assert fake.sent == [message().as_bytes()]
    assert sent_id == hashlib.sha256(message().as_bytes()).hexdigest()[:16]
    assert transport.name == "gmail"


def test_gmail_without_the_send_scope_is_permanent(fake: GoogleFake, store: TokenStore) -> None:
    connect_person(fake, store, "bot@example.com", scopes=[SCOPE_CALENDAR])
    transport = GmailTransport(spec_for(fake), "bot@example.com", token_store=store, http=new_http)
    with pytest.raises(PermanentError, match="403 insufficientPermissions"):
        transport.send(message())


# -- connect ---------------------------------------------------------------------------
def secrets_file(fake: GoogleFake, folder: Path) -> Path:
    path = folder / "client.json"
    path.write_text(json.dumps(client_secrets(fake)))
    return path


def drive_consent(urls: queue.Queue[str], answers: list[int]) -> Callable[[], None]:
    """The user's browser: open the printed address, follow Google's redirect home."""

    def browse() -> None:
        url = urls.get(timeout=10)  # waits, with a deadline, for the address to be printed
        session = requests.Session()
        session.trust_env = False
        answers.append(session.get(url, timeout=10).status_code)

    return browse


def run_connect(
    fake: GoogleFake,
    store: TokenStore,
    folder: Path,
    urls: queue.Queue[str] | None = None,
    **kwargs: Any,
) -> tuple[list[str], list[int]]:
    """``steadyhand connect google`` with the user's browser in a thread: it waits (with a
    deadline) for the address, printed or opened, then follows it through consent."""
    printed: list[str] = []
    to_open: queue.Queue[str] = urls if urls is not None else queue.Queue()
    answers: list[int] = []

    def print_url(url: str) -> None:
        printed.append(url)
        if urls is None:
            to_open.put(url)

    kwargs.setdefault("open_browser", False)
    browser = threading.Thread(target=drive_consent(to_open, answers), daemon=True)
    browser.start()
    try:
        connect(
            spec_for(fake, client_secrets=secrets_file(fake, folder)),
            "Cy@Example.com",
            store,
            print_url=print_url,
            **kwargs,
        )
    finally:
        browser.join(timeout=10)
    return printed, answers


@pytest.fixture
def insecure_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks http


def test_connect_runs_the_installed_app_flow_and_stores_the_token_encrypted(
    fake: GoogleFake, store: TokenStore, tmp_path: Path, insecure_loopback: None
) -> None:
    printed, answers = run_connect(fake, store, tmp_path)
    assert len(printed) == 1 and printed[0].startswith(f"{fake.url}o/oauth2/auth?")
    assert answers == [200]
    [asked] = fake.auth_requests
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    assert set(asked["scope"].split()) == set(SCOPES)
    assert asked["code_challenge_method"] == "S256" and asked["login_hint"] == "cy@example.com"
    assert asked["redirect_uri"].startswith("http://localhost:")
    saved = json.loads(store.load(token_name(spec_for(fake), OWNER)) or b"")
    assert (
        saved["refresh_token"] in fake.refresh_tokens and saved["token_uri"] == f"{fake.url}token"
    )
    assert saved["steadyhand"]["granted_scopes"] == sorted(SCOPES)
    assert saved["steadyhand"]["refresh_token_expires_at"] is None
    raw = b"".join(p.read_bytes() for p in store.folder.iterdir())
    assert saved["refresh_token"].encode() not in raw
    conn = calendar(fake, store)
    assert conn.token_health(OWNER, scopes=SCOPES)[0] == "ok"
    fake.calendar(OWNER)
    assert conn.sync(gref(), WINDOW, None).full


class Browser:
    """What ``webbrowser.get()`` returns: opening an address hands it to the user."""

    def __init__(self, urls: queue.Queue[str]) -> None:
        self.urls = urls

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.urls.put(url)
        return True


def test_connect_opens_the_browser_and_still_prints_the_address(
    fake: GoogleFake,
    store: TokenStore,
    tmp_path: Path,
    insecure_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: queue.Queue[str] = queue.Queue()
    monkeypatch.setattr("webbrowser.get", lambda using=None: Browser(opened))
    printed, answers = run_connect(fake, store, tmp_path, urls=opened, open_browser=True)
    assert answers == [200] and len(printed) == 1
    assert store.load(token_name(spec_for(fake), OWNER)) is not None


def test_connect_without_a_browser_prints_the_address(
    fake: GoogleFake,
    store: TokenStore,
    tmp_path: Path,
    insecure_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_browser(using: Any = None) -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr("webbrowser.get", no_browser)
    printed, answers = run_connect(fake, store, tmp_path, open_browser=True)
    assert answers == [200] and len(printed) == 1


def test_connect_of_an_app_in_testing_warns_of_the_7_day_expiry(
    fake: GoogleFake, store: TokenStore, tmp_path: Path, insecure_loopback: None
) -> None:
    fake.testing_app = True
    run_connect(fake, store, tmp_path)
    status, detail = calendar(fake, store).token_health(OWNER)
    assert status == "testing_app_7_day_expiry" and "publish" in detail
    saved = json.loads(store.load(token_name(spec_for(fake), OWNER)) or b"")
    saved["steadyhand"]["refresh_token_expires_at"] = "2020-01-01T00:00:00+00:00"
    store.save(token_name(spec_for(fake), OWNER), json.dumps(saved).encode())
    fake.revoke(OWNER)  # Google ends the consent after 7 days
    status, detail = calendar(fake, store).token_health(OWNER)
    assert status == "testing_app_7_day_expiry" and "expired on 2020-01-01" in detail


def test_connect_with_a_scope_left_unticked_stores_nothing_and_says_why(
    fake: GoogleFake, store: TokenStore, tmp_path: Path, insecure_loopback: None
) -> None:
    fake.granted_scopes = {SCOPE_CALENDAR}
    with pytest.raises(UserError, match=r"gmail\.send"):
        run_connect(fake, store, tmp_path)
    assert store.load(token_name(spec_for(fake), OWNER)) is None


def test_connect_fails_before_the_browser_without_secrets_or_key(
    fake: GoogleFake, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="client_secrets"):
        connect(
            spec_for(fake), OWNER, TokenStore(tmp_path, Fernet.generate_key()), open_browser=False
        )
    with pytest.raises(ConfigError, match="does not exist"):
        connect(
            spec_for(fake, client_secrets=tmp_path / "nope.json"),
            OWNER,
            TokenStore(tmp_path, Fernet.generate_key()),
            open_browser=False,
        )
    printed: list[str] = []
    with pytest.raises(UserError, match="STEADYHAND_SECRET_KEY"):
        connect(
            spec_for(fake, client_secrets=secrets_file(fake, tmp_path)),
            OWNER,
            TokenStore(tmp_path, None),
            open_browser=False,
            print_url=printed.append,
        )
    assert printed == []


# -- secrets stay out of logs ----------------------------------------------------------
def test_tokens_never_appear_in_logs_or_output(
    fake: GoogleFake,
    store: TokenStore,
    tmp_path: Path,
    insecure_loopback: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    run_connect(fake, store, tmp_path)
    old = json.loads(store.load(token_name(spec_for(fake), OWNER)) or b"")
    old["expiry"] = "2020-01-01T00:00:00Z"  # due for a refresh
    store.save(token_name(spec_for(fake), OWNER), json.dumps(old).encode())
    fake.calendar(OWNER, "Europe/Berlin")
    conn = calendar(fake, store)
    first = conn.sync(gref(), WINDOW, None)
    conn.apply(gref(), [create(block(block_id(1), at(25, 14)))])
    conn.sync_many([(gref(), WINDOW, first.state)])
    GmailTransport(spec_for(fake), OWNER, token_store=store, http=new_http).send(message())
    fake.reject_all_tokens = True
    with pytest.raises(PermanentError) as raised:
        calendar(fake, store).sync(gref(), WINDOW, None)
    out = capsys.readouterr()
    seen = caplog.text + out.out + out.err + str(raised.value)
    assert "google sync" in caplog.text  # the connector did log
    secrets = fake.secrets()
    assert len(secrets) >= 5
    leaked = [s for s in secrets if s in seen]
    assert leaked == []
