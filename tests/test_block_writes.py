"""Writes are what they report: a vdir calendar through several `apply` rounds.

A block that returns to a slot it held before is written again; a user's copy of a
block never makes steadyhand delete the original; any user change to a block (time,
title, description, attendees, status, location, show-as) makes it theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography.fernet import Fernet

from connectors.outlook import transaction_id
from connectors.secrets import TokenStore
from connectors.vdir import VdirCalendar
from tests import test_protection
from tests.conftest import write
from tests.fakes.graph import FakeGraph
from tests.test_outlook import sign_in
from worker import config
from worker.cli import protect as cli_protect
from worker.core.errors import TransientError
from worker.core.model import UTC, Applied, Block, BlockChange, CalendarRef, ChangeKind
from worker.cycle import protect as protection
from worker.cycle.protect import write_key
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store

NOW = "2026-11-02T08:00:00+01:00"  # Monday morning, Berlin

CONFIG = """\
timezone: Europe/Berlin
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {mon: "09:00-11:00"}
    calendar: {vdir: cal/ana}
protect:
  - rule: focus
    for: everyone
    per_day: 1h
    min_block: 60m
"""

MEETING = test_protection.MEETING  # one meeting of Ana's with Kim, times to fill in

NINE = ("20261102T080000Z", "20261102T090000Z")  # 09:00-10:00 Berlin
TEN = ("20261102T090000Z", "20261102T100000Z")  # 10:00-11:00 Berlin


@pytest.fixture
def ana(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ana, two working hours on Monday, one focus hour a day, an empty vdir calendar."""
    (project / "cal" / "ana").mkdir(parents=True)
    write(project / "steadyhand.yaml", CONFIG)
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    return project / "cal" / "ana"


def meeting_at(folder: Path, slot: tuple[str, str]) -> None:
    for old in folder.glob("meeting-*.ics"):
        old.unlink()
    write(
        folder / f"meeting-{slot[0]}.ics",
        MEETING.format(uid=f"m-{slot[0]}", start=slot[0], end=slot[1]),
    )


def block_files(folder: Path) -> dict[str, str]:
    """file name -> DTSTART of every file carrying steadyhand's tag."""
    found = {}
    for path in sorted(folder.glob("*.ics")):
        text = path.read_text()
        if re.search(r"^X-STEADYHAND-BLOCK:", text, re.M):
            found[path.name] = re.search(r"^DTSTART[^:]*:(\S+)", text, re.M)[1]  # type: ignore[index]
    return found


def summary(out: str) -> str:
    return next(li for li in out.splitlines() if li.startswith("Applied"))


def test_a_block_toggled_back_to_a_slot_it_held_before_is_written_every_time(
    run_cli, ana: Path
) -> None:
    first = run_cli("apply", "--horizon", "1d")
    assert summary(first.out) == "Applied: 1 created, 0 moved, 0 deleted.", first.out + first.err
    (name,) = block_files(ana)
    assert block_files(ana) == {name: NINE[0]}
    for meeting, block in ((NINE, TEN), (TEN, NINE), (NINE, TEN), (TEN, NINE)):
        meeting_at(ana, meeting)
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert summary(result.out) == "Applied: 0 created, 1 moved, 0 deleted."
        assert block_files(ana) == {name: block[0]}, (
            f"round with the meeting at {meeting[0]}: {result.out}"
        )
    again = run_cli("apply", "--horizon", "1d")
    assert summary(again.out) == "Applied: no changes. The calendars match the plan."
    assert block_files(ana) == {name: NINE[0]}


def test_a_users_copy_of_a_block_never_gets_the_original_deleted(run_cli, ana: Path) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    text = (ana / name).read_text()
    uid = re.search(r"^UID:(\S+)", text, re.M)[1]  # type: ignore[index]
    block_id = re.search(r"^X-STEADYHAND-BLOCK:(\S+)", text, re.M)[1]  # type: ignore[index]
    write(ana / "copy.ics", text.replace(f"UID:{uid}", "UID:my-own-copy-123"))
    for _ in range(3):
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert "deleted" not in summary(result.out) or "0 deleted" in summary(result.out)
        assert f"= {block_id}: taken over by you" in result.out
        assert block_files(ana) == {"copy.ics": NINE[0], name: NINE[0]}
    meeting_at(ana, NINE)  # even a meeting on top moves neither: both are Ana's now
    result = run_cli("apply", "--horizon", "1d")
    assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert block_files(ana) == {"copy.ics": NINE[0], name: NINE[0]}
    audit = run_cli("audit", "--block", block_id)
    assert "taken_over" in audit.out and "copied" in audit.out


EDITS = {
    "description": ("SUMMARY:", "DESCRIPTION:my notes for the focus hour\nSUMMARY:"),
    "attendee": ("SUMMARY:", "ATTENDEE;CN=Kim:mailto:kim@example.com\nSUMMARY:"),
    "location": ("SUMMARY:", "LOCATION:Library\nSUMMARY:"),
    "status": ("SUMMARY:", "STATUS:TENTATIVE\nSUMMARY:"),
    "show-as": ("TRANSP:OPAQUE", "TRANSP:TRANSPARENT"),
    "title": ("SUMMARY:Focus time", "SUMMARY:Deep work"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_any_user_edit_to_a_block_makes_it_theirs_and_it_is_kept(
    run_cli, ana: Path, edit: str
) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    path = ana / name
    text = path.read_text()
    old, new = EDITS[edit]
    assert old in text, text
    edited = text.replace(old, new, 1)
    path.write_text(edited)
    block_id = re.search(r"^X-STEADYHAND-BLOCK:(\S+)", text, re.M)[1]  # type: ignore[index]
    plan = run_cli("plan", "--horizon", "1d")
    assert f"= {block_id}: taken over by you; steadyhand leaves it alone" in plan.out
    meeting_at(ana, NINE)  # a meeting lands on it: a managed block would move
    for _ in range(2):
        result = run_cli("apply", "--horizon", "1d")
        assert result.code == 0, result.err
        assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert path.read_text() == edited  # the user's edit is still there, untouched
    audit = run_cli("audit", "--block", block_id)
    assert "taken_over" in audit.out and "user" in audit.out


def test_a_block_cancelled_by_the_user_is_not_booked_again(run_cli, ana: Path) -> None:
    run_cli("apply", "--horizon", "1d")
    (name,) = block_files(ana)
    path = ana / name
    edited = path.read_text().replace("SUMMARY:", "STATUS:CANCELLED\nSUMMARY:", 1)
    path.write_text(edited)
    for _ in range(2):
        result = run_cli("apply", "--horizon", "1d")
        assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    assert path.read_text() == edited


# -- the same on Microsoft 365, through the fake Graph -----------------------------------
OUTLOOK_CONFIG = """\
timezone: Europe/Berlin
accounts:
  - name: m365
    kind: outlook
    auth: access_token
    token_env: GRAPH_TOKEN
    tenant: {tenant}
    client_id: {client_id}
    graph_endpoint: {root}
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {{mon: "09:00-11:00"}}
    calendar: {{account: m365, id: primary}}
protect:
  - rule: focus
    for: everyone
    per_day: 1h
    min_block: 60m
"""


@pytest.fixture
def m365(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    with FakeGraph(mailbox_timezone="Europe/Berlin") as graph:
        graph.add_mailbox(OWNER, "primary")
        sign_in(graph, TokenStore(project / "tokens-for-setup", Fernet.generate_key()), OWNER)
        monkeypatch.setenv("GRAPH_TOKEN", next(iter(graph.access)))
        monkeypatch.setenv("STEADYHAND_NOW", NOW)
        write(
            project / "steadyhand.yaml",
            OUTLOOK_CONFIG.format(tenant=graph.tenant, client_id=graph.client_id, root=graph.root),
        )
        yield graph


OWNER = "ana@example.com"


def graph_time(stamp: str) -> dict[str, str]:
    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    return {"dateTime": f"{moment:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"}


def graph_meeting(graph: FakeGraph, slot: tuple[str, str]) -> None:
    for stored in graph.live(OWNER):
        if stored.id.startswith("meeting-"):
            graph.remove(stored.id)
    graph.put(
        OWNER,
        "primary",
        {
            "id": f"meeting-{slot[0]}",
            "subject": "Budget review",
            "start": graph_time(slot[0]),
            "end": graph_time(slot[1]),
            "attendees": [{"emailAddress": {"address": "kim@example.com"}, "type": "required"}],
        },
    )


def graph_blocks(graph: FakeGraph) -> dict[str, str]:
    """event id -> start (UTC, as Graph holds it) of every live steadyhand block."""
    return {
        s.id: str(s.data["start"]["dateTime"])[:16]
        for s in graph.live(OWNER)
        if s.data.get("categories") == ["steadyhand"]
    }


def test_on_outlook_a_block_toggled_back_to_a_slot_it_held_before_is_written(
    run_cli, m365: FakeGraph
) -> None:
    first = run_cli("apply", "--horizon", "1d")
    assert summary(first.out) == "Applied: 1 created, 0 moved, 0 deleted.", first.out + first.err
    (event_id,) = graph_blocks(m365)
    for meeting, block in ((NINE, TEN), (TEN, NINE), (NINE, TEN)):
        graph_meeting(m365, meeting)
        result = run_cli("apply", "--horizon", "1d")
        assert summary(result.out) == "Applied: 0 created, 1 moved, 0 deleted.", result.out
        start = datetime.strptime(block[0], "%Y%m%dT%H%M%SZ")
        assert graph_blocks(m365) == {event_id: f"{start:%Y-%m-%dT%H:%M}"}
    assert summary(run_cli("apply", "--horizon", "1d").out).startswith("Applied: no changes.")


@pytest.mark.parametrize(
    "edit",
    [
        {"body": {"contentType": "text", "content": "my notes for the focus hour"}},
        {"location": {"displayName": "Library"}},
        {"attendees": [{"emailAddress": {"address": "kim@example.com"}, "type": "required"}]},
        {"showAs": "tentative"},
    ],
    ids=["description", "location", "attendee", "status"],
)
def test_on_outlook_a_block_the_user_edited_is_theirs_and_kept(
    run_cli, m365: FakeGraph, edit: dict[str, object]
) -> None:
    assert run_cli("apply", "--horizon", "1d").code == 0
    (event_id,) = graph_blocks(m365)
    m365.edit(event_id, **edit)
    graph_meeting(m365, NINE)  # a meeting on the block: a managed block would move
    result = run_cli("apply", "--horizon", "1d")
    assert result.code == 0, result.err
    assert "taken over by you" in result.out
    assert summary(result.out) == "Applied: no changes. The calendars match the plan."
    stored = m365.events[event_id]
    assert not stored.deleted and all(stored.data[k] == v for k, v in edit.items())
    assert graph_blocks(m365) == {event_id: "2026-11-02T08:00"}


def test_a_transaction_id_is_new_for_each_write_and_the_same_for_its_retry() -> None:
    b = Block(
        "b1",
        OWNER,
        "focus",
        datetime(2026, 11, 2, 8, tzinfo=UTC),
        datetime(2026, 11, 2, 9, tzinfo=UTC),
        "Focus",
    )
    create = BlockChange(ChangeKind.CREATE, b, "new")
    first, again = write_key(create, 0), write_key(create, 2)  # re-created after a delete
    assert first != again
    assert transaction_id(b, first) == transaction_id(b, first)
    assert transaction_id(b, first) != transaction_id(b, again)


def test_on_google_a_blocks_description_or_location_is_part_of_what_it_is() -> None:
    from connectors.google import TAG, to_event

    cal = CalendarRef("ana:google:primary", OWNER, "google", "primary", "Europe/Berlin")
    item = {
        "id": "b1",
        "start": {"dateTime": "2026-11-02T09:00:00+01:00"},
        "end": {"dateTime": "2026-11-02T10:00:00+01:00"},
        "summary": "Focus time",
        "extendedProperties": {"private": {TAG: "b1"}},
    }
    assert to_event(item, cal).details is None  # as steadyhand writes it
    notes = to_event({**item, "description": "my notes"}, cal).details
    place = to_event({**item, "location": "Library"}, cal).details
    assert notes and place and notes != place


# -- the same write twice, and a write that did not happen ------------------------------
class FlakyVdir(VdirCalendar):
    """A vdir whose next ``fail`` writes fail as a timeout would."""

    fail = 0
    writes = 0

    def apply(self, cal: CalendarRef, changes: Sequence[BlockChange]) -> list[Applied]:
        if FlakyVdir.fail:
            FlakyVdir.fail -= 1
            raise TransientError("the calendar server timed out")
        FlakyVdir.writes += 1
        return super().apply(cal, changes)


def runtime(now: datetime) -> Runtime:
    settings = config.load("steadyhand.yaml")
    return Runtime(
        settings,
        Store(settings.store_url),
        build_transport(settings),
        lambda: now,
        calendars={("vdir", None): FlakyVdir()},
    )


def test_the_same_write_applied_twice_is_written_once(ana: Path) -> None:
    now = datetime.fromisoformat(NOW)
    rt = runtime(now)
    FlakyVdir.writes = 0
    plan = protection.plan_person(rt, rt.settings.person(OWNER), now, timedelta(days=1))
    assert plan is not None and len(plan.changes) == 1
    assert [d.outcome for d in protection.apply_person(rt, plan, now)] == ["written"]
    again = protection.apply_person(rt, plan, now)  # a repeated attempt of the same write
    assert [d.outcome for d in again] == ["skipped"] and FlakyVdir.writes == 1
    assert len(block_files(ana)) == 1
    rt.close()


def test_apply_reports_a_write_that_did_not_happen_as_not_written(
    ana: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.fromisoformat(NOW)
    rt = runtime(now)
    FlakyVdir.fail = 1
    with pytest.raises(typer.Exit):
        cli_protect.apply_all(rt, now, timedelta(days=1))
    first = capsys.readouterr()
    assert "Applied: nothing written of 1 planned change." in first.out
    assert "retry" in first.err and "timed out" in first.err
    assert block_files(ana) == {}
    cli_protect.apply_all(rt, now, timedelta(days=1))  # the retry is not due yet
    second = capsys.readouterr().out
    assert "Applied: nothing written of 1 planned change." in second
    assert "Not written now: 1 change is in the outbox already" in second
    assert block_files(ana) == {}
    later = now + timedelta(minutes=10)  # past the retry's back-off: apply finishes it
    assert [d.outcome for d in protection.finish_pending(rt, later)] == ["written"]
    assert list(block_files(ana).values()) == [NINE[0]]
    rt.close()


def test_a_store_made_before_the_blocks_fingerprint_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    import sqlite3

    from worker.core.errors import UserError

    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # the tables as the previous version made them
        for table, column in (
            ("events", "details"),
            ("blocks", "fingerprint"),
            ("blocks", "writes"),
        ):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    with pytest.raises(UserError) as info:
        Store(f"sqlite:///{path}")
    message = str(info.value)
    assert "was made by another version of steadyhand" in message and "\n" not in message
    assert "lacks details" in message or "lacks fingerprint, writes" in message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ledger_keeps_a_blocks_fingerprint_and_its_write_count_never_goes_back(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    store = Store(url)
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    args = ("b1", OWNER, "cal", "focus", "e1", start, start + timedelta(hours=1), "Focus")
    try:
        store.record_block(*args, "managed", start, fingerprint="f1", writes=1)
        store.record_block(*args, "managed", start, fingerprint="f2", writes=3)
        store.record_block(*args, "managed", start, fingerprint="f2", writes=2)  # a late retry
        (record,) = store.blocks_of(OWNER)
        assert (record.fingerprint, record.writes) == ("f2", 3)
    finally:
        store.close()
