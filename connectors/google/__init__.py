"""Google Calendar and Gmail (docs/google.md): the names callers use, from the modules."""

from __future__ import annotations

from connectors.google.calendar import (
    BATCH_LIMIT,
    DEFAULT_BACKOFF,
    DEFAULT_ROOT,
    FOCUS_TIME_PROPERTIES,
    PAGE_SIZE,
    SCOPE_CALENDAR,
    SCOPE_GMAIL_SEND,
    SCOPES,
    TAG,
    GmailTransport,
    GoogleCalendar,
    connect,
    event_id_for,
    to_event,
    token_name,
)

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
