"""apply_each: the one create/move/delete loop of the writable calendars."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from connectors._apply import apply_each
from tests.test_connector_contract import at, block
from worker.core.errors import NotOwned
from worker.core.model import Applied, BlockChange, ChangeKind

LOG = logging.getLogger("tests.apply")


def change(kind: ChangeKind, block_id: str) -> BlockChange:
    return BlockChange(kind, block(block_id, at(25, 9)), "test", event_id=f"ev-{block_id}")


def test_each_change_goes_to_its_kind_in_order_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def write(name: str) -> Callable[[BlockChange], Applied]:
        def done(c: BlockChange) -> Applied:
            calls.append(f"{name} {c.block.id}")
            return Applied(c, f"ev-{c.block.id}")

        return done

    changes = [
        change(ChangeKind.DELETE, "b1"),
        change(ChangeKind.CREATE, "b2"),
        change(ChangeKind.MOVE, "b3"),
    ]
    with caplog.at_level(logging.INFO, logger="tests.apply"):
        done = apply_each(
            changes,
            create=write("create"),
            move=write("move"),
            delete=write("delete"),
            what="memory apply cal",
            log=LOG,
        )
    assert calls == ["delete b1", "create b2", "move b3"]
    assert [a.change for a in done] == changes
    assert [r.name for r in caplog.records] == ["tests.apply"] * 3
    assert caplog.messages[1] == "memory apply cal: create block b2 (event ev-b2)"


def test_the_first_failing_change_stops_the_rest() -> None:
    calls: list[str] = []

    def create(c: BlockChange) -> Applied:
        calls.append(c.block.id)
        if c.block.id == "b2":
            raise NotOwned("not ours")
        return Applied(c, c.block.id)

    changes = [change(ChangeKind.CREATE, b) for b in ("b1", "b2", "b3")]
    with pytest.raises(NotOwned, match="not ours"):
        apply_each(changes, create=create, move=create, delete=create, what="x", log=LOG)
    assert calls == ["b1", "b2"]
