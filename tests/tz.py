"""Hostile time zones for tests, their known change dates, and a helper to name instants.

Dates are the local calendar days on which the clocks change (2026 unless noted).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # +10:30 / +11:00: a 30-minute DST shift
APIA = ZoneInfo("Pacific/Apia")  # skipped the whole of 2011-12-30 (-10:00 -> +14:00)
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45, no DST
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")

US_DST_START = date(2026, 3, 8)  # 02:00 -> 03:00, a 23-hour day
US_DST_END = date(2026, 11, 1)  # 02:00 -> 01:00, a 25-hour day
EU_DST_START = date(2026, 3, 29)  # 02:00 -> 03:00, a 23-hour day
EU_DST_END = date(2026, 10, 25)  # 03:00 -> 02:00, a 25-hour day
SYDNEY_DST_END = date(2026, 4, 5)  # 03:00 -> 02:00, a 25-hour day
SYDNEY_DST_START = date(2026, 10, 4)  # 02:00 -> 03:00, a 23-hour day
LORD_HOWE_DST_END = date(2026, 4, 5)  # 02:00 -> 01:30, a 24.5-hour day
LORD_HOWE_DST_START = date(2026, 10, 4)  # 02:00 -> 02:30, a 23.5-hour day
APIA_SKIPPED_DAY = date(2011, 12, 30)  # a 0-hour day: 2011-12-29 24:00 was 2011-12-31 00:00


def at(tz: ZoneInfo, wall: str, *, fold: int = 0) -> datetime:
    """The instant a clock in ``tz`` shows ``wall`` ("2026-11-02 09:00").

    ``fold=1`` picks the second of a repeated wall time. A wall time that does not exist
    (skipped by a change) raises ``ValueError``, so a test never builds one by accident.
    """
    naive = datetime.fromisoformat(wall)
    if naive.tzinfo is not None:
        raise ValueError(f"give a wall time without a zone, got {wall!r}")
    aware = naive.replace(tzinfo=tz, fold=fold)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{wall} does not exist in {tz.key}")
    return aware


def real_hours(start: datetime, end: datetime) -> float:
    """Elapsed hours between two aware instants (not their wall-clock difference)."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600
