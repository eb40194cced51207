"""Capped, jittered exponential backoff that honours the provider's ``Retry-After``.

Connectors turn a 429, a 5xx or a rate-limit reason into
:class:`~connectors.base.TransientError` (with ``retry_after`` when the provider said
how long to wait, read by :func:`retry_after_seconds`) and wrap each HTTP call in
:func:`retrying`. Anything else propagates at once: a permanent error is never retried.
``sleep``, ``rng`` and ``now`` are parameters, so tests run without waiting or a clock.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from worker.core.errors import TransientError

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The longest wait a ``Retry-After`` is read as (a day): a bigger one, or a date further
#: ahead, is this, so that it stays a wait the rest of the program can add to a time.
RETRY_AFTER_CEILING = 86400.0
_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 delay-seconds: 1*DIGIT, ASCII only


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait that a ``Retry-After`` header ``value`` asks for, at ``now`` (aware).

    RFC 9110 §10.2.3: either delay-seconds (``120``) or an HTTP-date (``Sun, 06 Nov 1994
    08:49:37 GMT``, and the obsolete RFC 850 and asctime forms, read as UTC when they name
    no zone). A date already past is ``0.0`` (retry now); anything else (empty, negative,
    a fraction, words, an impossible date) is None, as if the header were absent. Waits
    above :data:`RETRY_AFTER_CEILING` are that ceiling."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), RETRY_AFTER_CEILING)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), RETRY_AFTER_CEILING)


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
