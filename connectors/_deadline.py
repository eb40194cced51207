"""A deadline for a whole HTTP exchange, the wait for the response's headers included.

requests' ``timeout`` is per socket read: a server that sends one byte of its status line
or headers every few seconds never trips it. :class:`DeadlineAdapter` makes the
connections of a session note themselves, as they send a request, on the calling
thread's watch list; :func:`deadline` starts a timer that, when it fires, shuts down the
sockets on that list, so a read blocked inside ``session.get`` ends at once. (The body
has its own watchdog in :mod:`connectors.ics`, on the response it then has.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_watching = threading.local()


def _note(connection: HTTPConnection) -> None:
    watch: list[HTTPConnection] | None = getattr(_watching, "connections", None)
    if watch is not None:
        watch.append(connection)


class _Connection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _note(self)
        super().request(*args, **kwargs)


class _TlsConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _note(self)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections can be hung up on by :func:`deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}


@contextmanager
def deadline(seconds: float) -> Iterator[threading.Event]:
    """Within the block, requests this thread makes through a :class:`DeadlineAdapter`
    are hung up on after ``seconds``; the event yielded says whether that happened."""
    connections: list[HTTPConnection] = []
    expired = threading.Event()

    def hang_up() -> None:
        expired.set()
        for connection in list(connections):
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(seconds, 0.0), hang_up)
    timer.daemon = True
    _watching.connections = connections
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
        _watching.connections = None
