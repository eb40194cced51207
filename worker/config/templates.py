"""`config check`'s look at the templates: every template compiled, and each program's
rendered once with sample values under the render budget, in a child process bounded in
time and memory, so a hostile template is a problem line and never takes the checker down."""

from __future__ import annotations

import logging
import multiprocessing
import warnings
from multiprocessing.connection import Connection
from pathlib import Path

from worker.config.schema import Settings
from worker.core.errors import Problem

logger = logging.getLogger(__name__)


#: `config check` compiles the templates in a child process bounded in time and in memory
#: (beyond what it already uses): Jinja folds constants while compiling, so ``'x' * 10**10``
#: in a template would otherwise take the whole machine's memory before any error.
TEMPLATE_CHECK_SECONDS = 20.0
TEMPLATE_CHECK_MEMORY = 512 * 1024**2


def template_problems(
    settings: Settings,
    *,
    seconds: float = TEMPLATE_CHECK_SECONDS,
    memory: int = TEMPLATE_CHECK_MEMORY,
) -> list[Problem]:
    """Every template that does not compile (``mail.templates`` and the shipped ones), one
    problem each; a template that breaks the check itself (an exception, too much memory or
    time) is one problem too, never a crash or a hang."""
    source = str(settings.source) if settings.source else None
    folder = settings.path(settings.mail.templates) if settings.mail.templates else None
    try:
        missing = folder is not None and not folder.is_dir()
    except (OSError, ValueError):  # a name too long for the file system
        missing = True
    if folder is not None and missing:
        return [
            Problem(
                f"templates folder {folder} does not exist",
                "create it or fix the path",
                source,
                path="mail.templates",
            )
        ]
    if "fork" in multiprocessing.get_all_start_methods():
        result = _compile_bounded(folder, seconds, memory)
    else:  # pragma: no cover  (no fork: compile here, exceptions still become a problem)
        result = _compile_templates(folder)
    if isinstance(result, list):
        return result
    logger.warning("template check failed: %s", result)
    return [
        Problem(
            f"the templates cannot be compiled ({result})",
            "simplify or remove the template you changed last",
            source,
            path="mail.templates",
        )
    ]


def _compile_templates(folder: Path | None) -> list[Problem] | str:
    """The templates' problems, or the name of what stopped the check."""
    from worker import mail  # here, not at the top: mail imports jinja2

    try:
        return mail.check_templates(mail.environment(folder))
    except Exception as exc:  # MemoryError, RecursionError, OverflowError… from a template
        return type(exc).__name__


def _compile_bounded(folder: Path | None, seconds: float, memory: int) -> list[Problem] | str:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_compile_child, args=(folder, memory, send), daemon=True)
    with (
        warnings.catch_warnings()
    ):  # 3.12+ warns about fork beside threads; the child only compiles
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    send.close()
    result: list[Problem] | str
    try:
        if not receive.poll(seconds):
            result = f"took longer than {seconds:g} s"
        else:
            try:
                result = receive.recv()
            except (EOFError, OSError):
                result = "ran out of memory or crashed"
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receive.close()
    return result


def _compile_child(folder: Path | None, memory: int, send: Connection) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
    except (ImportError, OSError, ValueError):
        pass  # no such limit here: the time bound still holds
    result: list[Problem] | str
    try:
        result = _compile_templates(folder)
    except BaseException as exc:  # MemoryError past the limit, anything: one name for the parent
        result = type(exc).__name__
    try:
        send.send(result)
    finally:
        send.close()
