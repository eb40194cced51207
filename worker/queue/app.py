"""The Huey instance, built from settings: SqliteHuey for ``sqlite:///``, RedisHuey for ``redis://``.

Huey runs with ``utc=True``; every local time is computed by our code with zoneinfo.
Task results are not kept (``results=False``): the store records outcomes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, consumer
from huey.consumer import Consumer
from sqlalchemy.exc import OperationalError

from connectors.secrets import private_file
from worker.config import Settings
from worker.core.errors import ConfigError, MissingExtra, Problem
from worker.core.model import redact_location
from worker.store import Store

logger = logging.getLogger(__name__)


def build_huey(settings: Settings, immediate: bool = False) -> Huey:
    """The queue named by ``queue:``. ``immediate`` runs tasks inline (``run --once``, tests)."""
    url = settings.queue_url
    name = "steadyhand"
    huey: Huey
    if immediate:
        huey = MemoryHuey(name, results=False, utc=True, immediate=True)
    elif url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        private_file(path)  # 0600 in a 0700 folder: task arguments name people
        huey = SqliteHuey(name, filename=str(path), results=False, utc=True)
    elif url.startswith(("redis://", "rediss://")):
        try:
            import redis  # noqa: F401
        except ModuleNotFoundError:
            raise MissingExtra(
                "queue: redis://… needs the redis module. Run \"pip install 'steadyhand[redis]'\""
            ) from None
        huey = RedisHuey(name, url=url, results=False, utc=True)
    else:
        raise ConfigError(
            Problem(
                f"queue {url!r} is not supported",
                "use sqlite:///var/queue.db or redis://host:6379/0",
                str(settings.source) if settings.source else None,
                path="queue",
            )
        )
    return huey


# -- the consumer ----------------------------------------------------------------------

#: The first wait after a failed read of the queue, in seconds; Huey's worker backoff
#: then grows it (for a Redis queue, which blocks while empty, doubling up to a minute).
RETRY_FIRST = 2.0
#: The longest wait between two tries of an unreachable queue or store, in seconds.
RETRY_CAP = 60.0
#: Huey's worker backoff for a blocking queue (Redis): it sleeps only after an error.
BLOCKING_BACKOFF = {"backoff": 2.0, "max_delay": RETRY_CAP}


def build_consumer(huey: Huey, settings: Settings, workers: int) -> Consumer:
    """Huey's consumer (threads, periodic tasks on) that says an unreachable queue in one
    WARNING line per retry, with Huey's capped backoff, and says when it is back; its
    tracebacks only with ``-v``. A SQLite queue keeps Huey's polling of an empty queue
    (0.1 s growing to 10 s), so a task enqueued from outside waits at most 10 s."""
    watch = QueueWatch(redact_location(settings.queue))
    options = BLOCKING_BACKOFF if huey.storage.blocking else {}
    consumer = _Consumer(
        huey, watch, workers=workers, periodic=True, worker_type="thread", **options
    )
    for name in ("huey", "huey.consumer", "huey.consumer.Worker", "huey.consumer.Scheduler"):
        huey_logger = logging.getLogger(name)
        for old in [f for f in huey_logger.filters if isinstance(f, _OneLine)]:
            huey_logger.removeFilter(old)  # a consumer built before in this process
        huey_logger.addFilter(_OneLine(watch))
    return consumer


class QueueWatch:
    """What the consumer says about its queue: one WARNING line per retry while it cannot
    be read (the workers share one outage, so a retry one worker said is not said again
    by the others) and one INFO line when it can be read again."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.down = False
        self._quiet_until = 0.0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException, wait: float) -> None:
        with self._lock:
            now = time.monotonic()
            self.down = True
            if now < self._quiet_until:
                return
            self._quiet_until = now + wait * 0.9  # the others fail within the same wait
        logger.warning(
            "queue %s unreachable: %s; retrying in %s", self.where, one_line(exc), _secs(wait)
        )

    def ok(self) -> None:
        with self._lock:
            was_down, self.down, self._quiet_until = self.down, False, 0.0
        if was_down:
            logger.info("queue %s reachable again", self.where)


class _Worker(consumer.Worker):  # type: ignore[misc]
    """Huey's worker, reporting a failed read of the queue to the watch."""

    watch: QueueWatch
    _failing = False
    _read_failed = False

    def loop(self, now: Any = None) -> None:
        self._read_failed = False
        super().loop(now)
        if not self._read_failed:
            if self._failing:  # back: poll as from the start
                self._failing, self.delay = False, self.default_delay
            self.watch.ok()

    def sleep(self) -> None:
        # Huey sleeps inside its ``except`` when the queue cannot be read (after logging
        # it, which _OneLine drops), and outside one when a polled queue is empty.
        exc = sys.exc_info()[1]
        if exc is not None:
            self._failing = self._read_failed = True
            self.delay = max(self.delay, RETRY_FIRST)
            self.watch.failed(exc, min(self.delay, self.max_delay))
        super().sleep()


class _Scheduler(consumer.Scheduler):  # type: ignore[misc]
    """Huey's scheduler, which leaves the queue alone while it is down (the workers retry
    it, and say when it is back)."""

    watch: QueueWatch
    _paused = False

    def loop(self, now: Any = None) -> None:
        if self.watch.down:
            self._paused = True
            self.stop_flag.wait(self.interval)
            return
        if self._paused:  # back: the periodic tasks (the tick) at once, not at the next minute
            self._paused, self._next_periodic = False, time.monotonic()
        super().loop(now)


class _Consumer(consumer.Consumer):  # type: ignore[misc]
    worker_class = _Worker
    scheduler_class = _Scheduler

    def __init__(self, huey: Huey, watch: QueueWatch, **options: Any) -> None:
        self.watch = watch  # before Huey's __init__, which makes the workers and scheduler
        super().__init__(huey, **options)

    def _create_worker(self) -> _Worker:
        worker: _Worker = super()._create_worker()
        worker.watch = self.watch
        return worker

    def _create_scheduler(self) -> _Scheduler:
        scheduler: _Scheduler = super()._create_scheduler()
        scheduler.watch = self.watch
        return scheduler


class _OneLine(logging.Filter):
    """Huey's records with a traceback, in one line without it unless steadyhand logs at
    DEBUG (``-v``). A failed read of the queue is the watch's to say; so is a failure of
    the scheduler (it reads the same queue), which pauses it until the queue is back."""

    def __init__(self, watch: QueueWatch) -> None:
        super().__init__()
        self.watch = watch

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None:
            return True
        exc = record.exc_info[1]
        scheduler = record.name == "huey.consumer.Scheduler"
        if scheduler and exc is not None:
            self.watch.failed(exc, RETRY_FIRST)
        if logging.getLogger("worker").isEnabledFor(logging.DEBUG):
            return True  # -v: Huey's record as it is, with its traceback
        if scheduler or record.msg == "Error reading from queue":
            return False  # the watch said it
        record.msg, record.args = f"{record.getMessage()}: {one_line(exc)}", None
        record.exc_info, record.exc_text = None, None
        return True


def open_store(settings: Settings) -> Store:
    """The store, once it can be opened: while its database cannot be reached, one
    WARNING line per retry, waiting 2 s, doubling up to a minute (the traceback at DEBUG)."""
    where = redact_location(settings.store)
    wait = RETRY_FIRST
    while True:
        try:
            return Store(settings.store_url)
        except OperationalError as exc:
            logger.warning(
                "store %s unreachable: %s; retrying in %s", where, one_line(exc), _secs(wait)
            )
            logger.debug("store %s traceback", where, exc_info=exc)
            time.sleep(wait)
            wait = min(2 * wait, RETRY_CAP)


def one_line(exc: BaseException | None) -> str:
    """One line about ``exc``, for the log (no traceback: that is at DEBUG); a database
    error says its driver's error, without SQLAlchemy's wrapping."""
    exc = getattr(exc, "orig", None) or exc
    text = " ".join(str(exc).split()).rstrip(".")
    return f"{type(exc).__name__}: {text}"[:300]


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s".replace(".0 s", " s")
