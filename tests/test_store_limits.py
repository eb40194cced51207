"""Store limits at the boundary, on SQLite and PostgreSQL alike: ids over the column size
are kept as a stable hash, NUL bytes are dropped, long text is cut, and a database error
on one calendar is that calendar's failure in one line, never the whole sync's."""

from __future__ import annotations

import hashlib
import shutil
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, postgres_database, write
from worker.core.model import Event, SyncState, TimeRange
from worker.store import Store

NOW = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
SPAN = TimeRange(NOW - timedelta(days=30), NOW + timedelta(days=30))
LONG_UID = "long-" + "x" * 995


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'steadyhand.db'}"
        found = Store(url)
        yield found
        found.close()
    else:
        for url in postgres_database():
            found = Store(url)
            yield found
            found.close()


def event(event_id: str, **fields: object) -> Event:
    values: dict[str, object] = {
        "id": event_id,
        "calendar_id": "cal",
        "start": NOW + timedelta(days=1),
        "end": NOW + timedelta(days=1, hours=1),
        **fields,
    }
    return Event(**values)  # type: ignore[arg-type]


def save(
    store: Store, events: list[Event], full: bool = True, removed: tuple[str, ...] = ()
) -> int:
    state = SyncState(fingerprint="f", window=SPAN)
    return store.save_sync(
        "ana:ics:cal.ics", "ana@example.com", "ics", state, events, removed, full, NOW, True
    )


def test_long_and_nul_bearing_ids_and_text_are_stored_under_stable_names(store: Store) -> None:
    hostile = [
        event(LONG_UID, series_id="s" * 700, etag="e" * 300),
        event(
            "nul\x00id",
            title="t\x00" + "itle " * 1000,
            organizer="o\x00rg@example.com",
            attendees=("a\x00na@example.com",),
            owned_block_id="b\x00" + "l" * 300,
        ),
        event("plain", title="Standup"),
    ]
    assert save(store, hostile) == 3
    found = {e.id: e for e in store.events_for("ana@example.com", SPAN)}
    digest = hashlib.sha256(LONG_UID.encode()).hexdigest()
    long_id = f"{LONG_UID[: 500 - 65]}#{digest}"
    assert set(found) == {long_id, "nulid", "plain"}
    assert len(long_id) == 500
    assert found[long_id].series_id == f"{'s' * 435}#{hashlib.sha256(b's' * 700).hexdigest()}"
    assert len(found[long_id].etag or "") == 200
    nul = found["nulid"]
    assert nul.title is not None and len(nul.title) == 1000 and "\x00" not in nul.title
    assert nul.organizer == "org@example.com" and nul.attendees == ("ana@example.com",)
    assert nul.owned_block_id is not None and len(nul.owned_block_id) == 200
    assert found["plain"].title == "Standup"

    # the same read again: the same rows, not new ones
    assert save(store, hostile) == 3
    assert {e.id for e in store.events_for("ana@example.com", SPAN)} == set(found)
    # removed by the id the calendar gave: the fitted row goes
    assert save(store, [], full=False, removed=(LONG_UID, "nul\x00id")) == 1


def test_ids_that_become_equal_when_fitted_keep_the_later_event(store: Store) -> None:
    assert save(store, [event("a\x00b", title="first"), event("ab", title="second")]) == 1
    [kept] = store.events_for("ana@example.com", SPAN)
    assert (kept.id, kept.title) == ("ab", "second")


def test_a_postgresql_data_error_fails_one_calendar_in_one_line_and_the_rest_sync(
    run_cli, project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cy's calendar key is longer than its column (a deep path, with the key fitting of
    the config turned off to make a real DataError); bo's events carry a 1,000-character
    UID and NUL bytes: bo is stored, cy fails alone, ana is stored."""
    from worker.config import schema

    monkeypatch.setattr(schema, "MAX_KEY", 10_000)
    (project / "cal").mkdir()
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", project / "cal" / "ana.ics")
    bo = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n"
        f"BEGIN:VEVENT\nUID:{LONG_UID}\nDTSTART:20261110T090000Z\nDTEND:20261110T100000Z\n"
        "END:VEVENT\n"
        "BEGIN:VEVENT\nUID:a\x00b\nSUMMARY:t\x00x\nDTSTART:20261111T090000Z\n"
        "DTEND:20261111T100000Z\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    write(project / "cal" / "bo.ics", bo)
    deep = project / "cal" / ("d" * 200) / ("e" * 120) / "cy.ics"
    deep.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "config" / "demo" / "cy.ics", deep)
    write(
        project / "steadyhand.yaml",
        textwrap.dedent(f"""\
            timezone: Europe/Berlin
            store: {postgres_url}
            people:
              - email: cy@example.com
                calendar: {{ics: "{deep}"}}
              - email: ana@example.com
                calendar: {{ics: cal/ana.ics}}
              - email: bo@example.com
                calendar: {{ics: cal/bo.ics}}
            """),
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-05T16:45:00+01:00")
    result = run_cli("sync")
    assert result.code == 1, result.err  # a passing fault, not the user's file
    [error] = result.err.strip().splitlines()
    assert error.startswith("error: StringDataRightTruncation: value too long for type")
    for leak in ("[SQL", "parameters", "INSERT", "Traceback"):
        assert leak not in result.out + result.err
    assert " 39 " in next(li for li in result.out.splitlines() if "ana@example.com" in li)
    assert " 2 " in next(li for li in result.out.splitlines() if "bo@example.com" in li)
    store = Store(postgres_url)
    try:
        counts = {c.owner: c.event_count for c in store.calendars()}
    finally:
        store.close()
    assert counts["ana@example.com"] == 39 and counts["bo@example.com"] == 2


def test_a_store_made_before_truncation_notes_still_opens_and_keeps_them(store: Store) -> None:
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE sync_notes"))
    again = Store(store.url)  # as an older version left it: the table is added
    try:
        save(again, [event("a")])
        assert [c.truncated for c in again.calendars()] == [None]
        state = SyncState(fingerprint="g", window=SPAN)
        why = "more than 1 events (sync.max_events)"
        again.save_sync(
            "ana:ics:cal.ics",
            "ana@example.com",
            "ics",
            state,
            [event("a")],
            (),
            True,
            NOW,
            True,
            truncated=why,
        )
        assert [c.truncated for c in again.calendars()] == [why]
        again.save_sync(
            "ana:ics:cal.ics", "ana@example.com", "ics", state, [], (), False, NOW, True, read=False
        )  # unchanged: the note stays
        assert [c.truncated for c in again.calendars()] == [why]
        save(again, [event("a")])  # read whole again: the note goes
        assert [c.truncated for c in again.calendars()] == [None]
    finally:
        again.close()


def test_a_calendar_with_a_very_long_address_gets_a_key_its_columns_hold(
    store: Store, tmp_path: Path
) -> None:
    long_feed = "https://example.com/" + "cal/" * 150 + "team.ics"
    other_feed = "https://example.com/" + "cal/" * 150 + "other.ics"
    long_folder = "cals/" + "sub/" * 100 + "ana"
    write(
        tmp_path / "steadyhand.yaml",
        textwrap.dedent(
            f"""\
            people:
              - {{email: ana@example.com, calendar: {{ics: "{long_feed}"}}}}
              - {{email: bo@example.com, calendar: {{ics: "{other_feed}"}}}}
              - {{email: cy@example.com, calendar: {{vdir: "{long_folder}"}}}}
            """
        ),
    )
    from worker import config

    settings = config.load(tmp_path / "steadyhand.yaml")
    refs = [
        settings.calendar_ref(e) for e in ("ana@example.com", "bo@example.com", "cy@example.com")
    ]
    keys = [r.key for r in refs if r is not None]
    assert len(set(keys)) == 3 and all(len(k) <= 300 for k in keys)
    assert keys == [r.key for r in (settings.calendar_ref("ana@example.com"),) if r] + keys[1:]
    assert keys[0].startswith("ana@example.com:ics:https://example.com/cal/")
    state = SyncState(fingerprint="f", window=SPAN)
    for key in keys:  # each key is a row the store can hold, on SQLite and PostgreSQL
        store.save_sync(
            key, "ana@example.com", "ics", state, [event(key[-8:])], (), True, NOW, True
        )
    assert {c.calendar_key for c in store.calendars()} >= set(keys)
