"""Kind name -> implementation, imported lazily so a missing extra only matters when used.

A calendar of kind ``google`` needs ``pip install 'steadyhand[google]'``; asking for it
without that installed raises :class:`~connectors.base.MissingExtra` saying exactly that.
"""

from __future__ import annotations

import importlib
from typing import Any

from worker.core.errors import MissingExtra

#: kind -> (dotted path "module:attribute", extra that provides its dependencies or None)
CALENDARS: dict[str, tuple[str, str | None]] = {
    "memory": ("connectors.memory:MemoryCalendar", None),
    "ics": ("connectors.ics:IcsCalendar", None),
    "vdir": ("connectors.vdir:VdirCalendar", None),
    "google": ("connectors.google:GoogleCalendar", "google"),
    "outlook": ("connectors.outlook:OutlookCalendar", "outlook"),
    "caldav": ("connectors.caldav:CaldavCalendar", None),  # not written yet: NOT_YET
}

#: Kinds the config accepts whose connector has not landed: (what, fix), said by `config check`
#: at the line and by `sync` for that calendar alone.
NOT_YET: dict[str, tuple[str, str]] = {
    "caldav": (
        "kind caldav is not available yet",
        "use ics: with the calendar's shared iCalendar link, "
        "or a vdir: folder that vdirsyncer keeps in sync with the CalDAV server",
    ),
}

TRANSPORTS: dict[str, tuple[str, str | None]] = {
    "outbox": ("connectors.smtp:MaildirTransport", None),
    "smtp": ("connectors.smtp:SmtpTransport", None),
    "memory": ("connectors.memory:RecordingTransport", None),
    "gmail": ("connectors.google:GmailTransport", "google"),
    "outlook": ("connectors.outlook:OutlookTransport", "outlook"),
}


def load(kind: str, table: dict[str, tuple[str, str | None]] | None = None) -> Any:
    """Import and return the class registered for ``kind``."""
    table = CALENDARS if table is None else table
    try:
        path, extra = table[kind]
    except KeyError:
        known = ", ".join(sorted(table))
        raise MissingExtra(f"unknown kind {kind!r}; known kinds: {known}") from None
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module_name):
            if kind in NOT_YET:
                raise MissingExtra(" — ".join(NOT_YET[kind])) from exc
            raise MissingExtra(f"{kind!r} is not available in this version of steadyhand") from exc
        hint = f"Run \"pip install 'steadyhand[{extra}]'\"" if extra else "Reinstall steadyhand"
        raise MissingExtra(f"{kind!r} needs the Python module {exc.name!r}. {hint}") from exc
    return getattr(module, attribute)


def load_transport(kind: str) -> Any:
    return load(kind, TRANSPORTS)
