"""The links in real emails: a reflection's "How was today?" row, "Add a note" and "Your
last 30 days"; every email's preferences link and one-click unsubscribe; none of them
without the secret key (links fail closed); and the demo that shows them (issue 13)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import json
import os
import re
import shutil
import stat
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, write
from tests.tz import BERLIN
from worker import mail_links
from worker.links import Claim, Links, Purpose

KEY = "email-links-test-key"
BASE = "http://127.0.0.1:8080"
NOW = "2026-11-05T16:45:00+01:00"
SENT = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
#: Every link of ours: {base}/{purpose}/{token}[?score=N].
LINK = re.compile(r"https?://[^\s\"<>]+")

PROGRAMS = """
emails:
  reflection: {to: leaders, at: "16:30", days: mon-fri}
  recognition: {to: leaders, at: "fri 10:00"}
  followup: {after: one_on_one, delay: 30m}
  overload: {to: person, notify_leader: false, lookahead: 1d}
  digest: {to: leaders, at: "mon 08:30"}
"""


@pytest.fixture
def demo(project: Path) -> Path:
    """The demo team (reflections to everyone at 16:30, web.base_url on this machine)."""
    shutil.copytree(ROOT / "config" / "demo", project / "demo")
    text = (ROOT / "config" / "demo.yaml").read_text()
    assert f'web: {{base_url: "{BASE}"}}' in text
    (project / "steadyhand.yaml").write_text(text[: text.index("protect:")])
    return project


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    return KEY


def inbox(folder: Path) -> list[EmailMessage]:
    out = []
    for path in sorted((folder / "var" / "outbox" / "new").glob("*.eml")):
        out.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return out  # type: ignore[return-value]


def key_of(message: EmailMessage) -> str:
    return "".join(str(message["X-Steadyhand-Key"]).split())  # a long key may be folded


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, page = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and page is not None
    return str(text.get_content()), str(page.get_content())


def links_in(message: EmailMessage) -> tuple[list[str], list[str]]:
    """The URLs of the text part (as written) and of the HTML part's hrefs (unescaped)."""
    text, page = bodies(message)
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]
    return LINK.findall(text), hrefs


def claim_of(url: str, purpose: Purpose, at: datetime = SENT) -> Claim:
    """The claim of one of our links, checked at ``at`` (when its email was sent)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    head, token = parts.path.rsplit("/", 1)
    assert head == f"/{purpose.value}"
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token), token  # URL-safe as it is
    return Links(KEY).verify(purpose, unquote(token), at)


def sent_at(message: EmailMessage) -> datetime:
    return email.utils.parsedate_to_datetime(str(message["Date"]))


def test_a_reflection_carries_five_score_links_a_note_and_the_journal(
    run_cli, demo: Path, keyed: str
) -> None:
    assert run_cli("run", "--once", "--now", NOW).code == 0
    reflections = inbox(demo)
    assert sorted(key_of(m).split(":", 1)[1] for m in reflections) == [
        "ana@example.com:2026-11-05",
        "bo@example.com:2026-11-05",
        "cy@example.com:2026-11-05",
        "eli@example.com:2026-11-04",  # a day late: it asks about "your Wednesday"
    ]
    for message in reflections:
        _, recipient, day = key_of(message).split(":")
        expected = Claim(Purpose.ANSWER, recipient, "reflection", day)
        text, page = bodies(message)
        for found in links_in(message):
            answers = [u for u in found if "/answer/" in u]
            scored = [u for u in answers if "score=" in u]
            assert [parse_qs(urlsplit(u).query)["score"] for u in scored] == [
                ["1"],
                ["2"],
                ["3"],
                ["4"],
                ["5"],
            ]
            assert len([u for u in answers if "score=" not in u]) == 1  # "Add a note"
            for url in answers:
                assert claim_of(url, Purpose.ANSWER) == expected
            (journal,) = [u for u in found if "/journal/" in u]
            assert claim_of(journal, Purpose.JOURNAL) == Claim(
                Purpose.JOURNAL, recipient, "reflection", day
            )
        asked = "How was your Wednesday?" if recipient.startswith("eli") else "How was today?"
        assert asked in text and asked in page
        assert re.search(r"^  1 rough +http\S+score=1$", text, re.M)
        assert re.search(r"^  5 great +http\S+score=5$", text, re.M)
        assert re.search(r"^Add a note: http\S+/answer/[\w.\-]+$", text, re.M)
        assert re.search(r"^Your last 30 days, for your eyes only: http\S+$", text, re.M)
        # the HTML row: five plain links styled as buttons (inline styles, no script)
        buttons = re.findall(r'<a href="[^"]*score=(\d)"[^>]*style="([^"]*)"[^>]*>(\d)</a>', page)
        assert [(n, shown) for n, _, shown in buttons] == [(str(i), str(i)) for i in range(1, 6)]
        assert all("border" in style and "padding" in style for _, style, _ in buttons)
        assert ">rough</td>" in page and ">great</td>" in page and "<script" not in page
        assert ">Add a note</a>" in page and ">Your last 30 days</a>" in page
        assert "reply" not in text.lower() and "reply" not in page.lower()


def programs_at(run_cli, project: Path) -> list[EmailMessage]:
    """Every program's email, from real runs over the demo's weeks (Ana's Thursday
    reflection and follow-up arrive bundled, over her daily cap; Friday's comes alone)."""
    for moment in ("2026-11-02T11:05:00+01:00", "2026-11-05T09:10:00+01:00", NOW):
        assert run_cli("run", "--once", "--now", moment).code == 0
    later = ("2026-11-06T10:05:00+01:00", "2026-11-06T16:45:00+01:00", "2026-11-09T09:05:00+01:00")
    for moment in later:
        assert run_cli("run", "--once", "--now", moment).code == 0
    note = ("recognize", "bo@example.com", "--for", "Calm review", "--now", NOW)
    assert run_cli(*note).code == 0
    return inbox(project)


@pytest.fixture
def team(demo: Path) -> Path:
    """The demo team with every program on."""
    config = demo / "steadyhand.yaml"
    text = config.read_text()
    text = text[: text.index("emails:")] + PROGRAMS.lstrip() + text[text.index("privacy:") :]
    config.write_text(text)
    return demo


def test_every_programs_email_has_a_preferences_link_and_one_click_unsubscribe(
    run_cli, team: Path, keyed: str
) -> None:
    messages = programs_at(run_cli, team)
    programs = {key_of(m).split(":")[0] for m in messages}
    assert programs == {
        "bundle",
        "digest",
        "followup",
        "overload",
        "recognition",
        "recognize",
        "reflection",
    }
    for message in messages:
        program, recipient, period = key_of(message).split(":", 2)
        header = str(message["List-Unsubscribe"])
        assert header.startswith(f"<{BASE}/unsubscribe/") and header.endswith(">"), header
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        opted = claim_of(header[1:-1], Purpose.UNSUBSCRIBE, sent_at(message))
        # a bundle holds several programs: its link opts out of every email
        wanted = "*" if program == "bundle" else program
        assert opted == Claim(Purpose.UNSUBSCRIBE, recipient, wanted, period)
        text, page = bodies(message)
        assert f"To unsubscribe, open this link: {header[1:-1]}" in text
        assert f'<a href="{html.escape(header[1:-1])}"' in page
        for found in links_in(message):
            preferences = [u for u in found if "/preferences/" in u]
            assert preferences, (program, found)
            for url in preferences:
                claim = claim_of(url, Purpose.PREFERENCES, sent_at(message))
                assert claim.email == recipient
        assert re.search(r"^Your email preferences: http\S+/preferences/\S+$", text, re.M)
        assert ">Your email preferences</a>" in page
    # the bundle's reflection part keeps its own answer links, for its own day
    (bundle,) = [m for m in messages if key_of(m).startswith("bundle:")]
    text, _ = bodies(bundle)
    answers = [u for u in LINK.findall(text) if "/answer/" in u]
    assert len(answers) == 6
    claims = {claim_of(u, Purpose.ANSWER, sent_at(bundle)) for u in answers}
    assert claims == {Claim(Purpose.ANSWER, "ana@example.com", "reflection", "2026-11-05")}


def test_without_the_key_no_links_anywhere_and_the_footer_names_the_command(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    messages = programs_at(run_cli, team)
    assert len({key_of(m).split(":")[0] for m in messages}) == 7
    for message in messages:
        recipient = key_of(message).split(":")[1]
        assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
        text, page = bodies(message)
        assert links_in(message) == ([], [])
        assert "http" not in text and "http" not in page
        assert "How was" not in text and "preferences" not in text.lower()
        command = f"steadyhand unsubscribe {recipient} --program"
        assert command in text and command in page


def test_with_the_key_but_no_base_url_there_are_no_web_links(
    run_cli, demo: Path, keyed: str
) -> None:
    config = demo / "steadyhand.yaml"
    config.write_text(config.read_text().replace(f'web: {{base_url: "{BASE}"}}\n', ""))
    assert run_cli("run", "--once", "--now", NOW).code == 0
    messages = inbox(demo)
    assert len(messages) == 4
    for message in messages:
        assert message["List-Unsubscribe"] is None
        assert links_in(message) == ([], [])
        text, _ = bodies(message)
        assert "How was" not in text and "steadyhand unsubscribe" in text


def test_with_mail_unsubscribe_url_list_unsubscribe_goes_there(
    run_cli, demo: Path, keyed: str
) -> None:
    own = "https://optout.example.com/steadyhand"
    config = demo / "steadyhand.yaml"
    config.write_text(
        config.read_text().replace(
            "  max_per_day: 2\n", f"  max_per_day: 2\n  unsubscribe_url: {own}\n"
        )
    )
    assert run_cli("run", "--once", "--now", NOW).code == 0
    for message in inbox(demo):
        _, recipient, day = key_of(message).split(":")
        header = str(message["List-Unsubscribe"])
        assert header.startswith(f"<{own}?token=")
        token = header[1:-1].split("token=", 1)[1]
        claim = Links(KEY).verify(Purpose.UNSUBSCRIBE, token, SENT)
        assert claim == Claim(Purpose.UNSUBSCRIBE, recipient, "reflection", day)
        text, _ = bodies(message)
        assert f"To unsubscribe, open this link: {header[1:-1]}" in text
        # the web links still point at steadyhand serve
        assert any("/preferences/" in u for u in LINK.findall(text))
        assert sum("/answer/" in u for u in LINK.findall(text)) == 6


def test_odd_names_and_addresses_never_break_a_link(run_cli, project: Path, keyed: str) -> None:
    odd = "o'brien+team.x=1%2F?&@example.com"
    name = 'Zoë "Zed" O\'Brien — <Łukasz> ✓'
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
people: [{{email: "{odd}", name: {json.dumps(name)}}}]
mail: {{from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox}}
web: {{base_url: "{BASE}"}}
emails:
  reflection: {{to: everyone, at: "16:30"}}
""",
    )
    assert run_cli("run", "--once", "--now", NOW).code == 0
    (path,) = (project / "var" / "outbox" / "new").glob("*.eml")
    raw = path.read_bytes()
    (line,) = [x for x in raw.splitlines() if x.startswith(b"List-Unsubscribe:")]
    assert re.fullmatch(rb"List-Unsubscribe: <http://127\.0\.0\.1:8080/unsubscribe/[\w.\-]+>", line)
    (message,) = inbox(project)
    opted = claim_of(str(message["List-Unsubscribe"])[1:-1], Purpose.UNSUBSCRIBE)
    assert opted.email == odd.lower()
    text, hrefs = links_in(message)
    assert len(text) == len(hrefs) == 9  # 5 scores, note, journal, unsubscribe, preferences
    for url in text + hrefs:
        purpose = Purpose(urlsplit(url).path.split("/")[1])
        assert claim_of(url, purpose).email == odd.lower()


@settings(max_examples=150, deadline=None)
@given(
    address=st.text(min_size=1, max_size=300),
    program=st.sampled_from(["reflection", "digest", "bundle", "overload"]),
    period=st.text(max_size=40),
)
def test_any_address_makes_url_safe_links_that_verify(
    address: str, program: str, period: str
) -> None:
    links = Links(KEY, BASE)
    values = mail_links.link_values(links, address, program, period, SENT)
    urls = [values["unsubscribe"], values["preferences"]]
    if program == "reflection":
        urls += [s["url"] for s in values["scores"]] + [values["note"], values["journal"]]
    for url in urls:
        assert isinstance(url, str)
        assert re.fullmatch(
            r"http://127\.0\.0\.1:8080/(answer|journal|unsubscribe|preferences)/[\w.\-]+"
            r"(\?score=[1-5])?",
            url,
        ), url
        purpose = Purpose(urlsplit(url).path.split("/")[1])
        claim = Links(KEY).verify(purpose, urlsplit(url).path.rsplit("/", 1)[1], SENT)
        assert claim.email == address.lower()


def test_config_check_warns_that_base_url_without_the_key_makes_no_links(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    write(
        project / "steadyhand.yaml",
        f'people: [{{email: ana@example.com}}]\nweb:\n  base_url: "{BASE}"\n',
    )
    result = run_cli("config", "check")
    assert result.code == 0
    assert (
        "steadyhand.yaml:3: web.base_url: web.base_url is set but "
        "STEADYHAND_SECRET_KEY is not: emails will carry no web links"
    ) in result.err
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", KEY)
    assert run_cli("config", "check").err == ""


def test_the_demo_makes_its_key_once_and_prints_a_link_from_its_email(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    first = run_cli("demo")
    assert first.code == 0, first.err
    secret = project / "var" / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = secret.read_text().strip()
    lines = first.out.splitlines()
    at = lines.index("Try the web side: run")
    assert lines[at + 1] == "  .venv/bin/steadyhand serve --demo"
    assert (
        lines[at + 2] == 'then open the "How was today?" link of Ana Lima\'s reflection (score 4):'
    )
    link = lines[at + 3].strip()
    assert all(len(line) <= 80 for line in lines[at : at + 3])
    # the link is the one in Ana's email, and it opens her answer page for the day
    (ana,) = [m for m in inbox(project) if key_of(m) == "reflection:ana@example.com:2026-11-05"]
    assert link in bodies(ana)[0]
    token = urlsplit(link).path.rsplit("/", 1)[1]
    assert Links(key).verify(Purpose.ANSWER, token, SENT) == Claim(
        Purpose.ANSWER, "ana@example.com", "reflection", "2026-11-05"
    )
    # the key is not left in this process's environment, and a rerun keeps it
    assert "STEADYHAND_SECRET_KEY" not in os.environ
    again = run_cli("demo")
    assert again.code == 0 and secret.read_text().strip() == key
    assert link in again.out
