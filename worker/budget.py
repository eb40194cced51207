"""The budget of one template render: wall-clock time, loop rounds, items and the size
of every value made, charged by :mod:`worker.sandbox`'s hooks. Going over raises
:class:`BudgetExceeded` (a ``TemplateRuntimeError``): the caller reports it as a template
problem."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import TemplateRuntimeError

#: Wall-clock seconds one render (both parts of an email, a bundle with its parts) may take.
MAX_RENDER_SECONDS = 2.0
#: ``{% for %}`` rounds in one render, all loops together (nested loops multiply).
MAX_LOOP_ROUNDS = 100_000
#: Items in a ``range``, a repeated list, a ``batch`` or ``slice``; a width or a count.
MAX_ITEMS = 100_000
#: Characters of any one value a template builds (a string, a list's text).
MAX_VALUE_CHARS = 1024 * 1024
#: Characters of all the values one render builds together.
MAX_WORK_CHARS = 8 * MAX_VALUE_CHARS
#: Bits of an integer a template computes (``str()`` of a bigger one fails anyway).
MAX_INT_BITS = 64 * 1024


class BudgetExceeded(TemplateRuntimeError):
    """A template went over its render budget (time, loop rounds or size)."""


@dataclass
class Budget:
    seconds: float
    rounds: int = 0
    work: int = 0
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"the template ran for more than {self.seconds:g} s")

    def round(self) -> None:
        self.rounds += 1
        if self.rounds > MAX_LOOP_ROUNDS:
            raise BudgetExceeded(f"the template's loops ran more than {MAX_LOOP_ROUNDS:,} rounds")
        self.clock()


_current: ContextVar[Budget | None] = ContextVar("steadyhand_template_budget", default=None)


@contextlib.contextmanager
def budget(seconds: float | None = None) -> Iterator[Budget]:
    """Run the renders inside under one budget of ``seconds`` (default
    MAX_RENDER_SECONDS); an enclosing one is shared, so a bundle and the parts it
    renders have one deadline together."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    mine = Budget(MAX_RENDER_SECONDS if seconds is None else seconds)
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)


def charge(size: int, what: str = "a value") -> None:
    """Refuse building ``size`` characters when one value or the render would be too big."""
    if size > MAX_VALUE_CHARS:
        raise BudgetExceeded(
            f"{what} of {size:,} characters (at most {MAX_VALUE_CHARS:,} in a template)"
        )
    b = _current.get()
    if b is not None:
        b.work += size
        if b.work > MAX_WORK_CHARS:
            raise BudgetExceeded(
                f"the template built more than {MAX_WORK_CHARS:,} characters in all"
            )
        b.clock()


def _count(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and n > MAX_ITEMS:
        raise BudgetExceeded(f"{what} of {n:,} (at most {MAX_ITEMS:,} in a template)")


def size_of(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` makes; stops counting past ``limit``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if not isinstance(value, list | tuple | set | frozenset | dict):
        return 64
    total, seen = 2, 0
    todo: list[Any] = [value]
    while todo and total <= limit:
        item = todo.pop()
        seen += 1
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
            total += 4 * len(item) + 2
        elif isinstance(item, list | tuple | set | frozenset):
            todo.extend(item)
            total += 2 * len(item) + 2
        else:
            total += size_of(item)
        if seen > MAX_ITEMS:
            return limit + 1
    return total
