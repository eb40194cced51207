"""``steadyhand serve``: the web process, a Starlette app (:mod:`.app`) run by uvicorn.

For now it answers one route, ``GET /healthz``; the pages links point to come later.
"""

from __future__ import annotations

from worker.web.app import create_app

__all__ = ["create_app"]
