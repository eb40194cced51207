"""``steadyhand config check``, ``init`` and ``sync``: the configuration and the calendars.

The sync table and its lines live here; ``run --once`` and ``demo`` print the same table.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker import config as config_mod
from worker.cli.app import (
    ConfigOpt,
    NowOpt,
    PersonOpt,
    _config_path,
    _now,
    _runtime,
    _settings,
    app,
    err,
    out,
    sync_outcomes_said_by_command,
)
from worker.core.errors import ConfigError, Problem, UserError
from worker.core.wording import plural
from worker.cycle import sync as syncing
from worker.cycle.runtime import Runtime
from worker.resources import shipped

config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _sync_table(reports: list[syncing.SyncReport]) -> Table:
    table = Table(title="Calendars", title_justify="left")
    for column in ("person", "calendar", "result", "events", "took"):
        table.add_column(column, justify="right" if column in ("events", "took") else "left")
    for r in reports:
        where = escape(f"{r.kind}: {_short(r.location)}")
        table.add_row(escape(r.owner), where, _sync_result(r), str(r.events), _took(r))
    return table


def _sync_result(r: syncing.SyncReport) -> str:
    """What became of one calendar, in Rich markup (the table's cell, the line's middle)."""
    result = {
        "read": "[green]read[/]",
        "unchanged": "unchanged",
        "failed": f"[red]failed[/]: {escape(r.error or '')}",
    }[r.outcome]
    if r.said:
        result += f", [yellow]{escape(r.said)}[/]"
    return result


def _took(r: syncing.SyncReport) -> str:
    return f"{r.seconds * 1000:.0f} ms"


def _sync_line(r: syncing.SyncReport) -> str:
    """One calendar as its sync ends, when stdout is not a terminal (a pipe, a log)."""
    where = escape(f"{r.kind}: {r.location}")
    count = (
        "" if r.outcome == "failed" else "1 event, " if r.events == 1 else f"{r.events} events, "
    )
    return f"{escape(r.owner)} ({where}): {_sync_result(r)}, {count}{_took(r)}"


def _short(location: str) -> str:
    return location if len(location) < 48 else "…" + location[-47:]


# -- commands --------------------------------------------------------------------------


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Report every problem in the config as FILE:LINE: key: what — fix; exit 2 if any.
    Warnings (what works, but not as one may think) are printed too and keep exit 0."""
    path = _config_path(config)[0]
    settings, problems, warnings = config_mod.inspect(path)
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)
    if problems or settings is None:
        raise ConfigError(problems)
    problems = config_mod.template_problems(settings)
    if problems:
        raise ConfigError(problems)
    out.print(
        f"{path}: OK — {plural(len(settings.people), 'person', 'people')}, "
        f"{plural(len(settings.teams), 'team')}, {plural(len(settings.accounts), 'account')}"
    )


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Where to write it.")] = Path(".")) -> None:
    """Write a starter steadyhand.yaml (the documented example) into DIR."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / config_mod.DEFAULT_NAME
    if target.exists():
        raise UserError(Problem(f"{target} exists already", "edit it, or choose another folder"))
    shutil.copyfile(shipped("config") / "example.yaml", target)
    out.print(f"Wrote {target}. Edit it, then run `steadyhand config check`.", markup=False)


@app.command("sync")
def sync_cmd(config: ConfigOpt = None, person: PersonOpt = None, now: NowOpt = None) -> None:
    """Read every calendar (or one person's) into the store and say what was read."""
    settings = _settings(config)
    rt = _runtime(settings)

    # Each calendar's outcome is said once: a failure whole on stderr (a table cell wraps
    # and cuts a long path; its row says "failed: see below"), notes in its row; the
    # log's WARNING of either does not reach the terminal here (a log file keeps it).
    with sync_outcomes_said_by_command():
        reports = _sync_with_progress(rt, _now(now, settings), person)
    failed = [r for r in reports if r.outcome == "failed"]
    out.print(_sync_table([_see_below(r) for r in reports]))
    if not reports:
        out.print("No calendars configured: add `calendar:` to people in the config.")
    if failed:
        for r in failed:
            err.print(f"error: {r.error}", markup=False, soft_wrap=True)
        raise typer.Exit(2 if any(r.fixable for r in failed) else 1)


def _see_below(r: syncing.SyncReport) -> syncing.SyncReport:
    """A failure's report as the table and the lines show it: its error is said below."""
    return dataclasses.replace(r, error="see below") if r.outcome == "failed" else r


def _sync_with_progress(rt: Runtime, now: datetime, person: str | None) -> list[syncing.SyncReport]:
    """:func:`syncing.sync` with a progress bar (calendars done of all) on a terminal,
    and one line per calendar as it ends otherwise (a pipe, a log)."""
    if not out.is_terminal:

        def line(r: syncing.SyncReport) -> None:
            out.print(_sync_line(_see_below(r)), soft_wrap=True)

        return syncing.sync(rt, now, person=person, on_done=line)
    columns = (
        TextColumn("Syncing calendars"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("", total=None)
        return syncing.sync(
            rt,
            now,
            person=person,
            on_total=lambda n: progress.update(task, total=n),
            on_done=lambda r: progress.update(task, advance=1, description=escape(r.owner)),
        )
