"""Capped, jittered exponential backoff that honours the provider's ``Retry-After``.

Connectors turn a 429, a 5xx or a rate-limit reason into
:class:`~connectors.base.TransientError` (with ``retry_after`` when the provider said
how long to wait) and wrap each HTTP call in :func:`retrying`. Anything else propagates
at once: a permanent error is never retried. ``sleep`` and ``rng`` are parameters, so
tests run without waiting.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from worker.core.errors import TransientError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """``attempts`` calls in all; waits of ``base * 2**n`` seconds, full jitter, at most
    ``cap``; a provider's ``Retry-After`` is honoured up to ``max_retry_after``."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def wait(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        jittered: float = rng() * min(self.cap, self.base * float(2**attempt))
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_retry_after))
        return jittered


def retrying(
    call: Callable[[], T],
    what: str,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``call``; on :class:`TransientError` wait and try again, up to ``attempts``."""
    for attempt in range(backoff.attempts):
        try:
            return call()
        except TransientError as exc:
            if attempt + 1 >= backoff.attempts:
                raise
            wait = backoff.wait(attempt, exc.retry_after, rng)
            logger.info("%s: %s; retry %d in %.1fs", what, exc, attempt + 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
