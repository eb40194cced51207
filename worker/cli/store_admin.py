"""``steadyhand upgrade`` (the store's schema migrations) and ``steadyhand forget EMAIL``
(erase what is stored about a person)."""

from __future__ import annotations

import glob
from typing import Annotated

import typer

from worker.cli.app import ConfigOpt, _config_path, app, err, out
from worker.config import load
from worker.core.errors import Problem, UserError
from worker.core.model import redact_location
from worker.core.wording import plural
from worker.store import ForgetReport, Store
from worker.store import upgrade as upgrade_store


@app.command()
def upgrade(config: ConfigOpt = None) -> None:
    """Bring the store's tables up to this steadyhand's schema (after installing a new one).

    Stop `steadyhand run` and `serve` first; they refuse a store that is behind. Safe to
    run again: a store that is up to date is left as it is."""
    path, _found = _config_path(config)
    settings = load(path)
    where = redact_location(settings.store)
    try:
        before, after = upgrade_store(settings.store_url)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"error: could not upgrade the store {where}: {reason}", markup=False)
        raise typer.Exit(1) from None
    if before is None:
        out.print(f"store {where} created at schema {after}", markup=False)
    elif before == after:
        out.print(f"store {where} is up to date ({after})", markup=False)
    else:
        out.print(f"store {where} upgraded from {before} to {after}", markup=False)


@app.command()
def forget(
    email: Annotated[str, typer.Argument(help="The person to forget (email).")],
    config: ConfigOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first.")] = False,
) -> None:
    """Delete everything stored about EMAIL but their opt-outs and their emails' keys.

    The opt-outs keep any email to them from starting again, the keys keep an email from
    being sent twice. It says what it deleted and what it kept and why. Their calendar is
    read again at the next sync while they are in the config's people."""
    person = email.strip().lower()
    if "@" not in person:
        raise UserError(Problem(f"{email!r} is not an email address", "write it like ana@x.org"))
    path, _found = _config_path(config)
    settings = load(path)
    store = Store(settings.store_url)
    try:
        if not yes:
            planned = store.forget(person, dry_run=True)
            out.print(f"Stored about {person}:", markup=False)
            for line in _deleted(planned) or ["nothing to delete"]:
                out.print(f"  {line}", markup=False)
            if not typer.confirm(f"Forget {person}? This cannot be undone", default=False):
                out.print("Nothing deleted.")
                raise typer.Exit(1)
        report = store.forget(person)
    finally:
        store.close()
    where = redact_location(settings.store)
    out.print(f"Forgot {person} in the store {where}:", markup=False)
    for line in _deleted(report) or ["nothing was stored about them to delete"]:
        out.print(f"  {line}", markup=False)
    out.print("Kept, and why:", markup=False)
    for line in _kept(report):
        out.print(f"  {line}", markup=False)
    tokens = sorted(settings.tokens_dir.glob(f"*_{glob.escape(person)}.token"))
    if tokens:
        out.print(
            f"  their sign-in token (steadyhand connect) is a file, not in the store: "
            f"{', '.join(str(t) for t in tokens)} — delete it when they leave",
            markup=False,
            soft_wrap=True,
        )
    if any(p.email == person for p in settings.people):
        emails = "" if "*" in report.opt_outs else " and their emails go on"
        out.print(
            f"{person} is still under people: in {path}: the next sync reads their calendar "
            f"again{emails} — remove them from the config to keep them forgotten.",
            markup=False,
            soft_wrap=True,
        )


def _deleted(r: ForgetReport) -> list[str]:
    """What went, one plain line a kind (none for a kind that had nothing)."""
    lines = []
    if r.events or r.calendars:
        notes = f" and {plural(r.notes, 'note')} of what it read" if r.notes else ""
        lines.append(
            f"deleted {plural(r.events, 'event')} and the sync state of "
            f"{plural(r.calendars, 'calendar')} of theirs{notes}"
        )
    if r.blocks:
        lines.append(f"deleted {plural(r.blocks, 'record')} of protected blocks on their calendar")
    if r.answers or r.preferences:
        pause = " and their pause" if r.preferences else ""
        lines.append(f"deleted {plural(r.answers, 'answer')}{pause}")
    if r.sign_ins:
        lines.append(f"deleted {plural(r.sign_ins, 'dashboard sign-in link')} sent to them")
    if r.experiments:
        lines.append(
            f"took their name off {plural(r.experiments, 'experiment')} they recorded "
            "(kept for their team)"
        )
    if r.audit:
        lines.append(f"deleted {plural(r.audit, 'audit entry', 'audit entries')} about them")
    if r.emails:
        cancelled = f" ({r.cancelled} not sent yet: cancelled)" if r.cancelled else ""
        lines.append(f"emptied {plural(r.emails, 'email')} to them{cancelled}")
    if r.others:
        lines.append(f"emptied {plural(r.others, 'email')} to other people that named them")
    return lines


def _kept(r: ForgetReport) -> list[str]:
    """What stays, and why, in plain words."""
    lines = []
    if r.keys:
        lines.append(
            f"the keys of {plural(r.keys, 'email')} decided for them and how each ended "
            "(what they said is gone): so no email is decided and sent to them twice"
        )
    if r.opt_outs:
        which = "every email" if "*" in r.opt_outs else ", ".join(r.opt_outs)
        lines.append(f"their opt-out (from {which}): so no email to them starts again")
    else:
        lines.append("no opt-out: they had not opted out of any email")
    if r.attended:
        lines.append(
            f"{plural(r.attended, 'event')} on other people's calendars that list them: "
            "those calendars are the other people's"
        )
    lines.append("the blocks already written on their calendar: forget changes no calendar")
    return lines
