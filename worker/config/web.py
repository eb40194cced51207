"""The ``web:`` section (``steadyhand serve``): where it listens, the public URL links
use, and which proxies' forwarded headers to believe. Each parser raises
``ValueError("what — how to fix")`` like the others in :mod:`worker.config.values`."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator

from worker.config.values import _Section, _shown, _web_url


def parse_listen(value: Any) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets: ``[::1]:8080``) -> (host, port)."""
    fix = "write HOST:PORT, like 127.0.0.1:8080 (0.0.0.0:8080 listens on every interface)"
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} is not HOST:PORT — {fix}")
    host, colon, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (
        not colon
        or not (port.isascii() and port.isdecimal())
        or len(port) > 5
        or not 1 <= int(port) <= 65535
    ):
        raise ValueError(f"{_shown(value)} has no port from 1 to 65535 — {fix}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
            raise ValueError(f"{_shown(value)} has no valid host — {fix}") from None
    return host, int(port)


def _listen(value: Any) -> str:
    parse_listen(value)
    return str(value).strip()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _public_url(value: str) -> str:
    """``web.base_url``: https, or http to this machine only (links carry tokens)."""
    _web_url(value, fix="write it like https://steadyhand.example.com")
    parts = urlsplit(value)
    if parts.scheme.lower() == "http" and not is_loopback(parts.hostname or ""):
        secure = "https" + value[len(parts.scheme) :]
        raise ValueError(
            f"{_shown(value)} is plain http to another machine — write {secure} (put "
            "steadyhand behind a proxy that serves https: the links carry sign-in tokens); "
            "http is for 127.0.0.1 and localhost only"
        )
    return value.rstrip("/")


def _network(value: Any) -> str:
    """``web.trusted_proxies`` item: an IP address or a network (CIDR)."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"{_shown(value)} is not an IP address or network — write one like 10.0.0.5 "
            "or 10.0.0.0/8"
        ) from None


Listen = Annotated[str, BeforeValidator(_listen)]
PublicUrl = Annotated[str, AfterValidator(_public_url)]
Network = Annotated[str, BeforeValidator(_network)]


class WebSettings(_Section):
    """``steadyhand serve``: where it listens, the URL links use, which proxies to believe."""

    listen: Listen = "127.0.0.1:8080"
    base_url: PublicUrl | None = None
    trusted_proxies: tuple[Network, ...] = ()

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)
