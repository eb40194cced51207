"""``steadyhand``: the command line (Typer + Rich). Each command is thin: resolve settings,
build the runtime, call one service function, print, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input or config. Errors are one clear line each;
``-v`` adds the traceback and debug logging.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer._click.exceptions import ClickException

from connectors.vdir import import_ics
from worker import config as config_mod
from worker import report
from worker.cli.app import (
    ConfigOpt,
    LogLevel,
    NowOpt,
    PersonOpt,
    _config_path,
    _given_now,
    _now,
    _runtime,
    _settings,
    _State,
    app,
    close_all,
    err,
    log_by_default,
    out,
    reset_logging,
    sync_outcomes_said_by_command,
)
from worker.config import CalendarSettings
from worker.core.errors import ConfigError, ConnectorError, MissingExtra, Problem, UserError
from worker.core.model import UTC, redact_location
from worker.core.wording import plural
from worker.cycle import decide, services
from worker.cycle import sync as syncing
from worker.report import tables as report_table
from worker.resources import shipped

logger = logging.getLogger("worker.cli")  # not __main__ under `python -m worker.cli`

config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

#: The fixed moment `steadyhand demo` runs at: Thursday 5 November 2026, 16:45 in Berlin.
DEMO_NOW = datetime(2026, 11, 5, 16, 45, tzinfo=ZoneInfo("Europe/Berlin"))
DEMO_HORIZON = timedelta(weeks=1)


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


def _sync_with_progress(
    rt: services.Runtime, now: datetime, person: str | None
) -> list[syncing.SyncReport]:
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


@app.command()
def analyze(
    config: ConfigOpt = None,
    start: Annotated[str | None, typer.Option("--from", help="First day (2026-11-23).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, inclusive.")] = None,
    week: Annotated[str | None, typer.Option("--week", help="An ISO week: 2026-W48.")] = None,
    person: PersonOpt = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv | html")] = "table",
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="The table's layout: day | week. Default: day for up to two weeks "
            "whose days fit the width, week otherwise.",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    now: NowOpt = None,
) -> None:
    """Meeting load per person and day, overloaded days and why (docs/metrics.md)."""
    if fmt not in ("table", "json", "csv", "html"):
        raise UserError(Problem(f"--format {fmt!r} is not known", "use table, json, csv or html"))
    if person and team:
        raise UserError(Problem("give either --person or --team, not both"))
    if by is not None and by not in report_table.LAYOUTS:
        raise UserError(Problem(f"--by {by!r} is not known", "use day or week"))
    if by is not None and fmt != "table":
        raise UserError(
            Problem(
                f"--by shapes the table, not --format {fmt}", "drop --by, or use --format table"
            )
        )
    settings = _settings(config)
    moment = _now(now, settings)
    first, last = report.resolve_period(
        moment.astimezone(ZoneInfo(settings.timezone)).date(), start, end, week
    )
    rt = _runtime(settings)
    with err.status("Reading calendars…"):
        built, synced = services.load_report(rt, moment, first, last, person, team)
    for r in synced:
        if r.outcome == "failed":
            err.print(f"warning: {r.error}", markup=False, soft_wrap=True)
    names = {p.email: p.name for p in settings.persons()}
    if fmt == "table":
        title = f"Meeting load, {first:%a %d %b} – {last:%a %d %b %Y}"
        if output:
            console = Console(file=io.StringIO(), width=200, no_color=True)
            console.print(report.table(built, names, title, by))
            for line in report.notes(built, names):
                console.print(line, markup=False, soft_wrap=True)
            _write(output, console.file.getvalue())  # type: ignore[attr-defined]
        else:
            out.print(report.table(built, names, title, by))
            for line in report.notes(built, names):
                out.print(line, markup=False, soft_wrap=True)
        return
    if fmt == "json":
        text = report.to_json(built)
    elif fmt == "csv":
        text = report.to_csv(built)
    else:
        from worker.report.html import render_html

        text = render_html(
            built,
            generated_at=moment.strftime("%Y-%m-%d %H:%M UTC"),
            thresholds={
                **settings.overload.model_dump(),
                "min_team_size": settings.privacy.min_team_size,
            },
            names=names,
        )
    if output:
        _write(output, text)
    else:
        sys.stdout.write(text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    err.print(f"wrote {path}", markup=False)


@app.command()
def run(
    config: ConfigOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="One full cycle in-process, then exit.")
    ] = False,
    now: NowOpt = None,
    workers: Annotated[int, typer.Option(help="Consumer worker threads.")] = 2,
) -> None:
    """The worker: Huey consumer with the per-minute tick. Stop it with Ctrl-C.

    It logs at INFO unless told otherwise: a start line, a line per tick and per send, and
    one line per retry while the queue cannot be read. ``--once`` prints its tables."""
    path, found = _config_path(config)
    settings = config_mod.load(path)
    fixed = _now(now, settings) if _given_now(now) else None
    if once:
        rt = _runtime(settings, fixed or datetime.now(UTC))
        with sync_outcomes_said_by_command():
            cycle = services.run_cycle(rt, rt.clock())
        _print_cycle(rt, cycle)
        return
    from worker.queue.app import build_consumer, build_huey, open_store
    from worker.queue.tasks import register

    log_by_default(LogLevel.info)
    huey = build_huey(settings)
    logger.info(
        "steadyhand worker starting: config %s (from %s), store %s, queue %s, %s; Ctrl-C stops",
        path.resolve(),
        found,
        redact_location(settings.store),
        redact_location(settings.queue),
        plural(workers, "worker"),
    )
    try:
        store = open_store(settings)
    except KeyboardInterrupt:
        logger.info("steadyhand worker stopped")
        return
    register(huey, _runtime(settings, fixed, store))
    build_consumer(huey, settings, workers).run()
    logger.info("steadyhand worker stopped")


def _print_syncs(reports: list[syncing.SyncReport]) -> None:
    """The sync table, and each failure said once, whole, below it (a cell cuts a path)."""
    out.print(
        _sync_table(
            [
                dataclasses.replace(r, error="see below") if r.outcome == "failed" else r
                for r in reports
            ]
        )
    )
    for r in reports:
        if r.outcome == "failed":
            err.print(f"warning: {r.error}", markup=False, soft_wrap=True)


def _print_cycle(rt: services.Runtime, report: services.CycleReport) -> None:
    _print_syncs(list(report.syncs))
    # A row whose recipient opted out after it was decided is done, with nothing sent; so
    # is a reflection dropped as too late (its line below says why).
    count = Counter(d.outcome for d in report.deliveries)
    not_sent = [
        f"{count['unsubscribed']} not sent (unsubscribed)" if count["unsubscribed"] else "",
        f"{count['dropped']} dropped (too late)" if count["dropped"] else "",
    ]
    out.print(
        f"Decided {plural(len(report.decided), 'new email')}; "
        + ", ".join([f"sent {count['sent']}", *filter(None, not_sent)])
        + "."
    )
    if count["written"]:
        out.print(f"Wrote {plural(count['written'], 'protected-block change')} to calendars.")
    for d in report.deliveries:
        if d.outcome not in ("sent", "written", "skipped", "unsubscribed"):
            out.print(
                f"  [yellow]{d.outcome}[/] {escape(d.key)}: {escape(d.detail)}", soft_wrap=True
            )


@app.command()
def demo(
    now: NowOpt = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where var/ goes.")] = Path("var"),
) -> None:
    """One cycle on the bundled demo team (config/demo.yaml) into ./var/.

    The bundled calendars are copied (once) into ./var/calendars/ as writable vdir
    folders, so the demo can book protected blocks on them; then one cycle runs:
    sync, the load table, the plan of protected blocks applied, reflection emails."""
    base = config_mod.load(shipped("config") / "demo.yaml")
    var = directory.resolve()
    people = []
    for person in base.people:
        name = person.email.split("@")[0]
        folder = var / "calendars" / name
        if not folder.is_dir():
            import_ics(shipped("config") / "demo" / f"{name}.ics", folder)
        people.append(person.model_copy(update={"calendar": CalendarSettings(vdir=folder)}))
    settings = base.model_copy(
        update={
            "store": f"sqlite:///{var / 'steadyhand.db'}",
            "queue": f"sqlite:///{var / 'queue.db'}",
            "mail": base.mail.model_copy(update={"outbox": var / "outbox"}),
            "people": tuple(people),
        }
    )
    moment = _now(now, settings) if _given_now(now) else DEMO_NOW
    rt = _runtime(settings, moment)
    out.print(
        f"[bold]steadyhand demo[/]: the {settings.teams[0].name} team, "
        f"{len(settings.people)} people in 2 time zones, at "
        f"{moment.astimezone(ZoneInfo('Europe/Berlin')):%A %d %B %Y %H:%M} Berlin "
        f"({moment.astimezone(ZoneInfo('America/New_York')):%H:%M} New York)"
    )
    with sync_outcomes_said_by_command():
        synced = syncing.sync(rt, moment)
    _print_syncs(synced)
    out.print(_load_table(rt, moment))
    calendars = escape(str(var / "calendars"))
    out.print(f"[bold]Protected blocks[/] for the coming week, written to {calendars}:")
    from worker.cli.protect import apply_all

    apply_all(rt, moment, DEMO_HORIZON)
    decided = services.decide_emails(rt, moment)
    deliveries = [services.deliver(rt, i, moment) for i in rt.store.due_ids(moment)]
    _print_emails(rt, services.CycleReport([], decided, deliveries), moment, var)


def _load_table(rt: services.Runtime, now: datetime) -> Any:
    start, end = date(2026, 10, 26), date(2026, 11, 8)
    built, _ = services.load_report(rt, now, start, end)
    names = {p.email: p.name for p in rt.settings.persons()}
    return report.table(built, names, f"Meeting load, {start:%a %d %b} – {end:%a %d %b %Y}")


def _print_emails(
    rt: services.Runtime, report: services.CycleReport, now: datetime, var: Path
) -> None:
    sent = [d for d in report.deliveries if d.outcome == "sent"]
    if sent:
        out.print(
            f"[bold]Emails written[/] ({len(sent)}) to the outbox {escape(str(var / 'outbox'))}:"
        )
        for d in sent:
            out.print(f"  {d.key}  →  {d.detail}", markup=False)
    else:
        out.print(
            "No new email: everything due was written before (the ledger makes reruns no-ops)."
        )
    for d in report.deliveries:
        if d.outcome in services.NOT_SENT:
            out.print(f"  not sent: {d.key}: {d.detail}", markup=False, soft_wrap=True)
    upcoming = [
        c.due
        for c in decide.scheduled(rt, now)
        if c.due.program == "reflection" and not c.due.is_due(now)
    ]
    for u in upcoming:
        person = rt.settings.person(u.recipient)
        local = u.at.astimezone(person.tz)
        out.print(
            f"  next: reflection to {u.recipient} at {local:%a %H:%M} {person.timezone}",
            markup=False,
        )


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


import worker.cli.accounts  # noqa: E402  (registers its commands)
import worker.cli.doctor  # noqa: E402  (registers its commands)
import worker.cli.emails  # noqa: E402  (registers its commands)
import worker.cli.protect  # noqa: E402, F401  (registers its commands)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
