"""Fuzzing the sync with mutated real-world calendars (../shared/fixtures/ics).

Each example syncs a real file, then a mutation of it (flipped bytes, a cut, duplicated
lines, a huge RRULE injected): the sync returns (no exception crosses the calendar's
boundary), within a time bound, and when the mutated file cannot be read the events
stored from the good one are kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, write
from worker import config
from worker.core.model import TimeRange
from worker.cycle import sync as syncing
from worker.cycle.runtime import Runtime
from worker.store import Store

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason="../shared/fixtures/ics not present (it sits beside the project checkout)",
)
FILES = (
    sorted(
        p
        for p in FIXTURES.rglob("*.ics")
        if p.relative_to(FIXTURES).parts[0] != "broken" and p.stat().st_size < 40_000
    )
    if FIXTURES.is_dir()
    else []
)
WIDE = TimeRange(datetime(1990, 1, 1, tzinfo=UTC), datetime(2035, 1, 1, tzinfo=UTC))
NOW = datetime(2026, 11, 5, 15, 45, tzinfo=UTC)
HUGE_RULES = [
    b"RRULE:FREQ=SECONDLY;COUNT=1000000000",
    b"RRULE:FREQ=MINUTELY;UNTIL=99991231T235959Z",
    b"RRULE:FREQ=HOURLY;BYMINUTE=" + b",".join(b"%d" % m for m in range(60)),
    b"RRULE:FREQ=MINUTELY;BYSECOND=0,30;COUNT=999999999",
    b"RRULE:FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYMONTHDAY=1,2,3,4,5,6,7,8,9,10",
]
HUGE_STARTS = [b"", b"DTSTART:19000101T090000Z", b"DTSTART:00010101T090000Z"]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Path, bytes]:
    path = draw(st.sampled_from(FILES))
    data = path.read_bytes()
    kind = draw(st.sampled_from(["flip", "cut", "duplicate", "rrule"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 12))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif kind == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "duplicate":
        lines = data.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines) - 1))
        lines[at:at] = [lines[at]] * draw(st.integers(1, 200))
        data = b"".join(lines)
    else:
        rule, start = draw(st.sampled_from(HUGE_RULES)), draw(st.sampled_from(HUGE_STARTS))
        injected = b"\r\n".join(x for x in (b"BEGIN:VEVENT", rule, start) if x)
        count = draw(st.integers(1, 3))
        data = data.replace(b"BEGIN:VEVENT", injected, count)
    return path, data


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    cfg = write(
        tmp_path / "steadyhand.yaml",
        f"timezone: Europe/Berlin\nstore: sqlite:///{tmp_path / 's.db'}\n"
        "sync: {max_events: 2000}\n"
        "people:\n  - email: ana@example.com\n    calendar: {ics: cal.ics}\n",
    )
    settings_ = config.load(cfg)
    rt = Runtime(settings_, Store(settings_.store_url), None, lambda: NOW)  # type: ignore[arg-type]
    try:
        yield rt, cfg.parent / "cal.ics"
    finally:
        rt.close()


@needs_fixtures
@settings(
    max_examples=60,
    deadline=None,  # bounded below, by the wall clock of each sync
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutations())
def test_a_mutated_real_calendar_never_breaks_the_sync_nor_loses_what_was_stored(
    case: tuple[Path, bytes], runtime: tuple[Runtime, Path], monkeypatch
) -> None:
    rt, target = runtime
    monkeypatch.chdir(target.parent)
    path, mutated = case
    target.write_bytes(path.read_bytes())
    [good] = syncing.sync(rt, NOW, window=WIDE)
    stored = sorted(e.id for e in rt.store.events_for("ana@example.com", WIDE))

    target.write_bytes(mutated)
    started = time.monotonic()
    [report] = syncing.sync(rt, NOW, window=WIDE)  # raises nothing, whatever the file
    took = time.monotonic() - started
    assert took < 20, f"{path.name}: {took:.1f} s"
    [status] = rt.store.calendars()
    if report.outcome == "failed":
        assert report.error and "\n" not in report.error and "Traceback" not in report.error
        if good.outcome != "failed":  # what was read before is kept, row for row
            assert sorted(e.id for e in rt.store.events_for("ana@example.com", WIDE)) == stored
    else:
        assert report.events <= 2000 and status.event_count == report.events
