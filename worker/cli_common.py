"""What every ``steadyhand`` command shares: the Typer app, the consoles, the common
options and how a command turns them into settings, a clock and a runtime."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from connectors.base import Problem, UserError
from connectors.secrets import RedactFilter
from worker import config as config_mod
from worker import services
from worker.config import Settings
from worker.model import UTC
from worker.store import Store

app = typer.Typer(
    name="steadyhand",
    help="Keep humane routines: calendar load, protected blocks and kind emails.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("-c", "--config", help="The config file (default ./steadyhand.yaml).")
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now", help="Fix the clock (ISO date-time; also STEADYHAND_NOW).", show_default=False
    ),
]
PersonOpt = Annotated[str | None, typer.Option("--person", help="Only this person (email).")]


class _State:
    verbose = False


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Debug logs and tracebacks.")
    ] = False,
) -> None:
    _State.verbose = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())


# -- helpers ---------------------------------------------------------------------------


def _settings(path: Path | None) -> Settings:
    return config_mod.load(config_mod.find(path))


def _now(text: str | None, settings: Settings | None = None) -> datetime:
    text = text or os.environ.get("STEADYHAND_NOW")
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            Problem(f"--now {text!r} is not a date-time", "write it like 2026-11-05T17:00+01:00")
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.timezone if settings else "UTC"))
    return moment.astimezone(UTC)


#: Runtimes this command built; the entry point closes them when the command ends.
OPEN: list[services.Runtime] = []


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


def _runtime(settings: Settings, now: datetime | None = None) -> services.Runtime:
    fixed = now
    rt = services.Runtime(
        settings=settings,
        store=Store(settings.store_url),
        transport=services.build_transport(settings),
        clock=(lambda: fixed) if fixed else (lambda: datetime.now(UTC)),
    )
    OPEN.append(rt)
    return rt
