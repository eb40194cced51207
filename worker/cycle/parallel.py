"""Bounded parallel work for :func:`worker.cycle.sync.sync`: jobs run on a few threads, the
caller sees each result, in its own thread, as soon as it is ready.

:func:`run_bounded` keeps at most ``workers`` jobs running at once, and at most
``Job.limit`` of the jobs that share a ``Job.key`` (one connector whose calls must not
overlap, say). The calling thread hands the jobs out and receives their results, so
whatever it does with a result (store it, print a line) happens in that one thread.

The threads are daemon threads kept for reuse by later calls, so a connector that keeps
a client per thread (Google's httplib2 objects) keeps a few, not one per sync. When the
caller stops early (Ctrl-C, an exception), jobs not started never start, and the ones
running end on their own without holding up the process's exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Job(Generic[T]):
    """One piece of work: ``run()`` on a worker thread, at most ``limit`` of ``key`` at once."""

    key: Hashable
    limit: int
    run: Callable[[], T]


def run_bounded(jobs: Sequence[Job[T]], workers: int) -> Iterator[tuple[int, T | Exception]]:
    """Run ``jobs``, started in the order given as far as the limits allow; yield
    ``(index, result)`` as each ends, ``result`` being what it returned or the Exception
    it raised. Anything else it raised (SystemExit, …) is raised here."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    waiting = list(range(len(jobs)))
    running: dict[Hashable, int] = {}
    done: queue.SimpleQueue[tuple[int, T | BaseException]] = queue.SimpleQueue()
    in_flight = 0
    while waiting or in_flight:
        for index in list(waiting):
            if in_flight >= workers:
                break
            job = jobs[index]
            if running.get(job.key, 0) >= max(job.limit, 1):
                continue
            waiting.remove(index)
            running[job.key] = running.get(job.key, 0) + 1
            in_flight += 1
            _THREADS.submit(_reporting(index, job.run, done))
        index, outcome = done.get()
        in_flight -= 1
        running[jobs[index].key] -= 1
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # SystemExit and the like: not a job's failure
        yield index, outcome


def _reporting(
    index: int, run: Callable[[], T], done: queue.SimpleQueue[tuple[int, T | BaseException]]
) -> Callable[[], None]:
    def work() -> None:
        outcome: T | BaseException
        try:
            outcome = run()
        except BaseException as exc:  # handed to the caller, which decides
            outcome = exc
        done.put((index, outcome))

    return work


class _Threads:
    """Daemon threads that take work from one queue; a new one starts only when none is
    idle, so there are never more than the most work ever handed out at once."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that idle thread (or another one) takes it
            else:
                self._count += 1
                name = f"steadyhand-read-{self._count}"
                threading.Thread(target=self._serve, name=name, daemon=True).start()
        self._work.put(work)

    def _serve(self) -> None:
        while True:
            self._work.get()()
            with self._lock:
                self._idle += 1


_THREADS = _Threads()
