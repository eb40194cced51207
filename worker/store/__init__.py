"""The store (its queries are being split out of :mod:`worker.store.events`)."""

from worker.store.events import BlockRecord, CalendarStatus, OutboxRow, Store

__all__ = ["BlockRecord", "CalendarStatus", "OutboxRow", "Store"]
