"""The Huey instance, built from settings: SqliteHuey for ``sqlite:///``, RedisHuey for ``redis://``.

Huey runs with ``utc=True``; every local time is computed by our code with zoneinfo.
Task results are not kept (``results=False``): the store records outcomes.
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from connectors.base import ConfigError, MissingExtra, Problem
from connectors.secrets import private_file
from worker.config import Settings


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
