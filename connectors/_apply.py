"""The ``apply`` loop every writable calendar shares: each block change, in order, to the
connector's create, move or delete, logged one line per change."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from worker.core.model import Applied, BlockChange, ChangeKind

Write = Callable[[BlockChange], Applied]


def apply_each(
    changes: Sequence[BlockChange],
    *,
    create: Write,
    move: Write,
    delete: Write,
    what: str,
    log: logging.Logger,
) -> list[Applied]:
    """Apply ``changes`` in order, each through the function for its kind, and return what
    was done. The first change that raises stops the loop: the exception propagates and
    the changes after it are not tried (the caller plans again from a fresh read).

    Each change done logs ``<what>: <kind> block <block id> (event <event id>)`` at INFO on
    ``log``, the connector's own logger (``what`` is e.g. ``"google apply <cal key>"``)."""
    done = []
    for change in changes:
        if change.kind is ChangeKind.CREATE:
            applied = create(change)
        elif change.kind is ChangeKind.MOVE:
            applied = move(change)
        else:
            applied = delete(change)
        log.info(
            "%s: %s block %s (event %s)", what, change.kind.value, change.block.id, applied.event_id
        )
        done.append(applied)
    return done
