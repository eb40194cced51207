"""Rendering and building emails safely: sandbox, escaping, strict values, clean headers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from connectors.smtp import MaildirTransport
from tests.conftest import write
from tests.tz import BERLIN
from worker import mail
from worker.core.errors import UserError
from worker.core.model import UTC
from worker.links import BadLink, Links, Purpose

NOW = datetime(2026, 11, 5, 16, 45, tzinfo=BERLIN)


def build(**over: object):
    args: dict[str, object] = {
        "sender": "Steadyhand <steadyhand@example.com>",
        "to": [mail.recipient("Ana Lima", "ana@example.com")],
        "subject": "Hello",
        "text": "text body",
        "html": "<p>html body</p>",
        "key": "reflection:ana@example.com:2026-11-05",
        "program": "reflection",
        "sent_at": NOW,
    }
    args.update(over)
    return mail.build(**args)  # type: ignore[arg-type]


def test_a_template_typo_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "reflection.txt.j2", "Subject: Hi\n\nHello {{ nmae }}\n")
    write(tmp_path / "reflection.html.j2", "<p>{{ name }}</p>")
    with pytest.raises(mail.TemplateProblem) as info:
        mail.render(mail.environment(tmp_path), "reflection", {"name": "Ana"})
    (problem,) = info.value.problems
    assert problem.line == 3 and str(problem.file).endswith("reflection.txt.j2")
    assert "'nmae' is undefined" in problem.what


def test_team_templates_win_over_shipped_ones(tmp_path: Path) -> None:
    write(tmp_path / "reflection.txt.j2", "Subject: Ours\n\nHello {{ name }}\n")
    write(tmp_path / "reflection.html.j2", "<p>{{ name }}</p>")
    subject, text, html = mail.render(mail.environment(tmp_path), "reflection", {"name": "<Ana>"})
    assert (subject, text, html) == ("Ours", "Hello <Ana>\n", "<p>&lt;Ana&gt;</p>")


def test_the_sandbox_refuses_reaching_into_python(tmp_path: Path) -> None:
    write(
        tmp_path / "reflection.txt.j2",
        "Subject: x\n\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n",
    )
    write(tmp_path / "reflection.html.j2", "")
    with pytest.raises(mail.TemplateProblem):
        mail.render(mail.environment(tmp_path), "reflection", {})


def test_the_sandbox_is_immutable(tmp_path: Path) -> None:
    write(tmp_path / "reflection.txt.j2", "Subject: x\n\n{{ items.append(1) }}\n")
    write(tmp_path / "reflection.html.j2", "")
    with pytest.raises(mail.TemplateProblem):
        mail.render(mail.environment(tmp_path), "reflection", {"items": []})


def test_output_size_is_capped(tmp_path: Path) -> None:
    write(tmp_path / "reflection.txt.j2", "Subject: x\n\n{{ 'x' * 300000 }}\n")
    write(tmp_path / "reflection.html.j2", "")
    with pytest.raises(mail.TemplateProblem, match="over 262144 bytes"):
        mail.render(mail.environment(tmp_path), "reflection", {})


@pytest.mark.parametrize("name", ["Ana\r\nBcc: evil@example.org", "Ana\nLima"])
def test_a_name_with_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(UserError, match="line break"):
        mail.recipient(name, "ana@example.com")


@pytest.mark.parametrize("address", ["ana@example.com, evil@example.org", "not an address", "ana@"])
def test_an_address_must_be_exactly_one(address: str) -> None:
    with pytest.raises(UserError):
        mail.recipient("Ana", address)


def test_headers_carry_the_key_message_id_and_unsubscribe() -> None:
    msg = build(unsubscribe_url="https://steadyhand.example.com/u/abc")
    assert msg["Message-ID"] == mail.message_id(
        "reflection:ana@example.com:2026-11-05", "example.com"
    )
    assert msg["List-Unsubscribe"] == "<https://steadyhand.example.com/u/abc>"  # no mailto
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"] == "Thu, 05 Nov 2026 15:45:00 +0000"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_maildir_outbox_keeps_one_file_per_message_id(tmp_path: Path) -> None:
    outbox = MaildirTransport(tmp_path / "outbox")
    first = outbox.send(build())
    second = outbox.send(build(subject="Hello again"))  # same key: a resend after a crash
    assert first == second
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 1 and b"Subject: Hello\n" in files[0].read_bytes().replace(b"\r\n", b"\n")
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


def test_config_check_reports_a_broken_team_template_with_its_line(run_cli, project: Path) -> None:
    write(project / "tpl" / "reflection.html.j2", "<p>\n{% if name %}\n<b>{{ name }</b>\n")
    write(project / "steadyhand.yaml", "mail: {templates: tpl}\n")
    result = run_cli("config", "check")
    assert result.code == 2
    assert f"{project / 'tpl' / 'reflection.html.j2'}:3: template error:" in result.err


def test_one_click_unsubscribe_links_are_signed_per_recipient_and_program() -> None:
    # Made by worker.links since issue 13: an itsdangerous token (salt, expiry, period).
    base = "https://steadyhand.example.com/unsubscribe"
    now = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
    links = Links("k1", unsubscribe_url=base)
    ana = links.unsubscribe_link("Ana@example.com", "reflection", "2026-11-05", now)
    assert ana is not None and ana.startswith(base + "?token=")
    token = ana.split("token=", 1)[1]
    claim = links.verify(Purpose.UNSUBSCRIBE, token, now)
    assert (claim.email, claim.program) == ("ana@example.com", "reflection")
    assert ana != links.unsubscribe_link("bo@example.com", "reflection", "2026-11-05", now)
    assert ana != links.unsubscribe_link("ana@example.com", "digest", "2026-11-05", now)
    with pytest.raises(BadLink, match="invalid"):  # unforgeable without the key
        Links("k2").verify(Purpose.UNSUBSCRIBE, token, now)
    assert Links("k1").unsubscribe_link("ana@example.com", "reflection", "", now) is None
