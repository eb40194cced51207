"""Protected blocks end to end: read the calendar, plan, reconcile, write through the outbox.

The pure part is :mod:`worker.core.planning`; this module is its orchestration
(docs/architecture.md):

* :func:`plan_person` syncs the person's calendar, notices blocks the user edited or
  moved (they take them over, and the audit log says so), plans, and reconciles the plan
  against the blocks on the calendar: the diff ``steadyhand plan`` prints.
* :func:`apply_person` writes that diff. Each change is first an outbox row (kind
  ``calendar``) keyed by :func:`write_key`: the block, how many writes it had (from the
  ledger, read when planning), the action and the new slot. The key is unique per write
  (a block can return to a slot it held before) and the same for a retry of the same
  write (re-applying a plan that was not carried out yet, or a crash). :func:`execute`
  carries one row out through the connector and records the block (its slot, title,
  :func:`fingerprint` and write count) in the ledger and the audit log. A crash
  mid-apply leaves rows pending, and the next ``apply`` (or the sweeper) finishes them
  before planning again.
* **Taking over.** Any user change to a block is a takeover: its time, title, show-as,
  status, attendees, description or location (the last two as ``Event.details``), a
  deletion, or a copy (another event carrying the same block id: both are the user's,
  and neither is ever deleted as a duplicate).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from connectors.base import DeclinesConflicts
from worker.core import planning
from worker.core.errors import Problem, ReadOnlyCalendar, SteadyhandError, UserError
from worker.core.model import (
    UTC,
    Block,
    BlockChange,
    CalendarRef,
    ChangeKind,
    Event,
    Person,
    Status,
    Transparency,
)
from worker.cycle.deliver import WRITERS, Delivery, deliver
from worker.cycle.rules import rules_for
from worker.cycle.runtime import Runtime, person_events, policy
from worker.cycle.sync import SyncReport, sync
from worker.store import BlockRecord, OutboxRow

logger = logging.getLogger(__name__)

#: How far back a plan looks: blocks of this week that already started, and a Friday
#: overload that asks for Monday's quiet hour (planning's docstring, "Callers").
LOOK_BACK = timedelta(days=14)
#: How far ahead the worker keeps blocks booked (``steadyhand plan --horizon`` for by hand).
TICK_HORIZON = timedelta(weeks=2)


@dataclass(frozen=True)
class PersonPlan:
    person: Person
    ref: CalendarRef
    read_only: bool
    changes: tuple[BlockChange, ...]
    unprotectable: tuple[planning.Unprotectable, ...]
    taken_over: tuple[str, ...]
    before: dict[str, tuple[datetime, datetime]]  # block id -> its slot on the calendar now
    writes: dict[str, int] = field(default_factory=dict)  # block id -> writes done (ledger)

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)


def plan_person(
    rt: Runtime, person: Person, now: datetime, horizon: timedelta, fresh: bool = True
) -> PersonPlan | None:
    """The diff between the calendar and the plan for ``person`` (None: nothing to plan)."""
    rules = rules_for(rt.settings, person.email)
    ref = rt.settings.calendar_ref(person.email)
    if ref is None or not rules:
        return None
    if fresh:
        for report in sync(rt, now, refs=[ref]):
            if report.outcome == "failed":
                raise UserError(Problem(report.error or "the calendar could not be read"))
    until = planning.horizon_end(person, now, horizon)
    today = now.astimezone(person.tz).date()
    events = person_events(rt, person, today - LOOK_BACK, until.astimezone(person.tz).date())
    taken = _notice_takeovers(rt, person, events, now, until)
    result = planning.plan(
        person,
        events,
        rules,
        now,
        horizon,
        policy(rt.settings),
        taken,
        meetings_from=rt.settings.meetings_from(person.email),
    )
    changes = planning.reconcile(result.desired, events, taken, now=now, until=until)
    owned = [e for e in events if e.owned_block_id]
    return PersonPlan(
        person,
        ref,
        rt.connector(ref).read_only,
        tuple(changes),
        result.unprotectable,
        tuple(sorted(taken)),
        {e.owned_block_id: (e.start, e.end) for e in owned if e.owned_block_id},
        {r.block_id: r.writes for r in rt.store.blocks_of(person.email)},
    )


def fingerprint(
    transparency: Transparency,
    status: Status = Status.CONFIRMED,
    attendees: Sequence[str] = (),
    details: str | None = None,
) -> str:
    """What the ledger keeps of a block besides its slot and title: a user's change to
    its show-as, status, attendees, description or location changes it."""
    data = [transparency.value, status.value, sorted(attendees), details or ""]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]


def _fingerprint_of(event: Event) -> str:
    return fingerprint(event.transparency, event.status, event.attendees, event.details)


def write_key(change: BlockChange, writes: int) -> str:
    """The idempotency key of one write: unique per write, the same for its retry."""
    block = change.block
    return (
        f"calendar:{block.id}:{writes}:{change.kind.value}:"
        f"{int(block.start.timestamp())}-{int(block.end.timestamp())}"
    )


def _take_over(
    rt: Runtime, person: Person, record: BlockRecord, now: datetime, became: str, why: str
) -> None:
    """The user owns block ``record`` from now on: marked, audited with what it became."""
    rt.store.set_block_status(record.block_id, "taken_over", now)
    rt.store.audit(
        "taken_over",
        now,
        actor="user",
        person=person.email,
        subject=record.block_id,
        detail={
            "rule": record.rule,
            "was": _slot(record.start, record.end, person),
            "now": became,
            "why": why,
        },
    )
    logger.info("block %s taken over by %s: %s", record.block_id, person.email, became)


def _notice_takeovers(
    rt: Runtime, person: Person, events: Sequence[Event], now: datetime, until: datetime
) -> set[str]:
    """Blocks the user changed on the calendar (anything steadyhand wrote differs, or
    they copied it) are theirs from now on (as Reclaim does). Returns the ids of every
    block taken over, copies included."""
    ledger = {r.block_id: r for r in rt.store.blocks_of(person.email)}
    live = Counter(
        e.owned_block_id for e in events if e.owned_block_id and e.status != Status.CANCELLED
    )
    copied = {bid for bid, n in live.items() if n > 1}
    for bid in sorted(copied):
        record = ledger.get(bid)
        if record is not None and record.status == "managed":
            why = "copied on the calendar; steadyhand leaves the block and its copies alone"
            _take_over(rt, person, record, now, f"{live[bid]} events carry it", why)
    for event in events:
        record = ledger.get(event.owned_block_id or "")
        if record is None or record.status != "managed" or record.block_id in copied:
            continue
        moved = (
            abs((event.start - record.start).total_seconds()) >= 1
            or abs((event.end - record.end).total_seconds()) >= 1
        )
        renamed = event.title is not None and event.title != record.title
        edited = record.fingerprint is not None and record.fingerprint != _fingerprint_of(event)
        if moved or renamed or edited:
            became = _slot(event.start, event.end, person)
            why = "moved or edited on the calendar; steadyhand leaves it alone"
            _take_over(rt, person, record, now, became, why)
    seen = {e.owned_block_id for e in events if e.owned_block_id}
    for record in ledger.values():
        if (
            record.status == "managed"
            and record.block_id not in seen
            and now < record.start < until
        ):
            why = "deleted on the calendar; steadyhand does not book it again"
            _take_over(rt, person, record, now, "deleted", why)
    taken = {r.block_id for r in rt.store.blocks_of(person.email) if r.status == "taken_over"}
    return taken | copied


def apply_person(rt: Runtime, plan: PersonPlan, now: datetime) -> list[Delivery]:
    """Write ``plan``: outbox rows first (in one go), then carry each out. One delivery
    per change, in order; a change whose key is in the outbox already (the same write,
    pending or failed before) is ``skipped`` and not written again."""
    if plan.read_only and plan.changes:
        raise ReadOnlyCalendar(
            Problem(
                f"{plan.person.email}'s calendar ({plan.ref.kind}: {plan.ref.shown}) is read-only",
                "steadyhand cannot write blocks to an iCalendar feed; use a vdir, Google or "
                "Outlook calendar for protected blocks",
            )
        )
    for given_up in plan.unprotectable:
        _audit_once(rt, plan.person.email, given_up, now)
    ids: list[tuple[str, int | None]] = []
    for change in plan.changes:
        block = change.block
        writes = plan.writes.get(block.id, 0)
        key = write_key(change, writes)
        row_id = rt.store.enqueue(
            key,
            "calendar",
            block.rule,
            block.owner,
            block.id,
            now,
            {"calendar_key": plan.ref.key, "change": _dump(change), "writes": writes},
            now,
        )
        ids.append((key, row_id))
    return [
        deliver(rt, row_id, now)
        if row_id is not None
        else Delivery(0, key, "skipped", "the same write is in the outbox already")
        for key, row_id in ids
    ]


def finish_pending(rt: Runtime, now: datetime) -> list[Delivery]:
    """Carry out calendar writes a crash left pending or claimed (lease expired, or the
    claiming process on this machine is gone)."""
    rt.store.release_dead_claims(socket.gethostname(), _alive)
    rows = {r.id: r for r in rt.store.outbox_rows() if r.kind == "calendar"}
    return [deliver(rt, i, now) for i in rt.store.due_ids(now) if i in rows]


def execute(rt: Runtime, row: OutboxRow, now: datetime) -> str:
    """Carry out one calendar-write row (called by deliver.deliver after the claim)."""
    change = replace(_load(row.payload["change"]), key=row.key)
    ref = next((r for r in rt.refs() if r.key == row.payload["calendar_key"]), None)
    if ref is None:
        raise UserError(Problem(f"calendar {row.payload['calendar_key']} is no longer configured"))
    (applied,) = rt.connector(ref).apply(ref, [change])
    block = change.block
    status = "deleted" if change.kind is ChangeKind.DELETE else "managed"
    rt.store.record_block(
        block.id,
        block.owner,
        ref.key,
        block.rule,
        applied.event_id,
        block.start,
        block.end,
        block.title,
        status,
        now,
        fingerprint=fingerprint(block.transparency) if status == "managed" else None,
        writes=int(row.payload.get("writes", 0)) + 1,
    )
    person = rt.settings.person(block.owner)
    rt.store.audit(
        change.kind.value,
        now,
        person=block.owner,
        subject=block.id,
        detail={
            "rule": block.rule,
            "slot": _slot(block.start, block.end, person),
            "why": change.reason,
            "block": block.reason,
        },
    )
    logger.info("block %s %s on %s", block.id, change.kind.value, ref.key)
    return applied.event_id


WRITERS["calendar"] = execute  # deliver carries out a claimed calendar row with this


def replan(rt: Runtime, now: datetime, reports: Sequence[SyncReport]) -> list[Delivery]:
    """Re-plan and write the blocks of each person whose writable calendar was just read
    (the tick does this on each calendar's sync interval, so blocks move as the week
    fills up). A person whose plan fails is logged and skipped; the others go on."""
    done: list[Delivery] = []
    for report in reports:
        if report.outcome == "failed" or not rt.settings.protect:
            continue
        person = rt.settings.person(report.owner)
        ref = rt.settings.calendar_ref(person.email)
        try:
            # defend first: a new invitation inside a defended block is declined (and the
            # calendar read again) before planning, so the block stays where it is
            declined = _decline_conflicts(rt, person, ref, now) if ref is not None else []
            plan = plan_person(rt, person, now, TICK_HORIZON, fresh=bool(declined))
            if plan is None or plan.read_only:
                continue
            done += apply_person(rt, plan, now)
        except Exception as exc:  # that person's failure alone: the tick goes on
            _plan_failed(rt, person.email, exc, now, "re-plan")
    return done


def _plan_failed(rt: Runtime, email: str, exc: Exception, now: datetime, what: str) -> str:
    """Log (once, the traceback at DEBUG) and audit a person's failed plan; its one line."""
    line = str(exc).splitlines()[0] if str(exc) else ""
    if not isinstance(exc, SteadyhandError):
        line = f"{type(exc).__name__}: {line}"[:300]
    logger.warning("%s of %s failed: %s", what, email, line)
    logger.debug("%s of %s failed", what, email, exc_info=exc)
    try:
        rt.store.audit("plan_failed", now, person=email, detail={"error": line})
    except Exception as store_exc:  # the store itself is down: the log line stays
        logger.error("%s of %s: could not audit: %s", what, email, store_exc)
    return line


DECLINE_MESSAGE = (
    "This time is protected focus time on my calendar; could we find another slot? "
    "(Declined automatically by steadyhand.)"
)


def _decline_conflicts(rt: Runtime, person: Person, ref: CalendarRef, now: datetime) -> list[str]:
    """Where the provider cannot auto-decline (Graph), decline new invitations that land
    inside focus blocks whose rule says ``defend: decline``; the audit log records it."""
    connector = rt.connector(ref)
    decline = connector.decline_conflicts if isinstance(connector, DeclinesConflicts) else None
    kinds = {r.kind for r in rules_for(rt.settings, person.email) if r.defend == "decline"}
    if decline is None or not kinds:
        return []
    protected = [
        Block(r.block_id, r.owner, r.rule, r.start, r.end, r.title)
        for r in rt.store.blocks_of(person.email)
        if r.status == "managed" and r.rule in kinds and r.end > now
    ]
    declined: list[str] = decline(ref, protected, DECLINE_MESSAGE)
    for event_id in declined:
        rt.store.audit(
            "declined",
            now,
            person=person.email,
            subject=event_id,
            detail={
                "why": "a new invitation inside a protected focus block",
                "message": DECLINE_MESSAGE,
            },
        )
    return declined


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _audit_once(rt: Runtime, email: str, item: planning.Unprotectable, now: datetime) -> None:
    subject = f"{item.rule}:{item.period}"
    for entry in reversed(rt.store.audit_entries(email)):
        if entry["subject"] == subject:
            if entry["action"] == "unprotectable" and entry["detail"].get("why") == item.reason:
                return
            break
    rt.store.audit(
        "unprotectable",
        now,
        person=email,
        subject=subject,
        detail={"rule": item.rule, "why": item.reason},
    )


def plan_all(
    rt: Runtime,
    now: datetime,
    horizon: timedelta,
    person: str | None = None,
    failures: list[str] | None = None,
) -> list[PersonPlan]:
    """The plan of everyone with rules and a calendar (or of one person). A person whose
    plan fails is logged, audited and left out; ``failures`` (when given) gets one line
    for each, and the others are planned."""
    people = [rt.settings.person(person)] if person else list(rt.settings.persons())
    plans = []
    for p in people:
        try:
            found = plan_person(rt, p, now, horizon)
        except Exception as exc:  # one person's calendar or rules: the others go on
            line = _plan_failed(rt, p.email, exc, now, "plan")
            if failures is not None:
                failures.append(f"{p.email}: cannot plan: {line}")
            continue
        if found is not None:
            plans.append(found)
    return plans


def _slot(start: datetime, end: datetime, person: Person) -> str:
    s, e = start.astimezone(person.tz), end.astimezone(person.tz)
    return f"{s:%a %d %b %H:%M}–{e:%H:%M} {person.timezone}"


def _dump(change: BlockChange) -> dict[str, Any]:
    b = change.block
    return {
        "kind": change.kind.value,
        "reason": change.reason,
        "event_id": change.event_id,
        "etag": change.etag,
        "block": {
            "id": b.id,
            "owner": b.owner,
            "rule": b.rule,
            "start": b.start.astimezone(UTC).isoformat(),
            "end": b.end.astimezone(UTC).isoformat(),
            "title": b.title,
            "transparency": b.transparency.value,
            "reason": b.reason,
        },
    }


def _load(data: dict[str, Any]) -> BlockChange:
    b = data["block"]
    block = Block(
        id=b["id"],
        owner=b["owner"],
        rule=b["rule"],
        start=datetime.fromisoformat(b["start"]),
        end=datetime.fromisoformat(b["end"]),
        title=b["title"],
        transparency=Transparency(b["transparency"]),
        reason=b["reason"],
    )
    return BlockChange(
        ChangeKind(data["kind"]), block, data["reason"], data["event_id"], data["etag"]
    )
