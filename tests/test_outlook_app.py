"""The whole app on a Microsoft 365 calendar: sync, plan, apply, doctor — through the fake Graph."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from connectors.secrets import TokenStore
from tests.conftest import write
from tests.fakes.graph import FakeGraph
from tests.test_outlook import sign_in

BERLIN = ZoneInfo("Europe/Berlin")
OWNER = "ana@example.com"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(mailbox_timezone="Europe/Berlin") as fake:
        yield fake


def utc(moment: datetime) -> dict[str, str]:
    return {
        "dateTime": moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        "timeZone": "UTC",
    }


@pytest.fixture
def m365(project: Path, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    graph.add_mailbox(OWNER, "primary")
    sign_in(graph, TokenStore(project / "tokens-for-setup", Fernet.generate_key()), OWNER)
    monkeypatch.setenv("GRAPH_TOKEN", next(iter(graph.access)))
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-02T08:00:00+01:00")
    for day, title in ((3, "Design review"), (4, "Customer call")):
        graph.put(
            OWNER,
            "primary",
            {
                "id": f"m{day}",
                "subject": title,
                "start": utc(datetime(2026, 11, day, 13, 0, tzinfo=BERLIN)),
                "end": utc(datetime(2026, 11, day, 17, 0, tzinfo=BERLIN)),
                "attendees": [{"emailAddress": {"address": "kim@example.com"}, "type": "required"}],
            },
        )
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
accounts:
  - name: m365
    kind: outlook
    auth: access_token
    token_env: GRAPH_TOKEN
    tenant: {graph.tenant}
    client_id: {graph.client_id}
    graph_endpoint: {graph.root}
people:
  - email: {OWNER}
    name: Ana Lima
    calendar: {{account: m365, id: primary}}
teams:
  - {{name: T, leader: {OWNER}}}
protect:
  - rule: coaching
    for: leaders
    duration: 45m
    per_week: 2
    window: {{days: [tue, wed, thu], time: "13:00-17:00"}}
""",
    )
    return graph


def test_sync_plan_apply_on_an_outlook_calendar(run_cli, m365: FakeGraph) -> None:
    synced = run_cli("sync")
    assert synced.code == 0, synced.err
    assert "outlook: primary" in synced.out and "read" in synced.out
    plan = run_cli("plan", "--horizon", "1w")
    # Tuesday's and Wednesday's windows are taken by meetings: both land on Thursday
    assert "+ create coaching  Thu 05 Nov 13:00–13:45" in plan.out
    assert "+ create coaching  Thu 05 Nov 13:45–14:30" in plan.out
    applied = run_cli("apply", "--horizon", "1w")
    assert applied.code == 0, applied.err
    assert "Applied: 2 created, 0 moved, 0 deleted." in applied.out
    blocks = [
        s.data
        for s in m365.events.values()
        if not s.deleted and s.data.get("categories") == ["steadyhand"]
    ]
    assert sorted(b["subject"] for b in blocks) == ["Coaching", "Coaching"]
    assert "Plan: no changes." in run_cli("plan", "--horizon", "1w").out
    doctor = run_cli("doctor")
    [token] = [line for line in doctor.out.splitlines() if line.startswith("│ m365 ")]
    assert [cell.strip() for cell in token.split("│")[1:-1]] == [
        "m365",
        OWNER,
        "ok",
        "token present",
    ]


def test_a_new_invitation_inside_a_defended_focus_block_is_declined_and_audited(
    run_cli, m365: FakeGraph, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project / "steadyhand.yaml"
    config.write_text(
        config.read_text()
        + "  - rule: focus\n    for: everyone\n    per_day: 1h\n    min_block: 60m\n    defend: decline\n"
    )
    assert run_cli("run", "--once").code == 0  # books the focus blocks (and coaching)
    focus = [
        s
        for s in m365.events.values()
        if not s.deleted
        and s.data.get("categories") == ["steadyhand"]
        and s.data.get("subject") == "Focus time"
    ]
    assert focus
    first = min(focus, key=lambda s: s.data["start"]["dateTime"])
    m365.put(
        OWNER,
        "primary",
        {
            "id": "invite-1",
            "subject": "Status sync",
            "isOrganizer": False,
            "responseStatus": {"response": "notResponded"},
            "start": first.data["start"],
            "end": first.data["end"],
            "attendees": [{"emailAddress": {"address": "kim@example.com"}, "type": "required"}],
        },
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-02T08:20:00+01:00")  # the next sync interval
    assert run_cli("run", "--once").code == 0
    assert [(mailbox, event) for mailbox, event, _ in m365.declines] == [(OWNER, "invite-1")]
    assert "protected focus time" in m365.declines[0][2]
    audit = run_cli("audit", "--person", OWNER).out
    assert "declined" in audit and "invite-1" in audit
