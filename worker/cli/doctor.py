"""`steadyhand doctor`: the health check. It connects to the store and the queue, looks at
every configured calendar, account token and outbox row, and exits 0 when all is well or
1 with one line per thing that needs a person, each with its fix."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import HasTokenHealth
from worker import config as config_mod
from worker.cli.app import ConfigOpt, _config_path, _now, _runtime, app, out
from worker.core.errors import MissingExtra, UserError
from worker.core.model import redact_location
from worker.core.wording import day_label, plural
from worker.store import CalendarStatus, Store

#: How far back `doctor` lists the sends dropped as too late (information, not a problem).
DROPPED_SHOWN = timedelta(days=7)


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """The store, the queue, each calendar, token and outbox row; exit 1 when something
    needs a person (one line each, with the fix), 0 when all is well."""
    path, how = _config_path(config)
    out.print(f"config {path} (from {how})", markup=False)
    settings = config_mod.load(path)
    needs: list[str] = []
    try:
        store = Store(settings.store_url)
        store.calendars()
    except UserError as exc:  # it answers, but cannot be used as it is (an old schema…)
        out.print(f"store  {redact_location(settings.store)}: not usable", markup=False)
        needs.extend(str(p) for p in exc.problems)
        _say_needs(needs)
        return
    except (SQLAlchemyError, OSError) as exc:
        out.print(f"store  {redact_location(settings.store)}: cannot be reached", markup=False)
        needs.append(
            f"store {redact_location(settings.store)}: cannot be reached "
            f"({type(exc).__name__}) — start the database or fix store: in the config"
        )
        _say_needs(needs)
        return
    out.print(f"store  {redact_location(settings.store)}: ok", markup=False)
    needs += _doctor_queue(settings)
    needs += _doctor_calendars(settings, store)
    needs += _doctor_tokens(settings)
    now = _now(None, settings)
    needs += _doctor_outbox(store, now)
    _say_dropped(store, now)
    _say_needs(needs)


def _say_needs(needs: list[str]) -> None:
    if not needs:
        out.print("All well.")
        return
    noun = "thing needs" if len(needs) == 1 else "things need"
    out.print(f"{len(needs)} {noun} a person:")
    for line in needs:
        out.print(f"  - {line}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _doctor_queue(settings: config_mod.Settings) -> list[str]:
    """The queue, for real: connect and count what waits."""
    from worker.queue.app import build_huey

    shown = redact_location(settings.queue)
    try:
        depth = build_huey(settings).pending_count()
    except Exception as exc:  # whatever the backend raises: the queue is not there
        out.print(f"queue  {shown}: cannot be reached", markup=False)
        return [
            f"queue {shown}: cannot be reached ({type(exc).__name__}) — start it "
            "(redis-server) or fix queue: in the config"
        ]
    out.print(f"queue  {shown}: ok, {depth} waiting", markup=False)
    return []


def _doctor_calendars(settings: config_mod.Settings, store: Store) -> list[str]:
    table = Table(title="Calendars", title_justify="left")
    for column in ("calendar", "events", "last good sync", "last error / note"):
        table.add_column(column)
    known = {c.calendar_key: c for c in store.calendars()}
    needs = []
    for p in settings.people:
        ref = settings.calendar_ref(p.email)
        if ref is not None and ref.key not in known:
            table.add_row(escape(ref.key), "0", "never", "")
            needs.append(f"{ref.key}: never synced — run `steadyhand sync`")
    for c in known.values():
        last = c.last_ok.strftime("%Y-%m-%d %H:%M UTC") if c.last_ok else "never"
        said = [f"truncated: {c.truncated}"] if c.truncated else []
        said += [n.text for n in c.notes]
        note = c.last_error or (f"read, {'; '.join(said)}" if said else "")
        table.add_row(escape(c.calendar_key), str(c.event_count), last, escape(note))
        if c.last_error:
            needs.append(f"{c.calendar_key}: {c.last_error} — fix it, then `steadyhand sync`")
    out.print(table)
    _say_read_around(list(known.values()))
    return needs


def _say_read_around(calendars: list[CalendarStatus]) -> None:
    """The events each calendar's last read skipped, repaired or read in another zone,
    named by file and UID (docs/calendars.md)."""
    named = [(c, n) for c in calendars for n in c.notes if n.events]
    if not named:
        return
    out.print("Read around in the last sync (docs/calendars.md):")
    for c, n in named:
        out.print(f"  {c.calendar_key}: {n.text}:", markup=False, soft_wrap=True)
        for event in n.events:
            out.print(f"    {event}", markup=False, soft_wrap=True)
        if n.count > len(n.events):
            out.print(f"    and {n.count - len(n.events)} more", markup=False)


def _doctor_tokens(settings: config_mod.Settings) -> list[str]:
    rt = _runtime(settings)
    tokens = Table(title="Tokens", title_justify="left")
    for column in ("account", "person", "status", "what to do"):
        tokens.add_column(column)
    needs = []
    for p in settings.people:
        ref = settings.calendar_ref(p.email)
        if ref is None or ref.account is None:
            continue
        try:
            connector = rt.connector(ref)
            health = connector.token_health if isinstance(connector, HasTokenHealth) else None
        except MissingExtra as exc:
            tokens.add_row(escape(ref.account), escape(p.email), "missing extra", escape(str(exc)))
            needs.append(f"{p.email} ({ref.account}): {exc}")
            continue
        if health is not None:
            status, detail = health(p.email)
            tokens.add_row(escape(ref.account), escape(p.email), escape(status), escape(detail))
            if status != "ok":
                needs.append(f"{p.email} ({ref.account}): token {status}: {detail}")
    if tokens.row_count:
        out.print(tokens)
    return needs


def _doctor_outbox(store: Store, now: datetime) -> list[str]:
    pending = store.outbox_rows("pending")
    failed = store.outbox_rows("failed")
    stuck = store.stuck_claims(now)
    out.print(f"outbox {len(pending)} pending, {len(failed)} failed, {len(stuck)} stuck")
    needs = []
    for row in failed:
        out.print(f"  failed {escape(row.key)}: {escape(row.last_error or '')}")
        needs.append(
            f"outbox row {row.key} failed: {row.last_error or '?'} — fix the cause; "
            "`steadyhand audit` tells more"
        )
    for row in stuck:
        needs.append(
            f"outbox row {row.key} is claimed by a worker that stopped — start `steadyhand run`"
            " (its sweeper takes it over)"
        )
    decisions = store.recent_failures("decide_failed")
    if decisions:
        out.print(f"decisions that failed (latest first): {len(decisions)}")
        for person, program, error, times in decisions:
            again = f" ({times} times)" if times > 1 else ""
            out.print(f"  {escape(program)} for {escape(person)}: {escape(error)}{again}")
    return needs


def _say_dropped(store: Store, now: datetime) -> None:
    """The sends dropped lately because they came too late to be true (a reflection more
    than a working day late): not a problem to fix, so they leave the exit code alone."""
    seen: dict[str, str] = {}
    for entry in store.audit_since("dropped", now - DROPPED_SHOWN):
        subject = entry["subject"] or ""
        why = str(entry["detail"].get("why") or "too late")
        seen.setdefault(subject, f"{_what_was_dropped(subject)} ({why.partition(':')[0]})")
    lines = list(reversed(seen.values()))  # oldest first
    days = DROPPED_SHOWN.days
    if len(lines) == 1:
        out.print(f"Dropped in the last {days} days: {escape(lines[0])}", soft_wrap=True)
    elif lines:
        out.print(f"Dropped in the last {days} days ({plural(len(lines), 'email')}):")
        for line in lines:
            out.print(f"  {escape(line)}", soft_wrap=True)


def _what_was_dropped(key: str) -> str:
    """``reflection to dee@example.com for Wednesday 4 November`` from its outbox key."""
    program, _, rest = key.partition(":")
    recipient, _, period = rest.partition(":")
    if not recipient:
        return key
    try:
        when = day_label(date.fromisoformat(period))
    except ValueError:
        when = period
    return f"{program} to {recipient}" + (f" for {when}" if when else "")
