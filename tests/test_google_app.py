"""The whole app on a Google calendar: connect (stored credentials), sync, plan, apply, doctor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.secrets import TokenStore
from tests.conftest import write
from tests.fakes.google import GoogleFake
from tests.test_google import ACCOUNT, connect_person

OWNER = "ana@example.com"


@pytest.fixture
def google(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleFake]:
    fake = GoogleFake(seed=3)
    key = Fernet.generate_key()
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", key.decode())
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-02T08:00:00+01:00")
    fake.calendar(OWNER, "Europe/Berlin")
    for day, title in ((3, "Design review"), (4, "Customer call")):
        fake.put_event(
            OWNER,
            {
                "id": f"meeting{day}",
                "summary": title,
                "status": "confirmed",
                "start": {"dateTime": f"2026-11-0{day}T13:00:00+01:00"},
                "end": {"dateTime": f"2026-11-0{day}T17:00:00+01:00"},
                "attendees": [
                    {"email": OWNER, "self": True, "responseStatus": "accepted"},
                    {"email": "kim@example.com", "responseStatus": "accepted"},
                ],
            },
        )
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
accounts:
  - {{name: {ACCOUNT}, kind: google, auth: oauth, api_endpoint: "{fake.url}"}}
people:
  - {{email: {OWNER}, name: Ana Lima, calendar: {{account: {ACCOUNT}, id: {OWNER}}}}}
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
    connect_person(fake, TokenStore(project / "var" / "tokens", key), OWNER)
    yield fake
    fake.close()


def test_sync_plan_apply_and_doctor_on_a_google_calendar(run_cli, google: GoogleFake) -> None:
    synced = run_cli("sync")
    assert synced.code == 0, synced.err
    assert "google: ana@example.com" in synced.out and "read" in synced.out
    plan = run_cli("plan", "--horizon", "1w")
    assert "+ create coaching  Thu 05 Nov 13:00–13:45" in plan.out, plan.out
    applied = run_cli("apply", "--horizon", "1w")
    assert applied.code == 0, applied.err
    assert "Applied: 2 created, 0 moved, 0 deleted." in applied.out
    blocks = [
        e
        for e in google.events(OWNER)
        if e.get("extendedProperties", {}).get("private", {}).get("steadyhand")
    ]
    assert len(blocks) == 2 and all(b["summary"] == "Coaching" for b in blocks)
    assert "Plan: no changes." in run_cli("plan", "--horizon", "1w").out
    doctor = run_cli("doctor")
    line = next(
        li
        for li in doctor.out.splitlines()
        if OWNER in li and ACCOUNT in li and "│" in li and "ok" in li
    )
    assert line
    google.revoke(OWNER)
    doctor = run_cli("doctor")
    assert "revoked" in doctor.out


def test_connect_refuses_in_one_line_before_any_sign_in(
    run_cli, google: GoogleFake, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("connect", "google", "--person", OWNER, "--no-browser")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: accounts[google-main]: auth: oauth needs client_secrets: — download an OAuth "
        "client of type 'Desktop app' from the Google Cloud console (APIs & Services > "
        "Credentials) and point client_secrets: at the JSON file"
    ]
    config = project / "steadyhand.yaml"
    write(
        project / "client.json",
        '{"installed": {"client_id": "x", "client_secret": "y", '
        '"auth_uri": "http://127.0.0.1:1/auth", "token_uri": "http://127.0.0.1:1/token"}}',
    )
    config.write_text(
        config.read_text().replace("auth: oauth,", "auth: oauth, client_secrets: client.json,")
    )
    monkeypatch.delenv("STEADYHAND_SECRET_KEY")
    result = run_cli("connect", "google", "--person", OWNER, "--no-browser")
    assert result.code == 2
    assert "STEADYHAND_SECRET_KEY is not set" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_connect_names_what_is_missing_for_someone_without_a_google_calendar(
    run_cli, google: GoogleFake
) -> None:
    result = run_cli("connect", "google", "--person", "zed@example.com")
    assert result.code == 2
    assert "zed@example.com has no google calendar in the config" in result.err
    assert run_cli("connect", "caldav", "--person", OWNER).code == 2
