"""What every ``steadyhand`` command shares: the Typer app, the consoles, the common
options and how a command turns them into settings, a clock and a runtime."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from typer._click import Command
from typer.core import TyperGroup

from connectors.secrets import RedactFilter
from worker import config as config_mod
from worker.config import Settings
from worker.config.loading import locate
from worker.core.errors import Problem, UserError
from worker.core.model import UTC
from worker.cycle import sync as syncing
from worker.cycle.runtime import Runtime, build_transport
from worker.store import Store


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class _State:
    """The global options of this run (given before or after the command)."""

    verbose = False
    config: Path | None = None
    now: str | None = None
    log_level: LogLevel | None = None
    log_format = LogFormat.text
    #: The level of steadyhand's own loggers when neither -v nor --log-level is given.
    default_level = LogLevel.warning

    @classmethod
    def reset(cls) -> None:
        cls.verbose, cls.config, cls.now = False, None, None
        cls.log_level, cls.log_format = None, LogFormat.text
        cls.default_level = LogLevel.warning


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER = "steadyhand"


#: steadyhand's own loggers; every other one (huey, urllib3, googleapiclient, msal,
#: sqlalchemy…) is a library's, and logs warnings only unless ``--log-level debug``.
OWN_LOGGERS = ("worker", "connectors")


def log_levels() -> tuple[int, int]:
    """``(steadyhand's level, the libraries' level)`` for this run: ``--log-level`` for
    steadyhand (``debug`` for the libraries too), else DEBUG with ``-v`` (steadyhand's
    loggers only), else the command's default (INFO for ``run``, WARNING otherwise); the
    libraries at WARNING, or at steadyhand's level when that is higher."""
    own = _State.log_level or (LogLevel.debug if _State.verbose else _State.default_level)
    own_level = logging.getLevelNamesMapping()[own.value.upper()]
    if _State.log_level is LogLevel.debug:
        return own_level, logging.DEBUG
    return own_level, max(own_level, logging.WARNING)


def configure_logging() -> None:
    """The levels of :func:`log_levels` and one stderr handler in the chosen format; like
    ``basicConfig``, a process (or test run) that has its own handlers keeps them, and
    its levels unless one was asked for (``-v``, ``--log-level``)."""
    own, libraries = log_levels()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(handler)
    if not root.handlers or _State.log_level or _State.verbose:
        root.setLevel(libraries)
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(own)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER)
        json_lines = _State.log_format is LogFormat.json
        handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())


def log_by_default(level: LogLevel) -> None:
    """Make ``level`` this command's default (``run`` logs at INFO)."""
    _State.default_level = level
    configure_logging()


def reset_logging(level: int) -> None:
    """Undo :func:`configure_logging` (for callers that run commands in-process)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


@contextmanager
def sync_outcomes_said_by_command() -> Iterator[None]:
    """While a command syncs and then says each calendar's outcome itself, once (its
    table, its lines: a failure, or what was read around), the log's WARNING of it does
    not reach the terminal (a log file keeps it; -v adds a failure's traceback at DEBUG)."""

    def not_said_by_command(record: logging.LogRecord) -> bool:
        return not getattr(record, syncing.SAID_BY_COMMAND, False)

    terminals = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    said = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) in terminals]
    for handler in said:
        handler.addFilter(not_said_by_command)
    try:
        yield
    finally:
        for handler in said:
            handler.removeFilter(not_said_by_command)


def _set_verbose(value: bool) -> bool:
    if value:
        _State.verbose = True
        configure_logging()
    return value


def _set_level(value: LogLevel | None) -> LogLevel | None:
    if value is not None:
        _State.log_level = value
        configure_logging()
    return value


def _set_format(value: LogFormat | None) -> LogFormat | None:
    if value is not None:
        _State.log_format = value
        configure_logging()
    return value


def _print_version(value: bool) -> None:
    if value:
        out.print(f"steadyhand {metadata.version('steadyhand')}", markup=False)
        raise typer.Exit()


_GLOBAL = "Global options (before or after the command)"
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "-v",
        "--verbose",
        help="Tracebacks and steadyhand's debug logs (libraries' too: --log-level debug).",
        callback=_set_verbose,
        rich_help_panel=_GLOBAL,
    ),
]
LogLevelOpt = Annotated[
    LogLevel | None,
    typer.Option(
        "--log-level",
        help="Log from this level on (default warning, info for run; debug with -v). "
        "Libraries log warnings only, unless debug.",
        callback=_set_level,
        case_sensitive=False,
        rich_help_panel=_GLOBAL,
    ),
]
LogFormatOpt = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        help="text, or json: one JSON object per line.",
        callback=_set_format,
        rich_help_panel=_GLOBAL,
    ),
]

_logging_options = typer.Typer()


@_logging_options.command()
def _logging_command(
    verbose: VerboseOpt = False, log_level: LogLevelOpt = None, log_format: LogFormatOpt = None
) -> None:
    """Only its options are used: every command takes them (see :class:`_Group`)."""


class _Group(TyperGroup):
    """The root group: every command under it also takes -v, --log-level and --log-format
    after its name (``-c`` and ``--now`` are declared by the commands that use them)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            _add_logging_options(command)


def _add_logging_options(command: Command) -> None:
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _add_logging_options(sub)
        return
    taken = {opt for param in command.params for opt in param.opts}
    for param in typer.main.get_command(_logging_options).params:
        if not taken.intersection(param.opts):
            param.expose_value = False
            command.params.append(param)


app = typer.Typer(
    name="steadyhand",
    help="Keep humane routines: calendar load, protected blocks and kind emails.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        help="The config file (default: $STEADYHAND_CONFIG, ./steadyhand.yaml, "
        "~/.config/steadyhand/, /etc/steadyhand/).",
        rich_help_panel=_GLOBAL,
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Fix the clock (ISO date-time; also STEADYHAND_NOW).",
        show_default=False,
        rich_help_panel=_GLOBAL,
    ),
]
PersonOpt = Annotated[str | None, typer.Option("--person", help="Only this person (email).")]


@app.callback()
def _root(
    config: ConfigOpt = None,
    now: NowOpt = None,
    verbose: VerboseOpt = False,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    _State.config, _State.now = config, now
    configure_logging()


# -- helpers ---------------------------------------------------------------------------


def _config_path(path: Path | None) -> tuple[Path, str]:
    """The config file (``-c`` after the command, else before it, else the search) and
    how it was found."""
    return locate(path or _State.config)


def _settings(path: Path | None) -> Settings:
    return config_mod.load(_config_path(path)[0])


def _given_now(text: str | None) -> str | None:
    """``--now`` (after the command, else before it), else ``$STEADYHAND_NOW``."""
    return text or _State.now or os.environ.get("STEADYHAND_NOW")


def _now(text: str | None, settings: Settings | None = None) -> datetime:
    text = _given_now(text)
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
OPEN: list[Runtime] = []


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


def _runtime(
    settings: Settings, now: datetime | None = None, store: Store | None = None
) -> Runtime:
    fixed = now
    rt = Runtime(
        settings=settings,
        store=store or Store(settings.store_url),
        transport=build_transport(settings),
        clock=(lambda: fixed) if fixed else (lambda: datetime.now(UTC)),
    )
    OPEN.append(rt)
    return rt
