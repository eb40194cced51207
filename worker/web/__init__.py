"""``steadyhand serve``: the web process, a Starlette app (:mod:`.app`) run by uvicorn.

The pages the emails link to and ``GET /healthz``: docs/web.md.
"""

from __future__ import annotations

from worker.web.app import create_app

__all__ = ["create_app"]
