"""``steadyhand.yaml`` -> frozen, typed settings, with every problem reported at once.

The YAML is read once (:mod:`.reader`: libyaml's event stream, which remembers lines
and refuses aliases), validated by pydantic v2 models (:mod:`.schema`, values parsed by
:mod:`.values`), and cross-checked (teams name known people, calendars name known accounts).
Every problem becomes a :class:`~connectors.base.Problem` rendered as
``FILE:LINE: path.to.key: what is wrong — how to fix``; :func:`load` raises one
:class:`~connectors.base.ConfigError` carrying all of them.

The rest of the program reads :class:`Settings` attributes and the model values it
builds (:meth:`Settings.persons`, :meth:`Settings.calendar_ref`); nobody threads
``conf["a"]["b"]`` around. Loading and the problem report are :mod:`.check`.
"""

from __future__ import annotations

from worker.config.emails import EmailsSettings
from worker.config.loading import (
    MAX_PROBLEMS,
    _all_keys,
    check,
    find,
    inspect,
    load,
)
from worker.config.schema import (
    AccountSettings,
    CalendarSettings,
    MailSettings,
    PersonSettings,
    ProtectRule,
    Settings,
    SmtpSettings,
    SyncSettings,
    TeamSettings,
)
from worker.config.templates import (
    TEMPLATE_CHECK_MEMORY,
    TEMPLATE_CHECK_SECONDS,
    template_problems,
)
from worker.config.values import (
    DEFAULT_NAME,
    ENV_VAR,
    MAX_ANY_DURATION,
    MAX_SUGGESTIONS,
    SECRET_KEY_ENV,
    _parse_weeks,
    check_timezone,
    parse_bytes,
    parse_clock,
    parse_days,
    parse_duration,
    parse_working_hours,
)
from worker.config.web import WebSettings

__all__ = [
    "DEFAULT_NAME",
    "ENV_VAR",
    "MAX_ANY_DURATION",
    "MAX_PROBLEMS",
    "MAX_SUGGESTIONS",
    "SECRET_KEY_ENV",
    "TEMPLATE_CHECK_MEMORY",
    "TEMPLATE_CHECK_SECONDS",
    "AccountSettings",
    "CalendarSettings",
    "EmailsSettings",
    "MailSettings",
    "PersonSettings",
    "ProtectRule",
    "Settings",
    "SmtpSettings",
    "SyncSettings",
    "TeamSettings",
    "WebSettings",
    "_all_keys",
    "_parse_weeks",
    "check",
    "check_timezone",
    "find",
    "inspect",
    "load",
    "parse_bytes",
    "parse_clock",
    "parse_days",
    "parse_duration",
    "parse_working_hours",
    "template_problems",
]
