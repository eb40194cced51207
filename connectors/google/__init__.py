"""Google Calendar and Gmail through google-api-python-client (docs/contract.md, docs/google.md).

The only package of steadyhand that imports ``googleapiclient``, ``google.auth`` and
``google_auth_oauthlib``. Its modules, each leaning only on the ones above it:

``mapping``   Google's event resources and steadyhand's values, both ways (no I/O)
``auth``      credentials per person (oauth, service_account, access_token) and :func:`connect`
``api``       sessions, requests run with retries, Google's errors as steadyhand's
``health``    a person's credentials checked for ``steadyhand doctor``
``sync``      one calendar's sync in progress and the result its pages make
``calendar``  :class:`GoogleCalendar`: sync, batch sync, writes of blocks
``gmail``     :class:`GmailTransport`

The names callers use are here (``connectors.google:GoogleCalendar`` in the registry).
"""

from __future__ import annotations

from connectors.google.api import DEFAULT_BACKOFF, DEFAULT_ROOT
from connectors.google.auth import SCOPE_CALENDAR, SCOPE_GMAIL_SEND, SCOPES, connect, token_name
from connectors.google.calendar import BATCH_LIMIT, GoogleCalendar
from connectors.google.gmail import GmailTransport
from connectors.google.mapping import FOCUS_TIME_PROPERTIES, TAG, event_id_for, to_event
from connectors.google.sync import PAGE_SIZE
from connectors.secrets import guard_library_logs

__all__ = [
    "BATCH_LIMIT",
    "DEFAULT_BACKOFF",
    "DEFAULT_ROOT",
    "FOCUS_TIME_PROPERTIES",
    "PAGE_SIZE",
    "SCOPES",
    "SCOPE_CALENDAR",
    "SCOPE_GMAIL_SEND",
    "TAG",
    "GmailTransport",
    "GoogleCalendar",
    "connect",
    "event_id_for",
    "to_event",
    "token_name",
]

# The libraries this package drives log request lines, bodies and token responses at DEBUG
# (the OAuth redirect carries the one-time code, requests-oauthlib logs the PKCE verifier
# and the token it got): their own loggers redact, whatever handler the application installs.
guard_library_logs()
