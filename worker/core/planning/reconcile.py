"""Reconciling: the writes (:class:`~worker.core.model.BlockChange`) that turn the
owned blocks on a calendar into the desired ones, each with the reason a user reads."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, tzinfo

from worker.core.model import Block, BlockChange, ChangeKind, Event, Status
from worker.core.planning.rules import _fmt_date, _fmt_range, _fmt_us
from worker.core.planning.slots import _at, _blocking, _event_key, _span_of, _us


def reconcile(
    desired: Sequence[Block],
    existing: Sequence[Event],
    taken_over: Collection[str] = (),
    *,
    now: datetime | None = None,
    until: datetime | None = None,
) -> list[BlockChange]:
    """The writes that turn the owned blocks among ``existing`` into ``desired``.

    Only events carrying ``owned_block_id`` are ever targeted; ids in ``taken_over``
    are never touched; with ``now``, blocks that already started are left alone; with
    ``until``, existing blocks starting at or after it are outside the plan.
    """
    taken = frozenset(taken_over)
    now_us = None if now is None else _us(now)
    until_us = None if until is None else _us(until)
    wanted: dict[str, Block] = {}
    for block in desired:
        if block.id in wanted:
            raise ValueError(f"two desired blocks share the id {block.id}")
        wanted[block.id] = block

    ordered = sorted(existing, key=_event_key)
    others = [
        e
        for e in ordered
        if e.owned_block_id is None and not e.all_day and e.status != Status.CANCELLED
    ]
    by_id: dict[str, list[Event]] = {}
    for event in ordered:
        if event.owned_block_id is not None and event.status != Status.CANCELLED:
            by_id.setdefault(event.owned_block_id, []).append(event)
    owners = {b.owner for b in desired}
    owner = next(iter(owners)) if len(owners) == 1 else ""

    def started(event: Event) -> bool:
        return now_us is not None and _us(event.start) < now_us

    copied = {bid for bid, found in by_id.items() if len(found) > 1}
    changes: list[BlockChange] = []
    for bid, block in wanted.items():
        if bid in taken or bid in copied:
            continue
        found = by_id.get(bid, [])
        if not found:
            if now_us is None or _us(block.start) >= now_us:
                changes.append(BlockChange(ChangeKind.CREATE, block, f"new: {block.reason}"))
            continue
        (match,) = found
        if (
            not _same(match, block)
            and not started(match)
            and (now_us is None or _us(block.start) >= now_us)
        ):
            reason = _move_reason(match, block, others)
            changes.append(BlockChange(ChangeKind.MOVE, block, reason, match.id, match.etag))
    for bid, found in by_id.items():
        if bid in wanted or bid in taken or bid in copied:
            continue
        for event in found:
            if started(event) or (until_us is not None and _us(event.start) >= until_us):
                continue
            gone = _as_block(event, owner, "no longer needed")
            title = f"{event.title!r} " if event.title else ""
            changes.append(
                BlockChange(
                    ChangeKind.DELETE,
                    gone,
                    f"no longer needed: {title}{_fmt_when(gone.start, gone.end)} — no rule asks "
                    "for it any more (the rule changed, or the chain or day it was for is gone)",
                    event.id,
                    event.etag,
                )
            )
    changes.sort(
        key=lambda c: (
            _us(c.block.start),
            _us(c.block.end),
            c.block.id,
            c.kind.value,
            c.event_id or "",
        )
    )
    return changes


def _same(event: Event, block: Block) -> bool:
    return (
        _us(event.start) == _us(block.start)
        and _us(event.end) == _us(block.end)
        and event.transparency == block.transparency
        and (event.title is None or event.title == block.title)
    )


def _as_block(event: Event, owner: str, reason: str) -> Block:
    start = event.start
    end = event.end if _us(event.end) >= _us(event.start) else event.start
    return Block(
        id=event.owned_block_id or "",
        owner=owner,
        rule="",
        start=start,
        end=end,
        title=event.title or "",
        transparency=event.transparency,
        reason=reason,
    )


def _fmt_when(start: datetime, end: datetime, tz: tzinfo | None = None) -> str:
    if tz is not None:
        start, end = start.astimezone(tz), end.astimezone(tz)
    return f"{_fmt_date(start.date())} {_fmt_range(start, end)}"


def _move_reason(event: Event, block: Block, others: Sequence[Event]) -> str:
    tz = block.start.tzinfo
    old_s, old_e = _span_of(event)
    new_s, new_e = _us(block.start), _us(block.end)
    new = _fmt_when(block.start, block.end)
    old = _fmt_when(event.start, event.end, tz)
    if (old_s, old_e) == (new_s, new_e):
        what = []
        if event.title is not None and event.title != block.title:
            what.append(f"title {event.title!r} → {block.title!r}")
        if event.transparency != block.transparency:
            what.append(f"shown as {block.transparency.value}")
        return f"updated: {', '.join(what) or 'details'} ({new})"
    for other in others:
        s, e = _span_of(other)
        if s < old_e and old_s < e and _blocking(other):
            name = repr(other.title) if other.title else "another event"
            taken = _fmt_range(_at(s, tz), _at(e, tz))
            return f"moved: {name} now takes {taken}; {block.title!r} goes to {new}"
    if old_s == new_s:
        return f"resized: {_fmt_us(old_e - old_s)} → {_fmt_us(new_e - new_s)} ({new})"
    return f"moved: {old} → {new} (its old slot no longer fits the rule)"
