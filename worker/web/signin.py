"""Signing in to the dashboard: a magic link emailed on request, then a session cookie.

* ``POST /signin`` (the form ``/dashboard`` shows without a session): a leader of a team,
  or one of ``admins:``, is emailed a link ``/signin/{token}`` (signed, salt ``signin``,
  15 minutes, single use: the store keeps a sha256 digest of the token, never the token).
  Anyone else gets the same words and no email. At most :data:`PER_WINDOW` links per
  address per :data:`WINDOW`; one more is refused in words.
* ``GET /signin/{token}`` shows a button (a mail scanner opening the link uses nothing);
  ``POST /signin/{token}`` uses the link and sets the session cookie: signed (salt
  ``session``), 8 hours, HttpOnly, SameSite=Lax, Secure when ``web.base_url`` is https.
* ``POST /signout`` clears it.

The form without a link carries a signed value over a random nonce (:meth:`Links.csrf`),
and every POST passes the Origin check. The email goes straight to the configured mail
transport, not through the outbox: a sign-in link is wanted now, by someone waiting at
the page, and the outbox's sender runs with the cycle, which may not be running.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from worker import mail
from worker.core.errors import ConfigError
from worker.cycle.runtime import build_transport
from worker.links import BadLink
from worker.web.pages import Refused, Site, forbidden, outcome

logger = logging.getLogger(__name__)

COOKIE = "steadyhand_session"
SIGNIN_SALT = "signin"
SESSION_SALT = "session"
LINK_AGE = timedelta(minutes=15)
SESSION_AGE = timedelta(hours=8)
#: How many sign-in links one address may ask for in :data:`WINDOW`.
PER_WINDOW = 3
WINDOW = timedelta(minutes=15)
MAX_EMAIL = 320

SENT = (
    "If that address belongs to a team leader or an admin of steadyhand, a sign-in link "
    "is on its way to it. The link works once, for 15 minutes."
)
TOO_MANY = (
    f"That address has asked for {PER_WINDOW} sign-in links in the last 15 minutes. "
    "Use the newest one, or wait a quarter of an hour and ask again."
)
SESSION_ENDED = "Your session has ended (sessions last 8 hours). Sign in again."


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in viewer: their address, and the cookie's value (forms are bound to it)."""

    email: str
    cookie: str


class SignIn:
    """The sign-in pages and the session check the dashboard uses."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.secure = (site.settings.web.base_url or "").lower().startswith("https://")

    # -- who may sign in ---------------------------------------------------------------
    def may_sign_in(self, email: str) -> bool:
        settings = self.site.settings
        admins = {a.lower() for a in settings.admins}
        return email in settings.leaders() or email in admins

    def _serializer(self, salt: str) -> URLSafeTimedSerializer:
        return self.site.links.serializer(salt, self.site.clock())

    # -- the session ---------------------------------------------------------------------
    def session(self, request: Request) -> tuple[Session | None, bool]:
        """The request's session, and whether a cookie was there but no longer works."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None, False
        try:
            data = self._serializer(SESSION_SALT).loads(
                value, max_age=int(SESSION_AGE.total_seconds())
            )
        except (BadData, UnicodeError, ValueError):
            return None, True
        email = data.get("e") if isinstance(data, dict) else None
        if not isinstance(email, str) or not self.may_sign_in(email):
            return None, True
        return Session(email, value), False

    def csrf(self, session: Session) -> str:
        return self.site.links.csrf(session.cookie, self.site.clock())

    def check_post(self, request: Request, bound_to: str, field: str | None) -> None:
        """A 403 page unless the POST came from our page (origin, then the signed field)."""
        if not self.site.origin_ok(request):
            raise forbidden("refused: foreign origin")
        if not field:
            raise forbidden("refused: no csrf field")
        try:
            self.site.links.check_csrf(field, bound_to, self.site.clock())
        except BadLink as exc:
            raise forbidden(f"refused: {exc.reason} csrf field") from None

    # -- pages ---------------------------------------------------------------------------
    def page(self, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        """The "Sign in" page with its email field."""
        nonce = secrets.token_urlsafe(16)
        csrf = self.site.links.csrf(nonce, self.site.clock())
        values = {"said": "", "problem": "", **values}
        return self.site.render(
            request, "signin.html.j2", status, title="Sign in", nonce=nonce, csrf=csrf, **values
        )

    async def request_link(self, request: Request) -> Response:
        """``POST /signin``: email a link to a leader or an admin (the same words for all)."""
        form = await self.site.form(request)
        self.check_post(request, form.get("nonce") or "", form.get("csrf"))
        email = (form.get("email") or "").strip().lower()
        if not email or len(email) > MAX_EMAIL or "@" not in email:
            outcome(request, "refused: no address")
            return self.page(request, 400, problem="Type the email address you use at work.")
        known = self._known(email)
        if not known:
            outcome(request, "signin: not sent")
            return self.page(request, said=SENT)
        now = self.site.clock()
        count = await self.site.call(lambda s: s.count_sign_ins(email, now - WINDOW))
        if count >= PER_WINDOW:
            outcome(request, "refused: too many sign-in links")
            return self.page(request, 429, problem=TOO_MANY)
        if not self.may_sign_in(email):
            # counted like a leader's, so the limit does not tell who leads a team
            await self.site.call(lambda s: s.add_sign_in(digest(secrets.token_hex()), email, now))
            outcome(request, "signin: not sent")
            return self.page(request, said=SENT)
        token = self._serializer(SIGNIN_SALT).dumps({"e": email, "n": secrets.token_hex(8)})
        await self.site.call(lambda s: s.add_sign_in(digest(token), email, now))
        await self.site.call(lambda _s: self._send(email, token, now))
        outcome(request, "signin: link sent")
        return self.page(request, said=SENT)

    def _known(self, email: str) -> bool:
        try:
            self.site.settings.person(email)
        except ConfigError:
            return False
        return True

    def _send(self, email: str, token: str, now: datetime) -> None:
        settings = self.site.settings
        base = (settings.web.base_url or "").rstrip("/")
        person = settings.person(email)
        env = mail.environment(
            settings.path(settings.mail.templates) if settings.mail.templates else None
        )
        subject, text, html = mail.render(
            env,
            "signin",
            {"name": person.name, "url": f"{base}/signin/{quote(token, safe='')}", "minutes": 15},
        )
        message = mail.build(
            sender=settings.mail.from_,
            to=[mail.recipient(person.name, email)],
            subject=subject,
            text=text,
            html=html,
            key=f"signin:{email}:{digest(token)[:16]}",
            program="signin",
            sent_at=now,
        )
        transport = build_transport(settings)
        try:
            transport.send(message)
        finally:
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        logger.info("signin: a sign-in link was sent")

    def _claim(self, request: Request) -> tuple[str, str]:
        token = request.path_params.get("token", "")
        try:
            data = self._serializer(SIGNIN_SALT).loads(token, max_age=int(LINK_AGE.total_seconds()))
        except SignatureExpired:
            raise Refused(
                400,
                "This sign-in link has expired",
                "Sign-in links work for 15 minutes. Ask for a new one on the sign-in page.",
                "refused: expired link",
            ) from None
        except (BadData, UnicodeError, ValueError):
            raise _invalid() from None
        email = data.get("e") if isinstance(data, dict) else None
        if not isinstance(email, str):
            raise _invalid()
        return token, email

    async def link_page(self, request: Request) -> HTMLResponse:
        """``GET /signin/{token}``: a button; nothing is used yet."""
        token, _email = self._claim(request)
        csrf = self.site.links.csrf(token, self.site.clock())
        outcome(request, "signin: button shown")
        return self.site.render(request, "signin_link.html.j2", title="Sign in", csrf=csrf)

    async def use_link(self, request: Request) -> Response:
        """``POST /signin/{token}``: use the link once; the session cookie."""
        token, email = self._claim(request)
        form = await self.site.form(request)
        self.check_post(request, token, form.get("csrf"))
        now = self.site.clock()
        used = await self.site.call(lambda s: s.use_sign_in(digest(token), now))
        if used is None or not hmac.compare_digest(used, email) or not self.may_sign_in(email):
            raise Refused(
                400,
                "This sign-in link was used already",
                "Each sign-in link works once. Ask for a new one on the sign-in page.",
                "refused: sign-in link used",
            )
        cookie = self._serializer(SESSION_SALT).dumps({"e": email})
        root = "../" * max(0, request.url.path.count("/") - 1)
        response = RedirectResponse(f"{root}dashboard", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(SESSION_AGE.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        outcome(request, "signin: signed in")
        return response

    async def sign_out(self, request: Request) -> Response:
        """``POST /signout``: the cookie cleared."""
        session, _ended = self.session(request)
        form = await self.site.form(request)
        if session is not None:
            self.check_post(request, session.cookie, form.get("csrf"))
        response = self.page(request, said="You are signed out.")
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure)
        outcome(request, "signin: signed out")
        return response


def _invalid() -> Refused:
    return Refused(
        400,
        "This sign-in link does not work",
        "Use the newest link from your email, or ask for a new one on the sign-in page.",
        "refused: invalid link",
    )
