"""Microsoft 365 / Outlook calendars and mail through Microsoft Graph (msal + requests).

Only :mod:`connectors.outlook.auth` imports msal; Graph is plain HTTP through ``requests``.
``docs/outlook.md`` is the user's side of all this. The modules, bottom up:

``zones``
    Windows time-zone names -> IANA (:data:`WINDOWS_ZONES`, :func:`iana_zone`) and Graph's
    ``dateTime`` text (:func:`parse_graph_time`).
``mapping``
    Graph JSON <-> :class:`~worker.core.model.Event` and blocks: the block tag
    (:data:`TAG_PROPERTY`, :data:`CATEGORY`), :func:`transaction_id`, mailbox settings.
``auth``
    Access tokens per ``accounts[].auth`` mode (device_code, client_credentials,
    access_token), ``doctor``'s token state, and :func:`connect` (the device-code sign-in).
``graph``
    The HTTP client: bearer token, errors mapped, retries and ``$batch``.
``delta``
    One calendar's sync round through ``calendarView/delta``, alone or batched.
``calendar``
    :class:`OutlookCalendar`: sync, writes of steadyhand's blocks, declining conflicts.
``mail``
    :class:`OutlookTransport`: ``sendMail``.

Limits
------
429 and 5xx are :class:`~worker.core.errors.TransientError` carrying ``Retry-After`` and are
retried with :func:`connectors.retry.retrying`; at most ``max_concurrent_per_mailbox``
(Exchange allows 4) requests per mailbox are in flight at once, counting each item of a
``$batch``.
"""

from __future__ import annotations

from connectors.outlook.auth import SCOPES, connect, token_name
from connectors.outlook.calendar import DEFAULT_DECLINE_MESSAGE, OutlookCalendar
from connectors.outlook.mail import OutlookTransport
from connectors.outlook.mapping import (
    CATEGORY,
    TAG_PROPERTY,
    MailboxSettings,
    event_from_graph,
    tag_of,
    transaction_id,
)
from connectors.outlook.zones import WINDOWS_ZONES, iana_zone, parse_graph_time

__all__ = [
    "CATEGORY",
    "DEFAULT_DECLINE_MESSAGE",
    "SCOPES",
    "TAG_PROPERTY",
    "WINDOWS_ZONES",
    "MailboxSettings",
    "OutlookCalendar",
    "OutlookTransport",
    "connect",
    "event_from_graph",
    "iana_zone",
    "parse_graph_time",
    "tag_of",
    "token_name",
    "transaction_id",
]
