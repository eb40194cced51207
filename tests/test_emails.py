"""The email programs on the demo team: what arrives, when, once, and how to opt out."""

from __future__ import annotations

import email
import email.policy
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROGRAMS = """
emails:
  reflection: {to: leaders, at: "16:30", days: mon-fri}
  recognition: {to: leaders, at: "fri 10:00"}
  followup: {after: one_on_one, delay: 30m}
  overload: {to: person, notify_leader: false, lookahead: 1d}
  digest: {to: leaders, at: "mon 08:30"}
"""


@pytest.fixture
def team(project: Path) -> Path:
    """The demo team and calendars in a working folder, every program on."""
    shutil.copytree(ROOT / "config" / "demo", project / "demo")
    text = (ROOT / "config" / "demo.yaml").read_text()
    text = text[: text.index("emails:")] + PROGRAMS.lstrip() + text[text.index("privacy:") :]
    text = text[: text.index("protect:")] if "protect:" in text else text
    (project / "steadyhand.yaml").write_text(text)
    return project


def inbox(folder: Path) -> list[EmailMessage]:
    out = []
    for path in sorted((folder / "var" / "outbox" / "new").glob("*.eml")):
        out.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return out  # type: ignore[return-value]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def key(message: EmailMessage) -> str:
    return str(message["X-Steadyhand-Key"]).strip()  # a long key is folded onto the next line


def one(messages: list[EmailMessage], to: str, program: str) -> EmailMessage:
    found = [m for m in messages if to in m["To"] and key(m).startswith(program + ":")]
    assert len(found) == 1, [key(m) for m in messages]
    return found[0]


def test_followup_after_a_one_on_one_goes_to_both_with_its_commitments(run_cli, team: Path) -> None:
    assert run_cli("run", "--once", "--now", "2026-11-02T11:05:00+01:00").code == 0
    messages = inbox(team)
    ana = one(messages, "ana@example.com", "followup")
    bo = one(messages, "bo@example.com", "followup")
    assert bo["Subject"] == "After your 1:1 with Ana: 2 commitments to confirm"
    body = text_of(bo)
    assert (
        "Bo: draft the Q1 roadmap" in body
        and "Ana: ask Finance about the conference budget" in body
    )
    assert "challenges" in body.lower()  # the second 1:1 of the series: the agenda rotates
    assert "After your 1:1 with Bo" in ana["Subject"]
    assert ana["List-Unsubscribe"] is None  # no link configured: the footer names the admin


def test_overload_heads_up_at_the_start_of_a_heavy_day(run_cli, team: Path) -> None:
    assert run_cli("run", "--once", "--now", "2026-11-05T09:10:00+01:00").code == 0
    ana = one(inbox(team), "ana@example.com", "overload")
    assert ana["Subject"].startswith("A heads-up: today looks heavy")
    body = text_of(ana)
    assert "back to back" in body and "240 min" in body
    assert not [m for m in inbox(team) if "bo@example.com" in m["To"] and "overload" in key(m)]


def test_recognition_on_friday_names_concrete_signals_to_the_leader(run_cli, team: Path) -> None:
    assert run_cli("run", "--once", "--now", "2026-11-06T10:05:00+01:00").code == 0
    ana = one(inbox(team), "ana@example.com", "recognition")
    assert ana["Subject"] == "Your team's week (2026-W45): who to thank"
    lines = text_of(ana).splitlines()
    # every member has a row of their own signals, starting with their name
    rows = {
        line.split(":")[0].strip(): line for line in lines if line.startswith("  ") and ":" in line
    }
    assert rows["Bo Berg"].endswith(
        ": 11.5 h of meetings, 1 overloaded day, 60 min outside working hours"
    )
    assert rows["Cy Chen"].endswith(
        ": 7.5 h of meetings, 1 overloaded day, 1 day without focus time"
    )
    assert "Dee Park" in rows and "Eli Moss" in rows
    # and the suggestions name whom to thank for what, with the figures behind it
    assert (
        "  - Recognise Dee for carrying the heaviest load: 13.0 h of meetings, 2 overloaded days."
        in lines
    )
    assert any(line.startswith("  - Thank Cy for keeping things moving") for line in lines)


def test_digest_on_monday_is_an_email_safe_heat_map(run_cli, team: Path) -> None:
    assert run_cli("run", "--once", "--now", "2026-11-09T09:05:00+01:00").code == 0
    ana = one(inbox(team), "ana@example.com", "digest")
    assert ana["Subject"].startswith("Team load for Platform, 2–8 November 2026")
    html = ana.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<table" in html and "Bo Berg" in html
    assert (
        "<script" not in html
        and "<svg" not in html
        and "http" not in html.split("List-Unsubscribe")[0]
    )


def test_digest_respects_the_privacy_threshold(run_cli, team: Path) -> None:
    config = team / "steadyhand.yaml"
    config.write_text(config.read_text().replace("min_team_size: 5", "min_team_size: 6"))
    assert run_cli("run", "--once", "--now", "2026-11-09T09:05:00+01:00").code == 0
    body = " ".join(text_of(one(inbox(team), "ana@example.com", "digest")).split())
    assert "Bo Berg" not in body
    assert "Team figures are shared only for teams of at least 6 people" in body
    assert "This digest shows no per-person figures for Platform" in body


def test_every_send_happens_once_and_inside_working_hours(run_cli, team: Path) -> None:
    for moment in (
        "2026-11-05T09:10:00+01:00",
        "2026-11-05T09:20:00+01:00",
        "2026-11-05T16:45:00+01:00",
        "2026-11-05T16:50:00+01:00",
    ):
        assert run_cli("run", "--once", "--now", moment).code == 0
    keys = [key(m) for m in inbox(team)]
    assert len(keys) == len(set(keys))
    # Ana's reflection and her follow-up of the 1:1 with Eli fell due together over her
    # daily cap (overload already sent): they arrive bundled in one email
    bundle = one(inbox(team), "ana@example.com", "bundle")
    assert "Your day, Thursday 5 November" in text_of(bundle) and "1:1 with Eli" in text_of(bundle)
    for m in inbox(team):
        hour = (
            email.utils.parsedate_to_datetime(m["Date"])
            .astimezone(
                __import__("zoneinfo").ZoneInfo(
                    "Europe/Berlin"
                    if "ana@" in m["To"] or "bo@" in m["To"] or "cy@" in m["To"]
                    else "America/New_York"
                )
            )
            .hour
        )
        assert 8 <= hour < 18


def test_max_per_day_bundles_never_drops(run_cli, team: Path) -> None:
    config = team / "steadyhand.yaml"
    config.write_text(config.read_text().replace("max_per_day: 2", "max_per_day: 1"))
    run_cli("run", "--once", "--now", "2026-11-05T09:10:00+01:00")  # the overload heads-up
    run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00")  # reflection: over the cap
    assert [key(m).split(":")[0] for m in inbox(team) if "ana@" in m["To"]] == ["overload"]
    run_cli("run", "--once", "--now", "2026-11-06T09:05:00+01:00")  # next working morning
    ana = [m for m in inbox(team) if "ana@" in m["To"]]
    bundle = one(ana, "ana@example.com", "bundle")
    assert bundle["Subject"] == "2 notes from steadyhand, in one email"
    assert "Your day, Thursday 5 November" in text_of(bundle) and "1:1 with Eli" in text_of(bundle)
    audit = run_cli("audit", "--person", "ana@example.com").out
    assert "bundled" in audit


def test_unsubscribe_is_honoured_before_every_send(run_cli, team: Path) -> None:
    result = run_cli("unsubscribe", "bo@example.com", "--program", "followup")
    assert result.code == 0 and "bo@example.com will get no more followup emails." in result.out
    assert (
        "already opted out" in run_cli("unsubscribe", "bo@example.com", "--program", "followup").out
    )
    run_cli("run", "--once", "--now", "2026-11-02T11:05:00+01:00")
    assert not [m for m in inbox(team) if "bo@example.com" in m["To"]]
    assert [m for m in inbox(team) if "ana@example.com" in m["To"]]
    assert run_cli("unsubscribe", "bo@example.com", "--program", "newsletter").code == 2


def test_preview_renders_one_without_sending(run_cli, team: Path) -> None:
    result = run_cli(
        "emails",
        "preview",
        "followup",
        "--to",
        "bo@example.com",
        "--date",
        "2026-11-02",
        "--now",
        "2026-11-02T12:00:00+01:00",
    )
    assert result.code == 0, result.err
    assert "Subject: After your 1:1 with Ana: 2 commitments to confirm" in result.out
    assert "Bo: draft the Q1 roadmap" in result.out
    assert inbox(team) == []  # a preview sends nothing
    bad = run_cli("emails", "preview", "newsletter", "--to", "bo@example.com")
    assert bad.code == 2 and "no email program named 'newsletter'" in bad.err


def test_recognize_sends_the_leaders_note_cc_the_leader(run_cli, team: Path) -> None:
    result = run_cli(
        "recognize",
        "bo@example.com",
        "--for",
        "Steering the incident review with calm",
        "--now",
        "2026-11-04T11:00:00+01:00",
    )
    assert result.code == 0, result.err
    assert "Sent to Bo Berg <bo@example.com>." in result.out
    (note,) = [m for m in inbox(team) if key(m).startswith("recognize:")]
    assert note["To"] == "Bo Berg <bo@example.com>" and note["Cc"] == "Ana Lima <ana@example.com>"
    assert note["Subject"] == "A note from Ana Lima"
    assert "Steering the incident review with calm" in text_of(note)
    later = run_cli(
        "recognize", "dee@example.com", "--for", "Great demo", "--now", "2026-11-04T11:00:00+01:00"
    )
    assert "Queued: it reaches Dee Park at Wed 04 Nov 09:00 America/New_York" in later.out
