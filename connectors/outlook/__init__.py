"""Microsoft 365 / Outlook calendars and mail through Microsoft Graph (``auth`` holds it all
for now; the next commit splits it)."""

from __future__ import annotations

from connectors.outlook.auth import (
    CATEGORY,
    TAG_PROPERTY,
    WINDOWS_ZONES,
    OutlookCalendar,
    OutlookTransport,
    connect,
    iana_zone,
    parse_graph_time,
    token_name,
    transaction_id,
)

__all__ = [
    "CATEGORY",
    "TAG_PROPERTY",
    "WINDOWS_ZONES",
    "OutlookCalendar",
    "OutlookTransport",
    "connect",
    "iana_zone",
    "parse_graph_time",
    "token_name",
    "transaction_id",
]
