"""One-click unsubscribe links that cannot be forged, in one plain header (issue 10, item 6;
since issue 13 made by :class:`worker.links.Links`)."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from email.parser import BytesParser
from email.policy import SMTP
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from connectors.smtp import MaildirTransport, SmtpTransport
from tests.conftest import write
from tests.test_smtp import Server
from tests.tz import BERLIN
from worker import mail
from worker.core.errors import UserError
from worker.links import BadLink, Claim, Links, Purpose

NOW = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)
BASE = "https://steadyhand.example.com/unsubscribe"
#: A base URL that makes a 300-character link (real links are that long: path, token).
LONG_BASE = "https://steadyhand.example.com/u/" + "p" * 180


def message(url: str | None, program: str = "reflection") -> email.message.EmailMessage:
    return mail.build(
        sender="Steadyhand <steadyhand@example.com>",
        to=[mail.recipient("Ana Lima", "ana@example.com")],
        subject="Your day",
        text="text",
        html="<p>html</p>",
        key=f"{program}:ana@example.com:2026-11-05",
        program=program,
        sent_at=NOW,
        unsubscribe_url=url,
    )


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


@pytest.mark.parametrize("key", [None, ""], ids=["unset", "empty"])
def test_without_a_secret_key_emails_carry_no_list_unsubscribe(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    if key is None:
        monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("STEADYHAND_SECRET_KEY", key)
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
people: [{{email: ana@example.com, name: Ana Lima}}]
mail: {{from: "Steadyhand <steadyhand@example.com>", outbox: var/outbox,
        unsubscribe_url: "{BASE}"}}
emails:
  reflection: {{to: everyone, at: "16:30"}}
""",
    )
    assert run_cli("run", "--once", "--now", "2026-11-05T16:45:00+01:00").code == 0
    (path,) = (project / "var" / "outbox" / "new").glob("*.eml")
    msg = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
    assert msg["List-Unsubscribe"] is None  # a mailto would go to no one who reads it
    assert msg["List-Unsubscribe-Post"] is None
    assert b"https://" not in path.read_bytes().split(b"\n\n", 1)[0]


def test_a_signed_link_names_its_recipient_and_program_and_nothing_else_opens_it() -> None:
    links = Links("k1", unsubscribe_url=BASE)
    link = links.unsubscribe_link("Ana@Example.com", "digest", "2026-W45", NOW)
    assert link is not None and link.startswith(BASE + "?token=")
    token = token_of(link)
    assert links.verify(Purpose.UNSUBSCRIBE, token, NOW) == Claim(
        Purpose.UNSUBSCRIBE, "ana@example.com", "digest", "2026-W45"
    )
    with_query = Links("k1", unsubscribe_url=BASE + "?team=a")
    assert str(with_query.unsubscribe_link("ana@example.com", "digest", "", NOW)).startswith(
        BASE + "?team=a&token="
    )
    # tampered: another recipient in the payload, or one character of the signature
    forged = URLSafeTimedSerializer("guess", salt="unsubscribe").dumps(
        {"e": "bo@example.com", "p": "*", "d": ""}
    )
    # (the first character of the signature: the last one may carry only padding bits)
    at = token.rindex(".") + 1
    flipped = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
    # foreign: the right key but another purpose (salt), or the same token under another key
    other_purpose = Links("k1").token(Purpose.ANSWER, "ana@example.com", "digest", "", NOW)
    for bad in (forged, flipped, other_purpose, "", "not-a-token", token + "x"):
        with pytest.raises(BadLink) as refused:
            links.verify(Purpose.UNSUBSCRIBE, bad, NOW)
        assert refused.value.reason == "invalid"
    with pytest.raises(BadLink, match="invalid"):
        Links("k2").verify(Purpose.UNSUBSCRIBE, token, NOW)


def test_a_link_expires_after_180_days() -> None:
    links = Links("k1", unsubscribe_url=BASE)
    link = links.unsubscribe_link("ana@example.com", "reflection", "2026-11-05", NOW)
    assert link is not None
    later = links.verify(Purpose.UNSUBSCRIBE, token_of(link), NOW + timedelta(days=179))
    assert (later.email, later.program) == ("ana@example.com", "reflection")
    with pytest.raises(BadLink, match="expired"):
        links.verify(Purpose.UNSUBSCRIBE, token_of(link), NOW + timedelta(days=181))


def test_a_bundles_link_opts_out_of_every_email() -> None:
    links = Links("k1", unsubscribe_url=BASE)
    link = links.unsubscribe_link("ana@example.com", "bundle", "2026-11-05", NOW)
    assert link is not None and "bundle" not in link
    claim = links.verify(Purpose.UNSUBSCRIBE, token_of(link), NOW)
    assert (claim.email, claim.program) == ("ana@example.com", "*")
    msg = message(link, program="bundle")
    assert msg["List-Unsubscribe"] == f"<{link}>"


def plain_header(raw: bytes, link: str) -> None:
    """What a mail program reads: the header is the link, exactly (and no mailto)."""
    assert b"=?utf-8?" not in raw.lower()
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert parsed["List-Unsubscribe"] == f"<{link}>"
    (line,) = [x for x in raw.splitlines() if x.startswith(b"List-Unsubscribe:")]
    assert line == f"List-Unsubscribe: <{link}>".encode()


def test_a_300_character_link_stays_one_plain_header_line(tmp_path: Path) -> None:
    link = Links("k1", unsubscribe_url=LONG_BASE).unsubscribe_link(
        "ana@example.com", "reflection", "2026-11-05", NOW
    )
    assert link is not None and len(link) >= 300
    msg = message(link)
    for raw in (msg.as_bytes(), msg.as_bytes(policy=SMTP), bytes(msg)):
        plain_header(raw, link)
    MaildirTransport(tmp_path / "outbox").send(msg)  # the outbox file
    (path,) = (tmp_path / "outbox" / "new").glob("*.eml")
    plain_header(path.read_bytes(), link)
    server = Server(tmp_path / "inbox")  # and on the SMTP wire
    try:
        transport = SmtpTransport("127.0.0.1", server.port, "none", timeout=10)
        transport.send(msg)
        transport.close()
        (wire,) = sorted((tmp_path / "inbox").glob("*.eml"))
        plain_header(wire.read_bytes(), link)
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/u\r\nBcc: evil@example.org",
        "https://x.example/u\n",
        "https://x.example/ü",
        "https://x.example/" + "a" * 1000,
        "https://x.example/u v",
        "https://x.example/u>, <https://evil.example/",
    ],
    ids=["CRLF", "LF", "non-ASCII", "too long", "space", "a second URL"],
)
def test_a_header_unsafe_link_is_refused_not_sent(url: str) -> None:
    with pytest.raises(UserError, match=r"(?i)unsubscribe"):
        message(url)


def test_a_link_made_by_a_clock_a_little_ahead_still_opens_and_expires_on_time() -> None:
    """`run` and `serve` on two machines: a link stamped up to five minutes ahead of the
    checking clock opens (not "expired"); one from further ahead is refused; the 14 days
    of an answer link are counted exactly."""
    links = Links("k1", "https://steadyhand.example.com")
    token = links.token(Purpose.ANSWER, "ana@example.com", "reflection", "2026-11-05", NOW)
    assert links.verify(Purpose.ANSWER, token, NOW - timedelta(minutes=4)).program == "reflection"
    with pytest.raises(BadLink):
        links.verify(Purpose.ANSWER, token, NOW - timedelta(minutes=6))
    links.verify(Purpose.ANSWER, token, NOW + timedelta(days=14) - timedelta(seconds=1))
    with pytest.raises(BadLink, match="expired"):
        links.verify(Purpose.ANSWER, token, NOW + timedelta(days=14, seconds=2))
    field = links.csrf(token, NOW)
    links.check_csrf(field, token, NOW - timedelta(minutes=4))


def test_another_signed_value_cannot_take_the_salt_of_a_link_or_a_csrf_field() -> None:
    links = Links("k1", "https://steadyhand.example.com")
    for salt in ("answer", "journal", "unsubscribe", "preferences", "csrf"):
        with pytest.raises(ValueError, match="belongs to a link purpose or CSRF"):
            links.serializer(salt, NOW)
    session = links.serializer("session", NOW).dumps({"e": "ana@example.com"})
    with pytest.raises(BadLink):  # a session cookie is no answer link
        links.verify(Purpose.ANSWER, session, NOW)
