"""What every page of the web service shares: the templates, the checks a request passes
before anything is read or changed, and the pages that say why a request was refused.

A request to a page goes through, in this order:

1. :meth:`Site.claim`: the link's token, checked for its purpose on the app's clock, and
   the person it names looked up in the config (a bad link is a 400 page in words);
2. for a POST, :meth:`Site.form` (the body, size-capped, URL-encoded or multipart) and
   :meth:`Site.check_post`: the ``Origin`` (or ``Referer``) must be ``web.base_url``'s
   origin or the request's own, and the form's ``csrf`` field must be the one the page
   gave (else a 403 page in words);
3. the page's own work, with every store call in the threadpool (:meth:`Site.call`); a
   store that does not answer is a 503 page.

Each refusal is a :class:`Refused` that the app's handler renders; nothing changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from itsdangerous.encoding import base64_decode, bytes_to_int
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.config import Settings
from worker.core.errors import ConfigError, UserError
from worker.core.model import Person
from worker.links import BadLink, Claim, Links, Purpose
from worker.resources import shipped
from worker.store import Store

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The largest form body read (a reflection's two notes are at most 2,000 characters each).
MAX_BODY = 64 * 1024
#: The most fields a form may carry.
MAX_FIELDS = 64
#: The longest free-text answer, in characters.
MAX_TEXT = 2000

EXPIRED = "This link has expired; the next email will bring a fresh one."
INVALID = "This link is not valid. Use the link from your email."


def web_templates() -> Path:
    """The folder of the pages' templates (``templates/web``)."""
    return shipped("templates") / "web"


def environment() -> jinja2.Environment:
    """The pages' Jinja2 environment: autoescaped, a misspelt value is an error."""
    # no filters of our own: ``config check`` compiles these too, in the email sandbox
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(web_templates())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def long_date(day: date) -> str:
    """``Thursday 5 November 2026``."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_date(day: date) -> str:
    """``Thu 5 Nov``."""
    return f"{day:%a} {day.day} {day:%b}"


class Refused(Exception):
    """A request refused with a page in words; nothing was changed."""

    def __init__(self, status: int, heading: str, message: str, outcome: str) -> None:
        super().__init__(outcome)
        self.status, self.heading, self.message, self.outcome = status, heading, message, outcome


def bad_link(reason: str) -> Refused:
    if reason == "expired":
        return Refused(400, "This link has expired", EXPIRED, "refused: expired link")
    return Refused(400, "This link does not work", INVALID, "refused: invalid link")


def forbidden(outcome: str) -> Refused:
    return Refused(
        403,
        "This form cannot be sent from here",
        "The form did not come from this page, or it was open for more than a day. "
        "Open the link from your email again and send the form from that page.",
        outcome,
    )


def store_down() -> Refused:
    return Refused(
        503,
        "steadyhand cannot reach its data right now",
        "Nothing was changed. Try again in a few minutes; if it keeps happening, tell the "
        "person who runs steadyhand.",
        "failed: store unreachable",
    )


@dataclass(frozen=True)
class Form:
    """A posted form: every value of each field, in order."""

    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))

    def __contains__(self, name: object) -> bool:
        return name in self.fields


@dataclass(frozen=True)
class Visit:
    """A checked link: its token and claim, and the person it is for."""

    token: str
    claim: Claim
    person: Person
    #: When the link was made: links a page makes for this person carry the same
    #: moment, so following them never outlives the link that was opened.
    issued: datetime

    @property
    def quoted(self) -> str:
        """The token as it goes into a page's own paths."""
        return quote(self.token, safe="")

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def tz(self) -> ZoneInfo:
        return self.person.tz


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-case, default ports left out."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{shown}" + (f":{port}" if port and port != default else "")


def clean_text(value: str | None) -> str:
    """A form's free text as stored: line breaks as ``\\n``, no NUL, no edge blanks."""
    if value is None:
        return ""
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


async def parse_form(body: bytes, headers: Headers) -> Form:
    """The fields of a form body (URL-encoded, or multipart as RFC 8058 prefers), parsed by
    Starlette's parsers over python-multipart; :class:`ValueError` for anything else, a
    file, or more than :data:`MAX_FIELDS` fields."""
    mime = headers.get("content-type", "").partition(";")[0].strip().lower()

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser: FormParser | MultiPartParser
    if mime in ("application/x-www-form-urlencoded", ""):
        parser = FormParser(headers, stream(), max_fields=MAX_FIELDS, max_part_size=MAX_BODY)
    elif mime == "multipart/form-data":
        parser = MultiPartParser(
            headers, stream(), max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY
        )
    else:
        raise ValueError("not a form")
    try:
        data = await parser.parse()
    except MultiPartException as exc:
        raise ValueError(str(exc)) from None
    fields: dict[str, list[str]] = {}
    for name, value in data.multi_items():
        if not isinstance(value, str):
            raise ValueError("a file in a form")
        fields.setdefault(name.replace("\x00", ""), []).append(value.replace("\x00", ""))
    return Form(fields)


class _Stores:
    """The one store of the app, opened on first use; a failed query drops it, and the
    next request opens it again."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self._factory = factory
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self._factory()
            return self._store

    def drop(self, store: Store | None = None) -> None:
        with self._lock:
            if self._store is not None and (store is None or store is self._store):
                self._store.close()
                self._store = None

    close = drop


def issued_at(token: str) -> datetime:
    """When a token that passed :meth:`Links.verify` was made (its signed timestamp)."""
    stamp = token.rsplit(".", 2)[1]
    return datetime.fromtimestamp(bytes_to_int(base64_decode(stamp)), UTC)


def first_line(exc: BaseException) -> str:
    """The first words of an error, for a log line (never a query's parameters)."""
    exc = getattr(exc, "orig", None) or exc
    text = str(exc).split("\n")[0]
    return " ".join(text.split())[:300]


class Site:
    """What the pages share: settings, links, the clock, the store, the templates."""

    def __init__(
        self,
        settings: Settings,
        store_factory: Callable[[], Store],
        links: Links,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.links = links
        self.clock = clock
        self.stores = _Stores(store_factory)
        self.env = environment()
        self.base_origin = origin_of(settings.web.base_url) if settings.web.base_url else None

    # -- the store ---------------------------------------------------------------------
    async def call(self, work: Callable[[Store], T]) -> T:
        """``work(store)`` in the threadpool; a store that fails is a 503 page."""

        def run() -> T:
            try:
                store = self.stores.get()
            except (SQLAlchemyError, UserError, OSError) as exc:
                logger.warning("store unreachable: %s: %s", type(exc).__name__, first_line(exc))
                raise store_down() from None
            try:
                return work(store)
            except SQLAlchemyError as exc:
                # the type only: a query's text and parameters may hold what someone wrote
                logger.warning("store query failed: %s", type(exc).__name__)
                self.stores.drop(store)
                raise store_down() from None

        return await run_in_threadpool(run)

    # -- checks ------------------------------------------------------------------------
    def claim(self, request: Request, purpose: Purpose) -> Visit:
        """The link's claim for ``purpose``, and the person it names (a 400 page if the
        link is tampered, expired, made for another purpose or for nobody configured)."""
        token = request.path_params.get("token", "")
        try:
            claim = self.links.verify(purpose, token, self.clock())
        except BadLink as exc:
            raise bad_link(exc.reason) from None
        try:
            person = self.settings.person(claim.email.lower())
        except ConfigError:
            raise bad_link("invalid") from None
        request.state.about = f"{claim.program} {claim.period}".strip()
        return Visit(token, claim, person, issued_at(token))

    async def form(self, request: Request) -> Form:
        """The posted form (at most :data:`MAX_BODY` bytes and :data:`MAX_FIELDS` fields)."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(
                    413,
                    "That was too much to send",
                    "The form was larger than steadyhand takes. Shorten your answers and "
                    "send it again.",
                    "refused: body too large",
                )
        try:
            return await parse_form(bytes(body), request.headers)
        except Exception:
            raise Refused(
                400,
                "That form could not be read",
                "Send the form from the page your email's link opens.",
                "refused: not a form",
            ) from None

    def origin_ok(self, request: Request) -> bool:
        """Whether ``Origin`` (else ``Referer``), when sent, is ours: ``web.base_url``'s
        origin or the request's own."""
        allowed = {self.base_origin, origin_of(str(request.base_url))} - {None}
        origin = request.headers.get("origin")
        if origin is not None:
            return origin_of(origin) in allowed
        referer = request.headers.get("referer")
        if referer:
            return origin_of(referer) in allowed
        return True

    def check_post(self, request: Request, visit: Visit, form: Form) -> None:
        """A 403 page unless the POST came from our page: origin, then the CSRF field."""
        if not self.origin_ok(request):
            raise forbidden("refused: foreign origin")
        field_ = form.get("csrf")
        if not field_:
            raise forbidden("refused: no csrf field")
        try:
            self.links.check_csrf(field_, visit.token, self.clock())
        except BadLink as exc:
            raise forbidden(f"refused: {exc.reason} csrf field") from None

    def csrf(self, visit: Visit) -> str:
        return self.links.csrf(visit.token, self.clock())

    async def save(
        self,
        request: Request,
        visit: Visit,
        program: str,
        period: str,
        values: Mapping[str, int | str | None],
    ) -> bool:
        """Record ``visit``'s person's answers of ``program`` and ``period`` (the store's
        :meth:`record_answers`) at the site's clock; whether anything changed, also said in
        the request's log line."""
        now = self.clock()
        changed = await self.call(
            lambda s: s.record_answers(visit.email, program, period, values, now)
        )
        outcome(request, "saved" if changed else "unchanged")
        return changed

    def path(self, visit: Visit, purpose: Purpose, program: str, period: str) -> str:
        """The path, below the site's top (pages put ``root`` before it), of a link to
        another page for the same person, made at the moment ``visit``'s link was (so it
        expires no later than that link would)."""
        token = self.links.token(purpose, visit.email, program, period, visit.issued)
        return f"{purpose.value}/{quote(token, safe='')}"

    # -- rendering ---------------------------------------------------------------------
    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """``template`` with ``values``; links in pages are relative to ``root`` (the way
        back to the site's top from this path), so a proxy may serve the site under a
        path of its own."""
        root = "../" * max(0, request.url.path.count("/") - 1)
        values = {"said": "", "problem": "", "preferences": "", **values, "root": root}
        html = self.env.get_template(template).render(**values)
        return HTMLResponse(html, status_code=status)

    def refused(self, request: Request, exc: Refused) -> HTMLResponse:
        request.state.outcome = exc.outcome
        return self.render(
            request,
            "message.html.j2",
            exc.status,
            title=exc.heading,
            heading=exc.heading,
            message=exc.message,
        )


def outcome(request: Request, text: str) -> None:
    """What the request did, for its log line (no token, no email, no free text)."""
    request.state.outcome = text
