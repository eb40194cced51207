"""``steadyhand``: the command line (Typer + Rich). Each command is thin: resolve settings,
build the runtime, call one function of the cycle, print, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input or config. Errors are one clear line each;
``-v`` adds the traceback and debug logging.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
from typer._click.exceptions import ClickException

from worker.cli.app import _State, app, close_all, err, reset_logging
from worker.core.errors import ConnectorError, MissingExtra, UserError

# -- entry point -----------------------------------------------------------------------


#: The exit code of Ctrl-C (128 + SIGINT), and what is said then. True of every command:
#: a sync stores each calendar in one transaction, an outbox row left claimed is taken up
#: again when its lease ends, an interrupted apply is finished by the next one.
INTERRUPTED = 130
INTERRUPTED_LINE = "interrupted: stopped before finishing (nothing stored is lost)"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI, mapping errors to one clear line and an exit code."""
    level = logging.getLogger().level
    try:
        return _main(argv)
    finally:
        close_all()
        reset_logging(level)


def _main(argv: list[str] | None) -> int:
    _State.reset()
    try:
        code = app(args=argv, standalone_mode=False)
        if code == INTERRUPTED:  # Typer turns Ctrl-C into Exit(130) itself, silently
            err.print(INTERRUPTED_LINE, markup=False)
        if isinstance(code, int):
            return code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (UserError, MissingExtra) as exc:
        _report(exc)
        return 2
    except ConnectorError as exc:
        _report(exc)
        return 1
    except KeyboardInterrupt:  # outside Typer's own handling (e.g. while it starts)
        err.print(INTERRUPTED_LINE, markup=False)
        return INTERRUPTED
    except typer.Abort:
        err.print("Aborted!", markup=False)
        return 1
    except ClickException as exc:
        # Typer parses with its own copy of click (typer._click): usage errors are its.
        exc.show()
        return exc.exit_code
    except Exception as exc:
        if _State.verbose:
            raise
        err.print(
            f"error: {type(exc).__name__}: {exc} (run with -v for the traceback)", markup=False
        )
        return 1
    return 0


def _report(exc: Exception) -> None:
    if _State.verbose:
        err.print_exception()
    problems: list[Any] = getattr(exc, "problems", None) or [str(exc)]
    for problem in problems:
        err.print(
            f"error: {problem}" if len(problems) == 1 else str(problem),
            markup=False,
            soft_wrap=True,
        )
    if len(problems) > 1:
        err.print(f"{len(problems)} problems.", markup=False)


# Each module registers its commands as it is imported, and `--help` lists them in that
# order: the splits keep isort from sorting them.
import worker.cli.calendars  # noqa: E402  (config check, init, sync)

# isort: split
import worker.cli.analyze  # noqa: E402  (analyze)

# isort: split
import worker.cli.run  # noqa: E402  (run, demo)

# isort: split
import worker.cli.accounts  # noqa: E402  (connect)
import worker.cli.doctor  # noqa: E402  (doctor)
import worker.cli.emails  # noqa: E402  (emails preview, recognize, unsubscribe)
import worker.cli.protect  # noqa: E402  (plan, apply, audit)
import worker.cli.store_admin  # noqa: E402  (upgrade, forget)

# isort: split
import worker.cli.serve  # noqa: E402, F401  (serve)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
