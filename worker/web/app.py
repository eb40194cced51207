"""The Starlette app of ``steadyhand serve``, built by :func:`create_app`.

``GET /healthz`` says whether the store answers: 200 ``{"store": "ok"}``, else 503
``{"store": "unreachable"}`` (and one WARNING line in the log, never a traceback in the
answer). The store is opened by the first request that needs it, and again after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from worker.config import Settings
from worker.core.model import redact_location
from worker.store import Store

logger = logging.getLogger(__name__)


class _Stores:
    """The one store of the app, opened on first use; a failed query drops it."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self._factory = factory
        self._store: Store | None = None
        self._lock = threading.Lock()

    def answers(self) -> bool:
        """Whether the store answers ``SELECT 1`` (blocking: run it in a thread)."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = self._factory()
                with self._store.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            except Exception as exc:
                logger.warning("store unreachable: %s: %s", type(exc).__name__, _first_line(exc))
                logger.debug("store traceback", exc_info=exc)
                if self._store is not None:
                    self._store.close()
                    self._store = None
                return False

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _first_line(exc: BaseException) -> str:
    exc = getattr(exc, "orig", None) or exc
    return " ".join(str(exc).split())[:300]


def create_app(settings: Settings, store_factory: Callable[[], Store]) -> Starlette:
    """The web app over the store ``store_factory`` opens (called lazily, maybe again)."""
    stores = _Stores(store_factory)
    where = redact_location(settings.store)

    async def healthz(_request: Request) -> JSONResponse:
        if await run_in_threadpool(stores.answers):
            return JSONResponse({"store": "ok"})
        logger.debug("healthz: store %s unreachable", where)
        return JSONResponse({"store": "unreachable"}, status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stores.close()

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
