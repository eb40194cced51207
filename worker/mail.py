"""Render a program's templates into an :class:`email.message.EmailMessage`.

Templates are a pair per program, ``NAME.txt.j2`` and ``NAME.html.j2``, looked up first
in ``mail.templates`` (a team's overrides) and then in the shipped ``templates/``. The
text template's first line is ``Subject: …``; the rest is the plain-text body.

Safety: templates run in Jinja2's immutable sandbox with ``StrictUndefined`` (a typo is
an error, not an empty string) and autoescape for HTML; they see only the plain dict of
values a program passes (never settings or clients); each part is capped in size.
Headers are built from ``Address`` objects; a display name with CR/LF or an address
that is really two is refused.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from connectors.base import Problem, UserError
from worker.model import UTC
from worker.resources import shipped

MAX_PART_BYTES = 256 * 1024


class TemplateProblem(UserError):
    """A template does not compile or render."""


@functools.lru_cache(maxsize=8)
def environment(overrides: Path | None = None) -> ImmutableSandboxedEnvironment:
    """The template environment (cached: compiled templates are kept; Jinja2 still
    reloads a template whose file changed). Safe to share between threads."""
    folders = [str(overrides)] if overrides else []
    folders.append(str(shipped("templates")))
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_templates(env: ImmutableSandboxedEnvironment) -> list[Problem]:
    """Compile every template ``env`` can see; one problem per template that does not."""
    problems = []
    for name in env.list_templates(extensions=["j2"]):
        try:
            env.get_template(name)
        except TemplateError as exc:
            where, line = _template_position(exc, name)
            problems.append(Problem(f"template error: {exc}", "fix the template", where, line))
    return problems


def render(
    env: ImmutableSandboxedEnvironment, program: str, context: Mapping[str, Any]
) -> tuple[str, str, str]:
    """``(subject, text, html)`` for ``program`` rendered with ``context``."""
    parts = []
    for suffix in ("txt", "html"):
        name = f"{program}.{suffix}.j2"
        try:
            output = env.get_template(name).render(**context)
        except TemplateError as exc:
            where, line = _template_position(exc, name)
            raise TemplateProblem(
                Problem(f"template error: {exc}", "fix the template", where, line)
            ) from exc
        if len(output.encode()) > MAX_PART_BYTES:
            raise TemplateProblem(
                Problem(f"rendered {name} is over {MAX_PART_BYTES} bytes", "shorten the template")
            )
        parts.append(output)
    text, html = parts
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise TemplateProblem(
            Problem(
                "the first line must be 'Subject: …'", "add a subject line", f"{program}.txt.j2", 1
            )
        )
    subject = " ".join(first[len("Subject:") :].split())
    return subject, body.lstrip("\n"), html


def _template_position(exc: TemplateError, name: str) -> tuple[str, int | None]:
    """File and line of a template error: syntax errors carry them, runtime ones are found
    in the traceback, where Jinja2 puts the template's own file and line."""
    filename = getattr(exc, "filename", None)
    line = getattr(exc, "lineno", None)
    if line is None:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.endswith(name):
                filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
    return filename or name, line


def address(text: str) -> Address:
    """Parse one ``Name <user@host>`` into an Address, refusing header injection."""
    if "\r" in text or "\n" in text:
        raise UserError(Problem(f"address {text!r} contains a line break", "remove it"))
    if len(getaddresses([text])) != 1:
        raise UserError(Problem(f"{text!r} is more than one address", "give exactly one"))
    name, addr = parseaddr(text)
    user, at, domain = addr.partition("@")
    if not at or not user or not domain or " " in addr:
        raise UserError(Problem(f"{text!r} is not an email address", "write name@example.com"))
    return Address(display_name=name, username=user, domain=domain)


def recipient(name: str, email_address: str) -> Address:
    """An Address from a display name and one address; CR/LF or two addresses are refused."""
    if any(c in name for c in "\r\n"):
        raise UserError(Problem(f"name {name!r} contains a line break", "remove it in the config"))
    parsed = address(email_address)
    return Address(display_name=name, username=parsed.username, domain=parsed.domain)


def bundle_context(
    env: ImmutableSandboxedEnvironment, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """Render each part of a bundle with its own program's templates, for bundle.*.j2."""
    parts = []
    for part in payload["parts"]:
        subject, text, html = render(env, part["program"], part["payload"])
        body = re.search(r"<body[^>]*>(.*)</body>", html, re.S | re.I)
        parts.append({"subject": subject, "text": text, "html": Markup(body[1] if body else html)})
    return {"name": payload["name"], "first_name": payload["first_name"], "parts": parts}


def unsubscribe_link(base: str | None, email_address: str, program: str) -> str | None:
    """The one-click URL (RFC 8058) for ``email_address`` and ``program``, signed with
    ``STEADYHAND_SECRET_KEY`` so nobody can unsubscribe someone else; None without a base."""
    if not base:
        return None
    key = os.environ.get("STEADYHAND_SECRET_KEY", "").encode()
    sig = hmac.new(key, f"{email_address.lower()}:{program}".encode(), hashlib.sha256).hexdigest()[
        :32
    ]
    sep = "&" if "?" in base else "?"
    query = urlencode({"email": email_address.lower(), "program": program, "sig": sig})
    return f"{base}{sep}{query}"


def message_id(key: str, domain: str) -> str:
    """A Message-ID derived from the idempotency key: the same send has the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build(
    *,
    sender: str,
    to: Sequence[Address],
    subject: str,
    text: str,
    html: str,
    key: str,
    program: str,
    sent_at: Any,
    unsubscribe_url: str | None = None,
    cc: Sequence[Address] = (),
) -> EmailMessage:
    """A multipart/alternative message with our headers (Message-ID, List-Unsubscribe)."""
    from_addr = address(sender)
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = list(to)
    if cc:
        msg["Cc"] = list(cc)
    if "\n" in subject or "\r" in subject:
        raise UserError(Problem("subject contains a line break", "fix the template's Subject line"))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent_at.astimezone(UTC))
    msg["Message-ID"] = message_id(key, from_addr.domain)
    msg["X-Steadyhand-Key"] = key
    msg["Auto-Submitted"] = "auto-generated"
    mailto = f"mailto:{from_addr.addr_spec}?subject={quote('unsubscribe ' + program)}"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>, <{mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        msg["List-Unsubscribe"] = f"<{mailto}>"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
