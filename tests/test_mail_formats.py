"""How an email is written for its reader: Maildir files with LF line endings, SMTP with
BODY=8BITMIME or 7-bit transfer encodings as the server allows, and footers that name
only opt-out routes that work."""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from connectors.smtp import MaildirTransport, SmtpTransport
from tests.conftest import ROOT, Result
from worker import mail
from worker.links import Links, Purpose
from worker.programs import samples

NAME = "Zoë Åberg"
TEXT = "Hi Zoë,\n\nYour day – 09:00–11:00 focus, then meetings – fine.\n"
HTML = "<p>Hi Zoë,</p><p>Your day – 09:00–11:00 focus.</p>\n"


def message(key: str = "reflection:zoe@example.com:2026-11-05") -> EmailMessage:
    return mail.build(
        sender="Steadyhand <steadyhand@example.com>",
        to=[mail.recipient(NAME, "zoe@example.com")],
        subject="Your day – Thursday 5 November",
        text=TEXT,
        html=HTML,
        key=key,
        program="reflection",
        sent_at=datetime(2026, 11, 5, 15, 45, tzinfo=UTC),
    )


def read(raw: bytes) -> EmailMessage:
    """Parse as a mail store does: the wire's CRLF become its own line endings."""
    parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def assert_intact(received: EmailMessage) -> None:
    assert received["To"] == f"{NAME} <zoe@example.com>"
    assert received["Subject"] == "Your day – Thursday 5 November"
    plain, html = (received.get_body((kind,)) for kind in ("plain", "html"))
    assert plain is not None and plain.get_content() == TEXT
    assert html is not None and html.get_content() == HTML


# -- Maildir ---------------------------------------------------------------------------


def test_an_outbox_file_has_lf_line_endings_and_reads_back_in_a_maildir_reader(
    tmp_path: Path,
) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    path = Path(outbox.send(message()))
    raw = path.read_bytes()
    assert b"\r\n" not in raw and b"\r" not in raw  # mutt would show ^M after each line
    assert b"\nSubject: " in raw and b"\n\n" in raw  # headers, a blank line, the body
    assert_intact(read(raw))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    (only,) = list(mailbox.Maildir(tmp_path / "outbox", factory=None))
    assert only["Message-ID"] == mail.message_id(
        "reflection:zoe@example.com:2026-11-05", "example.com"
    )
    assert only["X-Steadyhand-Key"] == "reflection:zoe@example.com:2026-11-05"


def test_a_resend_after_a_crash_still_leaves_one_outbox_file(tmp_path: Path) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    assert outbox.send(message()) == outbox.send(message())
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1


# -- SMTP, with and without 8BITMIME ---------------------------------------------------


@dataclass
class Received:
    mail_options: list[str]
    raw: bytes


@dataclass
class Keep:
    """An aiosmtpd handler that keeps each message with its MAIL FROM options."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(Received(list(envelope.mail_options), envelope.original_content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["8bitmime", "7bit"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Keep, int]]:
    """A real aiosmtpd server on loopback. ``7bit``: ``decode_data=True``, which makes
    aiosmtpd offer no 8BITMIME, refuse ``BODY=`` (555) and refuse 8-bit data (500)."""
    keep = Keep()
    port = free_port()
    controller = Controller(
        keep, hostname="127.0.0.1", port=port, decode_data=request.param == "7bit"
    )
    controller.start()
    try:
        yield request.param, keep, port
    finally:
        controller.stop()


def test_smtp_sends_8bit_as_8bitmime_where_offered_and_7bit_where_not(
    server: tuple[str, Keep, int],
) -> None:
    kind, keep, port = server
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=10)
    try:
        transport.send(message("reflection:zoe@example.com:2026-11-05"))
        transport.send(message("reflection:zoe@example.com:2026-11-06"))  # a reused connection
    finally:
        transport.close()
    assert len(keep.received) == 2
    for got in keep.received:
        options = [o.upper() for o in got.mail_options]
        if kind == "8bitmime":
            assert "BODY=8BITMIME" in options
            assert not got.raw.isascii()  # sent as it is, 8-bit
        else:
            assert not any(o.startswith("BODY=") for o in options)
            assert got.raw.isascii()  # not one 8-bit byte to a 7-bit server
            parsed = read(got.raw)
            assert {p["Content-Transfer-Encoding"] for p in parsed.iter_parts()} <= {
                "base64",
                "quoted-printable",
            }
        assert_intact(read(got.raw))


def test_smtp_sends_an_ascii_message_without_a_body_option(server: tuple[str, Keep, int]) -> None:
    _, keep, port = server
    plain = mail.build(
        sender="Steadyhand <steadyhand@example.com>",
        to=[mail.recipient("Ana Lima", "ana@example.com")],
        subject="Your day",
        text="Hi Ana,\n",
        html="<p>Hi Ana,</p>\n",
        key="reflection:ana@example.com:2026-11-05",
        program="reflection",
        sent_at=datetime(2026, 11, 5, 15, 45, tzinfo=UTC),
    )
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=10)
    try:
        transport.send(plain)
    finally:
        transport.close()
    (got,) = keep.received
    assert not any(o.upper().startswith("BODY=") for o in got.mail_options)
    assert read(got.raw).get_body(("plain",)).get_content() == "Hi Ana,\n"  # type: ignore[union-attr]


# -- footers ---------------------------------------------------------------------------

BASE = "https://steadyhand.example.com/unsubscribe"


@pytest.fixture
def demo(project: Path) -> Path:
    """The demo team (reflections to everyone at 16:30, into the Maildir outbox)."""
    shutil.copytree(ROOT / "config" / "demo", project / "demo")
    text = (ROOT / "config" / "demo.yaml").read_text()
    text = text[: text.index("protect:")] if "protect:" in text else text
    (project / "steadyhand.yaml").write_text(text)
    return project


def outbox_of(project: Path, to: str) -> list[EmailMessage]:
    box = mailbox.Maildir(project / "var" / "outbox", factory=None, create=False)
    found = [read(box.get_bytes(k)) for k in box.iterkeys()]
    return [m for m in found if to in str(m["To"])]


def footer(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    content = part.get_content()
    return str(content[content.rindex("Sent by steadyhand") :])


def test_a_footer_with_a_one_click_link_shows_that_link(
    run_cli: Callable[..., Result], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", "footer-test-key")
    config = demo / "steadyhand.yaml"
    config.write_text(
        config.read_text().replace(
            "  max_per_day: 2\n", f"  max_per_day: 2\n  unsubscribe_url: {BASE}\n"
        )
    )
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    (ana,) = outbox_of(demo, "ana@example.com")
    link = str(ana["List-Unsubscribe"]).split(">")[0].lstrip("<")
    assert link.startswith(BASE + "?token=")
    text, html = footer(ana, "plain"), footer(ana, "html")
    assert f"To unsubscribe, open this link: {link}" in text
    assert f'<a href="{link.replace("&", "&amp;")}"' in html
    token = link.split("token=", 1)[1]
    sent = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
    claim = Links("footer-test-key").verify(Purpose.UNSUBSCRIBE, token, sent)  # it works
    assert (claim.email, claim.program) == ("ana@example.com", "reflection")
    for words in (text, html):
        assert "reply" not in words.lower() and "admin" not in words


def test_a_footer_without_a_link_names_the_admin_command_and_never_asks_for_a_reply(
    run_cli: Callable[..., Result], demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    (ana,) = outbox_of(demo, "ana@example.com")
    text, html = footer(ana, "plain"), footer(ana, "html")
    command = "steadyhand unsubscribe ana@example.com --program reflection"
    assert "ask your steadyhand admin to run" in text and command in text
    assert f"<code>{command}</code>" in html
    for words in (text, html):
        assert "reply" not in words.lower() and "http" not in words
    # and the command it names does what the footer says
    assert run_cli("unsubscribe", "ana@example.com", "--program", "reflection").code == 0
    assert run_cli("run", "--once", "--now", "2026-11-06T16:45:00+01:00").code == 0
    assert len(outbox_of(demo, "ana@example.com")) == 1


def test_each_part_of_a_bundle_shows_the_bundles_link() -> None:
    env = mail.environment()
    link = BASE + "?token=bundle-token"
    payload = {**(samples.context("bundle") or {}), "unsubscribe_url": link}
    _, text, html = mail.render(env, "bundle", mail.bundle_context(env, payload))
    assert text.count(f"To unsubscribe, open this link: {link}") == 2  # reflection, overload
    assert html.count(f'<a href="{link}"') == 2
    assert "reply" not in text.replace("reply to each other", "").lower()
