"""``steadyhand run`` (the worker, or ``--once`` one cycle inline) and ``steadyhand demo``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from cryptography.fernet import Fernet
from rich.markup import escape

from connectors.secrets import KEY_ENV, private_file
from connectors.vdir import import_ics
from worker import config as config_mod
from worker import report
from worker.cli import seed as seeding
from worker.cli.app import (
    ConfigOpt,
    LogLevel,
    NowOpt,
    _config_path,
    _given_now,
    _now,
    _runtime,
    app,
    err,
    log_by_default,
    out,
    sync_outcomes_said_by_command,
)
from worker.cli.calendars import _sync_table
from worker.config import CalendarSettings, Settings
from worker.core.errors import Problem, UserError
from worker.core.model import UTC, redact_location
from worker.core.wording import plural
from worker.cycle import decide
from worker.cycle import sync as syncing
from worker.cycle.deliver import NOT_SENT, deliver, make_links
from worker.cycle.figures import load_report
from worker.cycle.run import CycleReport, run_cycle
from worker.cycle.runtime import Runtime
from worker.mail_links import reflection_links
from worker.resources import shipped

logger = logging.getLogger("worker.cli")  # not __main__ under `python -m worker.cli`

#: The fixed moment `steadyhand demo` runs at: Thursday 5 November 2026, 16:45 in Berlin.
DEMO_NOW = datetime(2026, 11, 5, 16, 45, tzinfo=ZoneInfo("Europe/Berlin"))
DEMO_HORIZON = timedelta(weeks=1)


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
            cycle = run_cycle(rt, rt.clock())
        _print_cycle(rt, cycle)
        return
    # Imported here, so that only the worker loads Huey (the other commands start faster).
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


def _print_cycle(rt: Runtime, report: CycleReport) -> None:
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


def demo_settings(directory: Path) -> Settings:
    """The demo team's settings (config/demo.yaml) with its store, queue, outbox and
    calendars under ``directory`` (the demo's ``var/``). The bundled calendars are copied
    (once) into ``directory/calendars/`` as writable vdir folders. A folder seeded by
    ``demo --weeks`` adds the Research team (:mod:`worker.cli.seed`)."""
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
    return seeding.with_research(settings, var) if seeding.seeded_weeks(var) else settings


def demo_key(directory: Path) -> str:
    """The secret key the demo's links are signed with: ``STEADYHAND_SECRET_KEY`` when it
    is set, else the one in ``directory/secret.key``, made there once (readable by its
    owner only), so that ``steadyhand serve --demo`` accepts the links of the demo's emails."""
    given = os.environ.get(KEY_ENV, "")
    if given.strip():
        return given
    path = directory.resolve() / "secret.key"
    if path.is_file():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    private_file(path)
    key = Fernet.generate_key().decode()
    path.write_text(key + "\n", encoding="utf-8")
    return key


@contextlib.contextmanager
def _demo_key_set(directory: Path) -> Iterator[None]:
    """``STEADYHAND_SECRET_KEY`` set to :func:`demo_key` while the demo runs."""
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = demo_key(directory)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before


@app.command()
def demo(
    now: NowOpt = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where var/ goes.")] = Path("var"),
    weeks: Annotated[
        int,
        typer.Option(
            "--weeks",
            min=0,
            max=seeding.MAX_WEEKS,
            help="Seed this many weeks of generated calendars and answers before the "
            "demo's moment, with a second team (Research), for the dashboard.",
        ),
    ] = 0,
) -> None:
    """One cycle on the bundled demo team (config/demo.yaml) into ./var/.

    The bundled calendars are copied (once) into ./var/calendars/ as writable vdir
    folders, so the demo can book protected blocks on them; then one cycle runs:
    sync, the load table, the plan of protected blocks applied, reflection emails. Their
    links are signed with STEADYHAND_SECRET_KEY, or without it with a key the demo makes
    once in ./var/secret.key; `steadyhand serve --demo` opens them. With --weeks N the
    N weeks before the demo's week get generated data (the same every time)."""
    if weeks:
        _mark_seeded(directory, weeks)
    settings = demo_settings(directory)
    var = directory.resolve()
    moment = _now(now, settings) if _given_now(now) else DEMO_NOW
    with _demo_key_set(directory):
        rt = _runtime(settings, moment)
        teams = " and ".join(t.name for t in settings.teams)
        out.print(
            f"[bold]steadyhand demo[/]: the {teams} team{'s' if len(settings.teams) > 1 else ''}, "
            f"{len(settings.people)} people in 2 time zones, at "
            f"{moment.astimezone(ZoneInfo('Europe/Berlin')):%A %d %B %Y %H:%M} Berlin "
            f"({moment.astimezone(ZoneInfo('America/New_York')):%H:%M} New York)"
        )
        with sync_outcomes_said_by_command():
            synced = syncing.sync(rt, moment)
        _print_syncs(synced)
        if weeks:
            _print_seeded(seeding.seed(rt, moment, weeks))
        out.print(_load_table(rt, moment))
        calendars = escape(str(var / "calendars"))
        out.print(f"[bold]Protected blocks[/] for the coming week, written to {calendars}:")
        # Imported here, not at the top: cli.protect registers its commands as it is
        # imported, and `--help` lists them after run and demo.
        from worker.cli.protect import apply_all

        apply_all(rt, moment, DEMO_HORIZON)
        decided = decide.decide(rt, moment)
        deliveries = [deliver(rt, i, moment) for i in rt.store.due_ids(moment)]
        _print_emails(rt, CycleReport([], decided, deliveries), moment, var)
        _print_web_side(rt, moment, directory)


def _mark_seeded(directory: Path, weeks: int) -> None:
    """Note in the demo's folder that it holds ``weeks`` seeded weeks; a folder seeded
    with another number is refused (its answers would mix)."""
    before = seeding.seeded_weeks(directory)
    if before and before != weeks:
        raise UserError(
            Problem(
                f"{directory} was seeded with {before} weeks, not {weeks}",
                f"run the demo with --weeks {before}, or in a fresh folder (--dir)",
            )
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory.resolve() / seeding.MARKER).write_text(f"{weeks}\n", encoding="utf-8")


def _print_seeded(done: seeding.Seeded) -> None:
    last = done.first + timedelta(weeks=done.weeks, days=-1)
    kinds = ", ".join(f"{name} {count:,}" for name, count in sorted(done.answers.items()))
    again = "" if done.changed else " (the same as before: nothing changed)"
    out.print(
        f"[bold]Seeded[/] {plural(done.weeks, 'week')} ({done.first:%a %d %b} – "
        f"{last:%a %d %b %Y}) for {done.people} people in {len(done.teams)} teams "
        f"({', '.join(done.teams)}): {done.events:,} calendar events, "
        f"{done.answer_count:,} answers ({kinds}); {done.changed:,} new or changed{again}.",
        soft_wrap=True,
    )


def _print_web_side(rt: Runtime, now: datetime, directory: Path) -> None:
    """How to try the web side: the ``serve`` command, and the first reflection's
    "How was today?" link, made as its email made it (same key, claim and moment)."""
    command = ".venv/bin/steadyhand serve --demo"
    if directory != Path("var"):
        command += f" --dir {directory}"
    if now != DEMO_NOW:  # `serve --demo` runs at the demo's moment unless told otherwise
        command += f" --now {now.isoformat()}"
    sent = [
        r
        for r in rt.store.outbox_rows("done")
        if r.program == "reflection" and (r.result or "").split(":")[0] not in NOT_SENT
    ]
    if not sent:
        return
    first = sent[0]
    links = reflection_links(make_links(rt.settings), first.recipient, first.period, now)
    if not links["scores"]:  # no web.base_url: no web links to try
        return
    name = rt.settings.person(first.recipient).name
    out.print("Try the web side: run", markup=False)
    out.print(f"  {command}", markup=False, soft_wrap=True)
    out.print(
        f'then open the "How was today?" link of {name}\'s reflection (score 4):', markup=False
    )
    out.print(f"  {links['scores'][3]['url']}", markup=False, soft_wrap=True)
    research = next((t for t in rt.settings.teams if t.name == "Research"), None)
    if research is not None:  # a seeded demo (--weeks): its weeks are on the dashboard
        base = links["scores"][3]["url"].split("/answer/")[0]
        out.print(
            f"and the dashboard: open {base}/dashboard and sign in as {research.leader} "
            f"(the leader of {research.name}); the sign-in link is emailed into "
            f"{rt.settings.mail.outbox}/new/",
            markup=False,
        )


def _load_table(rt: Runtime, now: datetime) -> Any:
    start, end = date(2026, 10, 26), date(2026, 11, 8)
    built, _ = load_report(rt, now, start, end)
    names = {p.email: p.name for p in rt.settings.persons()}
    return report.table(built, names, f"Meeting load, {start:%a %d %b} – {end:%a %d %b %Y}")


def _print_emails(rt: Runtime, report: CycleReport, now: datetime, var: Path) -> None:
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
        if d.outcome in NOT_SENT:
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
