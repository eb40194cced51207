"""``steadyhand analyze``: the load report as a table, JSON, CSV or HTML."""

from __future__ import annotations

import io
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from worker import report
from worker.cli.app import ConfigOpt, NowOpt, PersonOpt, _now, _runtime, _settings, app, err, out
from worker.config import Settings
from worker.core.errors import Problem, UserError
from worker.cycle.figures import load_report
from worker.cycle.runtime import Runtime, select
from worker.report import sentiment
from worker.report import tables as report_table
from worker.report.html import render_html


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
        built, synced = load_report(rt, moment, first, last, person, team)
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
        side = _side_by_side(rt, settings, built, first, last, person, team)
        text = render_html(
            built,
            generated_at=moment.strftime("%Y-%m-%d %H:%M UTC"),
            thresholds={
                **settings.overload.model_dump(),
                "min_team_size": settings.privacy.min_team_size,
            },
            names=names,
            side_by_side=side,
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


def _side_by_side(
    rt: Runtime,
    settings: Settings,
    built: dict[str, Any],
    first: date,
    last: date,
    person: str | None,
    team: str | None,
) -> list[dict[str, Any]]:
    """The report's "Load and pulse" section: the store's pulse counts handed to the report."""
    _people, teams = select(settings, person, team)
    weeks = (sentiment.week_of(first), sentiment.week_of(last))
    pulse = {
        t.name: [
            sentiment.PulseFigure(c.question, c.period, c.respondents, c.histogram)
            for c in rt.store.pulse_counts(t.everyone, *weeks)
        ]
        for t in teams
    }
    asked = settings.emails.pulse.questions if settings.emails.pulse else ()
    if not asked or not any(pulse.values()):
        return []  # no pulse answers in the period: nothing to put beside the load
    return sentiment.section(
        built,
        [(t.name, t.everyone) for t in teams],
        pulse,
        [(q.id, q.text) for q in asked],
        settings.privacy.min_team_size,
    )
