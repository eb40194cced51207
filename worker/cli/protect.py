"""``steadyhand plan``, ``apply`` and ``audit``: protected blocks at the command line.

``plan`` prints the diff like a Terraform plan and writes nothing; ``apply`` writes it;
``audit`` says why each block exists, moved or was given up.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from worker.cli.app import ConfigOpt, NowOpt, PersonOpt, _now, _runtime, _settings, app, err, out
from worker.config import _parse_weeks
from worker.core.errors import Problem, ReadOnlyCalendar, UserError
from worker.core.model import ChangeKind, Person
from worker.core.wording import plural
from worker.cycle import protect as protection
from worker.cycle.runtime import Runtime

HorizonOpt = Annotated[str, typer.Option("--horizon", help="How far ahead: 1w, 2w, 10d.")]
SIGN = {ChangeKind.CREATE: "+", ChangeKind.MOVE: "~", ChangeKind.DELETE: "-"}
COLOUR = {ChangeKind.CREATE: "green", ChangeKind.MOVE: "yellow", ChangeKind.DELETE: "red"}
#: Where a reason that does not fit beside its change starts, on the line below.
REASON_INDENT = 6


def _horizon(text: str) -> timedelta:
    try:
        value = _parse_weeks(text)
    except ValueError:
        raise UserError(
            Problem(f"--horizon {text!r} is not a duration", "write it like 2w or 10d")
        ) from None
    if not timedelta(hours=1) <= value <= timedelta(weeks=12):
        raise UserError(Problem(f"--horizon {text} is out of range", "use 1h to 12w"))
    return value


def _slot(start: datetime, end: datetime, person: Person) -> str:
    s, e = start.astimezone(person.tz), end.astimezone(person.tz)
    return f"{s:%a %d %b %H:%M}–{e:%H:%M}"


def print_plans(plans: list[protection.PersonPlan], done: bool = False, planned: int = 0) -> None:
    """The diff a person reads like a Terraform plan (``done``: the writes that happened,
    of ``planned`` changes)."""
    totals = dict.fromkeys(ChangeKind, 0)
    for plan in plans:
        p = plan.person
        counts = ", ".join(f"{plan.count(k)} to {k.value}" for k in ChangeKind)
        out.print(
            f"[bold]{escape(p.name)}[/] <{escape(p.email)}> — {plan.ref.kind}: "
            f"{escape(plan.ref.shown)} ({counts})"
        )
        for change in plan.changes:
            b = change.block
            slot = _slot(b.start, b.end, p)
            if change.kind is ChangeKind.MOVE and b.id in plan.before:
                slot = f"{_slot(*plan.before[b.id], p)} → {slot}"
            elif change.kind is ChangeKind.DELETE and b.id in plan.before:
                slot = _slot(*plan.before[b.id], p)
            colour = COLOUR[change.kind]
            head = f"  [{colour}]{SIGN[change.kind]} {change.kind.value:<6}[/] {b.rule:<9} {slot}"
            _say(head, change.reason)
            totals[change.kind] += 1
        for item in plan.unprotectable:
            _say(f"  [red]! cannot protect[/] {item.rule} {item.period}:", item.reason, gap=" ")
        for block_id in plan.taken_over:
            taken = escape(block_id)
            out.print(f"  [dim]= {taken}: taken over by you; steadyhand leaves it alone[/]")
        if plan.read_only and plan.changes:
            out.print("  [red]read-only calendar: `apply` cannot write these[/]")
    created, moved, deleted = (totals[k] for k in ChangeKind)
    if done and planned and not any(totals.values()):
        noun = "change" if planned == 1 else "changes"
        out.print(f"Applied: nothing written of {planned} planned {noun}.")
    elif not any(totals.values()):
        out.print(("Applied" if done else "Plan") + ": no changes. The calendars match the plan.")
    elif done:
        out.print(f"Applied: {created} created, {moved} moved, {deleted} deleted.")
    else:
        out.print(f"Plan: {created} to create, {moved} to move, {deleted} to delete.")


def _say(head: str, reason: str, gap: str = "  ") -> None:
    """``head`` (markup) and its ``reason`` (dim) on one line, or, when the two are wider
    than the terminal, the reason on the lines below, indented and wrapped: all of it is
    shown, within the width."""
    line = Text.from_markup(head)
    line.append(gap + reason, style="dim")
    if line.cell_len <= out.width:
        out.print(line, soft_wrap=True)
        return
    out.print(head, soft_wrap=True)
    out.print(Padding(Text(reason, style="dim"), (0, 0, 0, REASON_INDENT), expand=False))


def plans_json(plans: list[protection.PersonPlan]) -> dict[str, Any]:
    people = []
    for plan in plans:
        changes = []
        for c in plan.changes:
            before = plan.before.get(c.block.id)
            changes.append(
                {
                    "action": c.kind.value,
                    "rule": c.block.rule,
                    "block_id": c.block.id,
                    "start": c.block.start.isoformat(),
                    "end": c.block.end.isoformat(),
                    "from": [before[0].isoformat(), before[1].isoformat()] if before else None,
                    "title": c.block.title,
                    "reason": c.reason,
                    "why_block": c.block.reason,
                }
            )
        people.append(
            {
                "email": plan.person.email,
                "calendar": plan.ref.key,
                "read_only": plan.read_only,
                "changes": changes,
                "unprotectable": [
                    {"rule": u.rule, "period": u.period, "reason": u.reason}
                    for u in plan.unprotectable
                ],
                "taken_over": list(plan.taken_over),
            }
        )
    return {
        "people": people,
        "summary": {k.value: sum(p.count(k) for p in plans) for k in ChangeKind},
    }


@app.command()
def plan(
    config: ConfigOpt = None,
    person: PersonOpt = None,
    horizon: HorizonOpt = "2w",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    now: NowOpt = None,
) -> None:
    """Show the blocks steadyhand would create, move or delete. Writes nothing."""
    if fmt not in ("table", "json"):
        raise UserError(Problem(f"--format {fmt!r} is not known", "use table or json"))
    settings = _settings(config)
    rt = _runtime(settings)
    failures: list[str] = []
    plans = protection.plan_all(rt, _now(now, settings), _horizon(horizon), person, failures)
    if fmt == "json":
        out.print_json(json.dumps(plans_json(plans)))
    else:
        print_plans(plans)
    for line in failures:
        err.print(f"error: {line}", markup=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)


@app.command()
def apply(
    config: ConfigOpt = None,
    person: PersonOpt = None,
    horizon: HorizonOpt = "2w",
    now: NowOpt = None,
) -> None:
    """Write the plan to the calendars (finishing first what an interrupted apply left)."""
    settings = _settings(config)
    moment = _now(now, settings)
    rt = _runtime(settings)
    finished = [d for d in protection.finish_pending(rt, moment) if d.outcome == "written"]
    if finished:
        out.print(f"Finished {plural(len(finished), 'write')} an earlier apply left pending.")
    refused = apply_all(rt, moment, _horizon(horizon), person)
    if refused:
        raise ReadOnlyCalendar(refused)


def apply_all(
    rt: Runtime, now: datetime, horizon: timedelta, person: str | None = None
) -> list[Problem]:
    """Plan and write for everyone (or one person); read-only calendars are refused."""
    failures: list[str] = []
    plans = protection.plan_all(rt, now, horizon, person, failures)
    refused: list[Problem] = []
    writable = []
    for p in plans:
        if p.read_only and p.changes:
            refused.append(
                Problem(
                    f"{p.person.email}'s calendar ({p.ref.kind}: {p.ref.shown}) is read-only",
                    "steadyhand cannot write blocks to an iCalendar feed; use a vdir, Google or "
                    "Outlook calendar for protected blocks",
                )
            )
        else:
            writable.append(p)
    done = []  # each plan with only the changes that were written: apply reports no more
    not_written = 0
    for p in writable:
        results = protection.apply_person(rt, p, now)
        written = []
        for change, result in zip(p.changes, results, strict=True):
            if result.outcome == "written":
                written.append(change)
            elif result.outcome == "skipped":
                not_written += 1
            else:
                failures.append(f"{result.key}: {result.outcome} {result.detail}")
        done.append(replace(p, changes=tuple(written)))
    unwritable = sum(len(p.changes) for p in plans if p.read_only and p.changes)
    print_plans(done, done=True, planned=sum(len(p.changes) for p in writable) + unwritable)
    if unwritable:
        noun = "change" if unwritable == 1 else "changes"
        calendars = "calendar" if len(refused) == 1 else "calendars"
        out.print(
            f"Not written: {unwritable} planned {noun} on {len(refused)} read-only {calendars}"
            " (below).",
            soft_wrap=True,
        )
    if not_written:
        out.print(
            f"Not written now: {not_written} "
            + ("change is" if not_written == 1 else "changes are")
            + " in the outbox already (a retry is due, or it failed before: "
            "see `steadyhand doctor`).",
            soft_wrap=True,
        )
    for line in failures:
        err.print(f"error: {line}", markup=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)
    return refused


@app.command()
def audit(
    config: ConfigOpt = None,
    person: PersonOpt = None,
    block: Annotated[str | None, typer.Option("--block", help="Only this block id.")] = None,
) -> None:
    """Why each block exists, moved or was given up, and who changed what."""
    settings = _settings(config)
    rt = _runtime(settings)
    entries = rt.store.audit_entries(settings.person(person).email if person else None)
    if block:
        entries = [e for e in entries if e["subject"] == block]
    if not entries:
        out.print(
            "Nothing in the audit log yet." if not block else f"No entry for block {escape(block)}."
        )
        return
    for e in entries:
        d = e["detail"]
        what = d.get("slot") or (f"{d.get('was')} → {d.get('now')}" if "was" in d else "")
        why = d.get("why") or d.get("error") or ""
        out.print(
            f"{e['at']:%Y-%m-%d %H:%M} UTC  {escape(e['person'] or ''):<20} {e['actor']:<10} "
            f"{e['action']:<13} {escape(str(d.get('rule', ''))):<9} "
            f"{escape(e['subject'] or '')}  {escape(str(what))}  [dim]{escape(str(why))}[/]",
            soft_wrap=True,
        )
