"""``steadyhand serve``: the web process (uvicorn running :func:`worker.web.create_app`)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from connectors.secrets import KEY_ENV, MAKE_KEY
from worker import config as config_mod
from worker.cli.app import (
    ConfigOpt,
    LogLevel,
    NowOpt,
    _config_path,
    _given_now,
    _now,
    app,
    err,
    log_by_default,
)
from worker.config import Settings
from worker.config.web import parse_listen
from worker.core.errors import Problem, UserError
from worker.core.model import UTC, redact_location
from worker.links import Links
from worker.store import Store

logger = logging.getLogger("worker.cli")  # not __main__ under `python -m worker.cli`


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT or SIGTERM ends the command with exit 0: uvicorn
    shuts down gracefully, then raises the signal again (which would kill the process)."""

    stopped_by: tuple[int, ...] = ()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self.stopped_by = tuple(self._captured_signals)
                self._captured_signals.clear()


@app.command()
def serve(
    config: ConfigOpt = None,
    now: NowOpt = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Serve the demo's store (after `steadyhand demo`), with its key and clock.",
        ),
    ] = False,
    directory: Annotated[
        Path, typer.Option("--dir", help="With --demo: where the demo's var/ is.")
    ] = Path("var"),
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT to listen on, in place of web.listen."),
    ] = None,
) -> None:
    """The web process: the pages emails link to (answers, your last 30 days, unsubscribe,
    preferences) and GET /healthz. Stop it with Ctrl-C.

    It needs STEADYHAND_SECRET_KEY and listens on web.listen (default 127.0.0.1:8080).
    With --demo it serves what `steadyhand demo` made under --dir: the demo's key
    (var/secret.key unless the variable is set) and its moment (unless --now is given)."""
    if demo:
        from worker.cli.run import DEMO_NOW, demo_key, demo_settings

        settings = _listening(demo_settings(directory), listen)
        key = demo_key(directory)
        fixed = _now(now, settings) if _given_now(now) else DEMO_NOW.astimezone(UTC)
        _serve(settings, key, fixed)
        return
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        err.print(
            f"error: {KEY_ENV} is not set — make a key with {MAKE_KEY} and export "
            f"{KEY_ENV}=… (keep it out of the repo)",
            markup=False,
            soft_wrap=True,
        )
        raise SystemExit(2)
    path, _found = _config_path(config)
    settings = _listening(config_mod.load(path), listen)
    _serve(settings, key, _now(now, settings) if _given_now(now) else None)


def _listening(settings: Settings, listen: str | None) -> Settings:
    """``settings`` listening on ``--listen`` when it is given (checked as web.listen is)."""
    if listen is None:
        return settings
    try:
        parse_listen(listen)
    except ValueError as exc:
        raise UserError(Problem(f"--listen {exc}")) from None
    return settings.model_copy(update={"web": settings.web.model_copy(update={"listen": listen})})


def _check_store(settings: Settings) -> None:
    """Refuse to start on a store that answers but cannot be used (its schema is older or
    newer than this steadyhand's: the error says to run ``steadyhand upgrade``). A store
    that does not answer yet is no reason not to start: /healthz says 503 until it does."""
    try:
        Store(settings.store_url).close()
    except UserError:
        raise
    except Exception as exc:
        logger.warning(
            "store %s unreachable at start (%s): serving anyway, /healthz says 503 until it "
            "answers",
            redact_location(settings.store),
            type(exc).__name__,
        )


def _serve(settings: Settings, key: str, fixed: datetime | None) -> None:
    """Run the web app of ``settings`` until a signal; ``fixed``: a clock that stands still."""
    from worker.web import create_app  # here: the other commands need none of the web app

    log_by_default(LogLevel.info)
    host, port = settings.web.address

    def clock() -> datetime:
        return fixed or datetime.now(UTC)

    _check_store(settings)
    links = Links(key, settings.web.base_url, settings.mail.unsubscribe_url)
    web_app = create_app(settings, lambda: Store(settings.store_url), links=links, clock=clock)
    server = _Server(
        uvicorn.Config(
            web_app,
            host=host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=list(settings.web.trusted_proxies),  # empty: trust none
            log_config=None,  # our logging (the -v, --log-level and --log-format options)
            access_log=False,
            server_header=False,
        )
    )
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        "steadyhand web serving on http://%s:%s (store %s%s)",
        shown,
        port,
        redact_location(settings.store),
        f", clock fixed at {fixed.isoformat()}" if fixed else "",
    )
    server.run()
    if server.stopped_by:
        logger.info("steadyhand web stopped (%s)", signal.Signals(server.stopped_by[0]).name)
