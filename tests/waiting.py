"""Waiting for work done elsewhere (a consumer process, a server, a thread): poll with a
deadline, never a bare sleep. Used by the tests and by ``bench/*.py``."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02
) -> bool:
    """Whether ``predicate()`` came true within ``timeout`` seconds, asked every
    ``interval`` seconds and once more at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
