"""Render a program's templates into an :class:`email.message.EmailMessage`.

Templates are a pair per program, ``NAME.txt.j2`` and ``NAME.html.j2``, looked up first
in ``mail.templates`` (a team's overrides) and then in the shipped ``templates/``. The
text template's first line is ``Subject: …``; the rest is the plain-text body.

Safety: templates run in Jinja2's immutable sandbox with ``StrictUndefined`` (a typo is
an error, not an empty string) and autoescape for HTML; they see only the plain dict of
values a program passes (never settings or clients); each part is capped in size, and
every render runs in a budget of time, loop rounds and value sizes (:mod:`worker.sandbox`):
whatever a template does, rendering ends with the email or one :class:`TemplateProblem`.
Headers are built from ``Address`` objects; a display name with CR/LF or an address
that is really two is refused.

Every template also sees ``links`` (:func:`worker.mail_links.with_links`): the email's
signed web links, made with :class:`worker.links.Links` at the send moment; all None
without a secret key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.policy
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from worker.budget import BudgetExceeded, budget
from worker.core.errors import Problem, UserError
from worker.core.model import UTC
from worker.mail_links import NO_LINKS
from worker.programs import samples
from worker.resources import shipped
from worker.sandbox import BudgetedEnvironment

MAX_PART_BYTES = 256 * 1024


class TemplateProblem(UserError):
    """A template does not compile or render."""


@functools.lru_cache(maxsize=8)
def environment(overrides: Path | None = None) -> ImmutableSandboxedEnvironment:
    """The template environment (cached: compiled templates are kept; Jinja2 still
    reloads a template whose file changed). Safe to share between threads."""
    folders = [str(overrides)] if overrides else []
    folders.append(str(shipped("templates")))
    return BudgetedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_templates(env: ImmutableSandboxedEnvironment) -> list[Problem]:
    """Compile every template ``env`` can see, and render each program's templates with
    sample values (without links, then with them) inside the render budget; one problem
    per template that fails."""
    problems = []
    # bundle.* last: its trial renders other programs' templates, whose problems are known
    names = sorted(env.list_templates(extensions=["j2"]), key=lambda n: n.startswith("bundle."))
    for name in names:
        try:
            env.get_template(name)
        except Exception as exc:
            problem = _problem(exc, name)
            if problem.file == name and env.loader is not None:  # name the file itself
                with contextlib.suppress(Exception):
                    problem = dataclasses.replace(problem, file=env.loader.get_source(env, name)[1])
            problems.append(problem)
            continue
        program, _, suffix = name.partition(".")
        if suffix not in ("txt.j2", "html.j2") or (program == "bundle" and problems):
            continue
        for linked in (False, True):  # without links (no secret key) and with them
            values = samples.context(program, linked)
            if values is None:
                break
            try:
                with budget():
                    if program == "bundle":
                        values = bundle_context(env, values)
                    _render_part(env, name, values)
            except TemplateProblem as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                break
    return problems


def render(
    env: ImmutableSandboxedEnvironment, program: str, context: Mapping[str, Any]
) -> tuple[str, str, str]:
    """``(subject, text, html)`` for ``program`` rendered with ``context``, inside the
    render budget (:mod:`worker.sandbox`): whatever the template does, this returns or
    raises :class:`TemplateProblem`. ``unsubscribe_url`` is None and ``links`` is
    :data:`NO_LINKS` unless the caller gives them."""
    context = {"unsubscribe_url": None, "links": NO_LINKS, **context}
    with budget():
        text, html = (_render_part(env, f"{program}.{s}.j2", context) for s in ("txt", "html"))
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise TemplateProblem(
            Problem(
                "the first line must be 'Subject: …'", "add a subject line", f"{program}.txt.j2", 1
            )
        )
    subject = " ".join(first[len("Subject:") :].split())
    return subject, body.lstrip("\n"), html


def _render_part(env: ImmutableSandboxedEnvironment, name: str, context: Mapping[str, Any]) -> str:
    """One template's output, streamed and cut at MAX_PART_BYTES; every exception the
    template raises (a budget, a SecurityError, RecursionError, MemoryError…) is a
    TemplateProblem naming it."""
    chunks: list[str] = []
    size, where = 0, name
    try:
        template = env.get_template(name)
        if template.filename and not template.filename.startswith("<"):
            where = template.filename
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_PART_BYTES:
                break
            chunks.append(chunk)
    except Exception as exc:  # the template's own code: whatever it raised is its problem
        raise TemplateProblem(_problem(exc, name)) from None
    output = "".join(chunks)
    if size > MAX_PART_BYTES or len(output.encode()) > MAX_PART_BYTES:
        raise TemplateProblem(
            Problem(
                f"rendered {name} is over {MAX_PART_BYTES} bytes", "shorten the template", where
            )
        )
    return output


def _problem(exc: BaseException, name: str) -> Problem:
    """One line about a template's failure, at its file and line where known."""
    where, line = _template_position(exc, name)
    if isinstance(exc, BudgetExceeded):
        what = f"template runs over its budget: {exc}"
        fix = "make it do less (fewer loop rounds, smaller repeats and widths)"
    elif isinstance(exc, TemplateError):
        what, fix = (
            f"template error: {str(exc).splitlines()[0] if str(exc) else exc!r}",
            "fix the template",
        )
    elif isinstance(exc, RecursionError):
        what = "template error: it nests too deep, or includes, extends or calls itself without end"
        fix = "remove the self-reference or the deep nesting"
    elif isinstance(exc, MemoryError):
        what, fix = "template error: it ran out of memory", "make it build less"
    else:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        what, fix = f"template error: {type(exc).__name__}: {detail}"[:300], "fix the template"
    return Problem(what, fix, where, line)


def _template_position(exc: BaseException, name: str) -> tuple[str, int | None]:
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
    """Render each part of a bundle with its own program's templates, for bundle.*.j2
    (inside one render budget with the bundle's own templates). Each part gets the
    bundle's ``unsubscribe_url`` (which opts out of every email) and the bundle's
    ``links`` (unsubscribe, preferences) over its own (a reflection keeps its answer links)."""
    parts = []
    link = payload.get("unsubscribe_url")
    links = {**NO_LINKS, **(payload.get("links") or {})}
    for part in payload["parts"]:
        with budget():
            own = part["payload"].get("links") or {}
            values = {**part["payload"], "unsubscribe_url": link, "links": {**own, **links}}
            subject, text, html = render(env, part["program"], values)
        body = re.search(r"<body[^>]*>(.*)</body>", html, re.S | re.I)
        parts.append({"subject": subject, "text": text, "html": Markup(body[1] if body else html)})
    first = payload.get("first_name") or payload["name"]  # a blank name: never an IndexError
    return {
        "name": payload["name"],
        "first_name": first,
        "parts": parts,
        "unsubscribe_url": link,
        "links": links,
    }


#: The longest header line we write (RFC 5322 allows 998 characters).
MAX_HEADER_LINE = 998


class _PlainHeader(UnstructuredHeader):
    """A header written as one line, as given: never folded or RFC 2047-encoded (a
    List-Unsubscribe URL must reach a mail program byte for byte). Its value is checked
    (printable ASCII, one line of at most :data:`MAX_HEADER_LINE`) when it is set."""

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value  # as written: no encoded-word decoding either

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"  # type: ignore[attr-defined]


def _policy() -> EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _PlainHeader)  # type: ignore[arg-type]
    policy: EmailPolicy[EmailMessage] = email.policy.default.clone(header_factory=registry)
    return policy


POLICY = _policy()


def _plain_header(name: str, value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise UserError(
            Problem(
                f"{name} would hold a line break, a control or non-ASCII character",
                "fix mail.unsubscribe_url (a plain https URL)",
            )
        )
    if len(name) + 2 + len(value) > MAX_HEADER_LINE:
        raise UserError(
            Problem(
                f"{name} would be longer than {MAX_HEADER_LINE} characters",
                "use a shorter mail.unsubscribe_url",
            )
        )
    return value


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
    """A multipart/alternative message with our headers: Message-ID, and with an
    ``unsubscribe_url`` the RFC 8058 one-click ``List-Unsubscribe`` (the only opt-out a
    mail program can act on that something reads; without a link there is none, and the
    footer names the admin's ``steadyhand unsubscribe``)."""
    from_addr = address(sender)
    msg = EmailMessage(policy=POLICY)
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
    if unsubscribe_url:  # no link, no header: nothing reads a mailto: unsubscribe's replies
        if any(c.isspace() or c in "<>," for c in unsubscribe_url):
            raise UserError(
                Problem(
                    "the unsubscribe link holds a space, a line break, '<', '>' or ','",
                    "fix mail.unsubscribe_url (a plain https URL)",
                )
            )
        msg["List-Unsubscribe"] = _plain_header("List-Unsubscribe", f"<{unsubscribe_url}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
