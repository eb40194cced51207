"""The Starlette app of ``steadyhand serve``, built by :func:`create_app`.

Routes (docs/web.md):

* ``GET /healthz``: whether the store answers: 200 ``{"store": "ok"}``, else 503
  ``{"store": "unreachable"}`` (and one WARNING line in the log, never a traceback);
* ``/answer/{token}`` and ``/journal/{token}`` (:mod:`.answers`), ``/unsubscribe/{token}``
  and ``/preferences/{token}`` (:mod:`.preferences`): the pages the emails link to;
* ``/dashboard`` and ``/dashboard/experiments`` (:mod:`.dashboard`), ``/signin``,
  ``/signin/{token}`` and ``/signout`` (:mod:`.signin`): the leaders' dashboard;
* ``/static/style.css``: the pages' one stylesheet.

Every response carries the security headers of :data:`HEADERS` (a page with a token in
its URL is never cached), and every request handled is one log line: its method, route
(never its path: the token is the credential), status and outcome, and the program and
period the link is about (never the email or anything someone wrote). The store is
opened by the first request that needs it, and again after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.config import Settings
from worker.core.model import redact_location
from worker.links import Links
from worker.store import Store
from worker.web.answers import AnswerPages
from worker.web.dashboard import DashboardPages
from worker.web.forms import answer_forms
from worker.web.pages import Refused, Site, first_line, web_templates
from worker.web.preferences import PreferencePages
from worker.web.signin import SignIn

logger = logging.getLogger(__name__)

#: The headers of every response. ``same-origin`` sends no Referer to another site (the
#: URL holds the token) while our own forms still carry their Origin, which
#: ``no-referrer`` would blank to ``null`` on every POST.
HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}
NO_STORE = "no-store"
STATIC_CACHE = "max-age=3600"


class Guard:
    """Pure ASGI middleware: the security headers on every response, one log line per
    request, and a page in words (never a traceback) when a page fails unexpectedly."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in (*HEADERS, "cache-control")
                ]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                cache = STATIC_CACHE if static and status in (200, 304) else NO_STORE
                headers.append((b"cache-control", cache.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            state = scope.setdefault("state", {})
            state["outcome"] = f"failed: {type(exc).__name__}"
            # the frames only: an error's message may quote a query's values
            logger.debug("page failure at:\n%s", "".join(traceback.format_tb(exc.__traceback__)))
            if status == 0:
                await _failure_page(self.site)(scope, receive, send_with_headers)
        finally:
            self._log(scope, status, started)

    def _log(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "(no such page)"
        state = scope.get("state", {})
        said = state.get("outcome", "")
        about = state.get("about", "")
        level = logging.DEBUG if path in ("/healthz", "/static") else logging.INFO
        logger.log(
            level,
            "web %s %s -> %s%s%s, %d ms",
            scope.get("method", ""),
            path,
            status or 500,
            f" {said}" if said else "",
            f" ({about})" if about else "",
            (time.monotonic() - started) * 1000,
        )


def _failure_page(site: Site) -> HTMLResponse:
    html = site.env.get_template("message.html.j2").render(
        title="Something went wrong",
        heading="Something went wrong on steadyhand's side",
        message="What you sent may not have been saved. Try again in a few minutes; if it "
        "keeps happening, tell the person who runs steadyhand.",
    )
    return HTMLResponse(html, status_code=500)


def _store_answers(site: Site) -> bool:
    """Whether the store answers ``SELECT 1`` (blocking: run it in a thread)."""
    store: Store | None = None
    try:
        store = site.stores.get()
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        logger.warning("store unreachable: %s: %s", type(exc).__name__, first_line(exc))
        site.stores.drop(store)
        return False


def create_app(
    settings: Settings,
    store_factory: Callable[[], Store],
    *,
    links: Links,
    clock: Callable[[], datetime],
) -> Starlette:
    """The web app over the store ``store_factory`` opens (lazily, maybe again), making
    and checking links with ``links`` on the clock ``clock``."""
    site = Site(settings, store_factory, links, clock)
    answers = AnswerPages(site, answer_forms(site))
    prefs = PreferencePages(site)
    signin = SignIn(site)
    dashboard = DashboardPages(site, signin)
    where = redact_location(settings.store)

    async def healthz(_request: Request) -> JSONResponse:
        if await run_in_threadpool(_store_answers, site):
            return JSONResponse({"store": "ok"})
        logger.debug("healthz: store %s unreachable", where)
        return JSONResponse({"store": "unreachable"}, status_code=503)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return site.refused(request, exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            page = Refused(
                405,
                "This page cannot do that",
                "Open the link from your email, and use the buttons on its page.",
                "refused: method not allowed",
            )
        else:
            page = Refused(
                exc.status_code if exc.status_code >= 400 else 404,
                "There is no such page",
                "Check the address, or open the link from your email again.",
                "refused: no such page",
            )
        response = site.refused(request, page)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            site.stores.close()

    token = "{token}"
    routes: list[Any] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(f"/answer/{token}", answers.answer, methods=["GET"]),
        Route(f"/answer/{token}", answers.record, methods=["POST"]),
        Route(f"/journal/{token}", answers.journal, methods=["GET"]),
        Route(f"/journal/{token}/delete", answers.delete, methods=["POST"]),
        Route(f"/unsubscribe/{token}", prefs.unsubscribe_page, methods=["GET"]),
        Route(f"/unsubscribe/{token}", prefs.unsubscribe, methods=["POST"]),
        Route(f"/preferences/{token}", prefs.preferences_page, methods=["GET"]),
        Route(f"/preferences/{token}", prefs.preferences, methods=["POST"]),
        Route(f"/preferences/{token}/export.json", prefs.export, methods=["GET"]),
        Route("/dashboard", dashboard.dashboard, methods=["GET"]),
        Route("/dashboard/experiments", dashboard.record, methods=["POST"]),
        Route("/signin", signin.request_link, methods=["POST"]),
        Route(f"/signin/{token}", signin.link_page, methods=["GET"]),
        Route(f"/signin/{token}", signin.use_link, methods=["POST"]),
        Route("/signout", signin.sign_out, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=web_templates() / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, site=site)],
        exception_handlers={Refused: refused, HTTPException: not_found},
        lifespan=lifespan,
    )
