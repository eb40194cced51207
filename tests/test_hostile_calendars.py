"""Hostile calendars beside good ones: every sync ends quickly, bounded, and says what it cut.

Each hostile input of issue #10 (a series from 1900 every minute until 9999, a billion
seconds, an hourly series from year 1, files that are not calendars, one calendar whose
read blows up in any way) sits in the same config as a good calendar: `steadyhand sync`
reads and stores the good one and reports the hostile one in one line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import _ical
from connectors._bounds import Budget
from connectors.ics import IcsCalendar
from tests.conftest import ROOT, write
from worker.core.model import CalendarRef, SyncLimits, TimeRange
from worker.cycle import sync as syncing
from worker.store import Store

NOW = "2026-11-05T16:45:00+01:00"
WINDOW = TimeRange(datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
GOOD_EVENTS = 39  # the demo's ana.ics inside the sync window at NOW

HOSTILE = {
    "minutely-1900-9999": (
        "DTSTART:19000101T090000Z\nDTEND:19000101T091000Z\n"
        "RRULE:FREQ=MINUTELY;UNTIL=99991231T235959Z"
    ),
    "secondly-billion": (
        "DTSTART:20261101T090000Z\nDTEND:20261101T090001Z\nRRULE:FREQ=SECONDLY;COUNT=1000000000"
    ),
    "secondly-billion-from-1900": (
        "DTSTART:19000101T090000Z\nDTEND:19000101T090001Z\nRRULE:FREQ=SECONDLY;COUNT=1000000000"
    ),
    "hourly-from-year-1": "DTSTART:00010101T090000Z\nDTEND:00010101T100000Z\nRRULE:FREQ=HOURLY",
}
#: What the sync table says of each: cut at sync.max_events, or read whole and fast.
CUT = "read, truncated: more than {cap} events (sync.max_events)"
EXPECTED = {
    "minutely-1900-9999": "cut",
    "secondly-billion": "cut",
    "secondly-billion-from-1900": 0,  # its billion seconds ended in 1931
    "hourly-from-year-1": 24 * 84,  # every hour of the 12-week window
}


def ics(body: str) -> str:
    vevent = f"BEGIN:VEVENT\nUID:hostile@example.com\nSUMMARY:x\n{body}\nEND:VEVENT"
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{vevent}\nEND:VCALENDAR\n"


def config(folder: Path, hostile: str, sync: str = "{max_events: 5000}") -> Path:
    """ana: the demo calendar; bo: ``hostile``; cy: the demo again, after the hostile one."""
    (folder / "cal").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "config" / "demo" / "ana.ics", folder / "cal" / "ana.ics")
    shutil.copyfile(ROOT / "config" / "demo" / "cy.ics", folder / "cal" / "cy.ics")
    write(folder / "cal" / "bo.ics", hostile)
    return write(
        folder / "steadyhand.yaml",
        textwrap.dedent(f"""\
            timezone: Europe/Berlin
            sync: {sync}
            people:
              - email: ana@example.com
                calendar: {{ics: cal/ana.ics}}
              - email: bo@example.com
                calendar: {{ics: cal/bo.ics}}
              - email: cy@example.com
                calendar: {{ics: cal/cy.ics}}
            """),
    )


def line_of(text: str, email: str) -> str:
    return next(li for li in text.splitlines() if email in li)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_series_beside_good_calendars_is_cut_or_read_in_seconds(
    name: str, run_cli, project: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    config(project, ics(HOSTILE[name]))
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    result = run_cli("sync")
    took = time.monotonic() - started
    assert result.code == 0, result.err
    assert took < 30, f"{name}: {took:.1f} s"
    assert "read" in line_of(result.out, "ana@example.com")
    assert f" {GOOD_EVENTS} " in line_of(result.out, "ana@example.com")
    assert "read" in line_of(result.out, "cy@example.com")  # the one after it too
    bo = line_of(result.out, "bo@example.com")
    if EXPECTED[name] == "cut":
        assert CUT.format(cap=5000) in bo and " 5000 " in bo
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("truncated" in w and "bo@example.com" in w for w in warnings), warnings
        doctor = run_cli("doctor")
        assert CUT.format(cap=5000) in line_of(doctor.out, "bo@example.com")
        assert " 5000 " in line_of(doctor.out, "bo@example.com")
        assert "unchanged" in line_of(run_cli("sync").out, "bo@example.com")
        assert CUT.format(cap=5000) in line_of(run_cli("doctor").out, "bo@example.com")
    else:
        assert "truncated" not in bo and f" {EXPECTED[name]} " in bo
    store = Store(f"sqlite:///{project / 'var' / 'steadyhand.db'}")
    try:
        counts = {c.owner: c.event_count for c in store.calendars()}
    finally:
        store.close()
    assert counts["ana@example.com"] == GOOD_EVENTS
    assert counts["bo@example.com"] == (5000 if EXPECTED[name] == "cut" else EXPECTED[name])


def test_the_hostile_inputs_at_the_default_limits_end_within_30_s_and_500_mb(
    tmp_path: Path,
) -> None:
    """The whole CLI in a process of its own, all hostile calendars in one config at the
    default sync.max_events (50,000): its wall time and peak memory (ru_maxrss)."""
    folder = tmp_path / "all"
    folder.mkdir()
    config(folder, ics(HOSTILE["hourly-from-year-1"]), sync="{}")
    people = ""
    for i, body in enumerate(v for k, v in HOSTILE.items() if k != "hourly-from-year-1"):
        write(folder / "cal" / f"h{i}.ics", ics(body))
        people += f"  - email: h{i}@example.com\n    calendar: {{ics: cal/h{i}.ics}}\n"
    path = folder / "steadyhand.yaml"
    path.write_text(path.read_text().replace("sync: {}\n", "") + people)
    probe = (
        "import resource, sys\n"
        "from worker import cli\n"
        "code = cli.main(['sync'])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "print(f'PEAK_MB {peak}', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "STEADYHAND_NOW": NOW, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    peak = int(done.stderr.split("PEAK_MB ")[1].split()[0])
    print(f"\nall hostile calendars at the defaults: {took:.1f} s, peak RSS {peak} MB")
    assert took < 30 and peak < 500
    assert f" {GOOD_EVENTS} " in line_of(done.stdout, "ana@example.com")
    assert CUT.format(cap=50000) in line_of(done.stdout, "h0@example.com")
    assert CUT.format(cap=50000) in line_of(done.stdout, "h1@example.com")
    assert f" {EXPECTED['hourly-from-year-1']} " in line_of(done.stdout, "bo@example.com")
    assert "read" in line_of(done.stdout, "h2@example.com")
    assert "Traceback" not in done.stderr


# -- the series bounds, at the connector --------------------------------------------------
def sync_file(path: Path, limits: SyncLimits | None = None):
    cal = CalendarRef("k", "bo@example.com", "ics", str(path), "Europe/Berlin")
    return IcsCalendar(limits=limits or SyncLimits()).sync(cal, WINDOW, None)


def test_a_cut_series_keeps_the_first_instances_and_the_rest_of_the_file_is_read(
    tmp_path: Path,
) -> None:
    hostile = ics(HOSTILE["minutely-1900-9999"])
    good = "BEGIN:VEVENT\nUID:good\nDTSTART:20261110T090000Z\nDTEND:20261110T100000Z\nEND:VEVENT"
    path = write(tmp_path / "bo.ics", hostile.replace("END:VCALENDAR", good + "\nEND:VCALENDAR"))
    result = sync_file(path, SyncLimits(max_events=1000))
    assert result.truncated == "more than 1000 events (sync.max_events)"
    starts = sorted(e.start for e in result.events if e.series_id)
    assert len(starts) == 999  # the good event took one place of the 1,000
    # the first ones to overlap the window, one a minute: not 1900's
    assert starts[0] == datetime(2026, 10, 7, 23, 51, tzinfo=UTC)
    assert starts[-1] == starts[0] + timedelta(minutes=998)
    assert [e.id for e in result.events if not e.series_id] == ["good"]


def test_a_series_that_cannot_be_computed_ahead_is_skipped_in_one_line(tmp_path: Path) -> None:
    """COUNT with BY-parts from 1900: its instances cannot be skipped by arithmetic."""
    rule = (
        "DTSTART:19000101T090000Z\nDTEND:19000101T091000Z\n"
        "RRULE:FREQ=MINUTELY;BYSECOND=0;COUNT=1000000000"
    )
    good = "BEGIN:VEVENT\nUID:good\nDTSTART:20261110T090000Z\nDTEND:20261110T100000Z\nEND:VEVENT"
    path = write(tmp_path / "bo.ics", ics(rule).replace("END:VCALENDAR", good + "\nEND:VCALENDAR"))
    started = time.monotonic()
    result = sync_file(path)
    assert time.monotonic() - started < 5
    assert result.truncated == "a minutely series from 1900 was skipped (too long)"
    assert [e.id for e in result.events] == ["good"]


def test_the_time_budget_stops_the_expansion_and_says_so(tmp_path: Path) -> None:
    events = "".join(
        f"BEGIN:VEVENT\nUID:e{i}\nDTSTART:20261110T0900{i % 60:02d}Z\nRRULE:FREQ=DAILY\n"
        "END:VEVENT\n"
        for i in range(50)
    )
    path = write(tmp_path / "bo.ics", f"BEGIN:VCALENDAR\nVERSION:2.0\n{events}END:VCALENDAR\n")
    result = sync_file(path, SyncLimits(expand_seconds=0.0))
    assert result.truncated == "expanding took over 0 s, the rest was left out"
    assert len(result.events) < 50 * 51


def test_legit_series_are_not_cut(tmp_path: Path) -> None:
    weekly = "DTSTART:20000103T090000Z\nDTEND:20000103T100000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR"
    result = sync_file(write(tmp_path / "w.ics", ics(weekly)))
    assert result.truncated is None and len(result.events) == 36  # 12 weeks x 3
    budget = Budget()
    cal = CalendarRef("k", "bo@example.com", "ics", "w.ics", "Europe/Berlin")
    found = _ical.events_between(
        _ical.parse(ics(weekly).encode(), "w"), cal, WINDOW, "w", None, budget
    )
    assert len(found) == 36 and budget.truncated is None and budget.left == 50_000 - 36


# -- any failure stays inside its calendar ------------------------------------------------
@pytest.mark.parametrize(
    ("raised", "line"),
    [
        (MemoryError(), "MemoryError"),
        (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum"),
        (OverflowError("date value out of range"), "OverflowError: date value out of range"),
        (ValueError("cannot parse 'MADE-UP-SECRET'"), "ValueError: cannot parse …"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_any_exception_in_one_calendar_is_one_line_and_the_others_sync(
    raised: BaseException,
    line: str,
    run_cli,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
) -> None:
    config(project, ics(HOSTILE["hourly-from-year-1"]))
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    assert run_cli("sync").code == 0
    real = IcsCalendar._sync_file

    def breaks_on_bo(self: IcsCalendar, cal: CalendarRef, *args: object) -> object:
        if "bo.ics" in cal.location:
            raise raised
        return real(self, cal, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(IcsCalendar, "_sync_file", breaks_on_bo)
    caplog.set_level(logging.DEBUG)
    result = run_cli("sync")
    assert result.code == 1
    assert result.err.strip() == f"error: {line}" or result.err.startswith(f"error: {line}")
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "MADE-UP-SECRET" not in result.out + result.err
    assert "failed" in line_of(result.out, "bo@example.com")
    assert "unchanged" in line_of(result.out, "cy@example.com")  # synced after it
    failures = [r for r in caplog.records if "bo@example.com" in r.getMessage()]
    assert [r.levelname for r in failures if r.levelno >= logging.WARNING] == ["WARNING"]
    assert [r.exc_info is not None for r in failures if r.levelno == logging.DEBUG] == [True]
    doctor = run_cli("doctor")
    bo = line_of(doctor.out, "bo@example.com")
    assert (
        line.split(":", maxsplit=1)[0] in bo and f" {EXPECTED['hourly-from-year-1']} " in bo
    )  # kept


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_is_never_swallowed_by_the_calendar_boundary(
    stop: type[BaseException], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import config as config_mod
    from worker.cycle.runtime import Runtime

    settings = config_mod.load(config(project, ics(HOSTILE["hourly-from-year-1"])))

    def interrupted(*args: object) -> object:
        raise stop()

    monkeypatch.setattr(IcsCalendar, "_sync_file", interrupted)
    rt = Runtime(settings, Store(settings.store_url), None, lambda: WINDOW.start)  # type: ignore[arg-type]
    try:
        with pytest.raises(stop):
            syncing.sync(rt, WINDOW.start)
    finally:
        rt.store.close()


def test_a_provider_returning_more_than_max_events_is_cut_at_the_cap(tmp_path: Path) -> None:
    """Connectors that take no limits (memory here, Google and Outlook too) are bounded
    where their result is stored."""
    from connectors.memory import MemoryCalendar
    from worker import config as config_mod
    from worker.core.model import Event
    from worker.cycle.runtime import Runtime

    settings = config_mod.load(
        write(
            tmp_path / "steadyhand.yaml",
            "timezone: UTC\nstore: sqlite:///" + str(tmp_path / "s.db") + "\n"
            "sync: {max_events: 100}\n"
            "people:\n  - email: ana@example.com\n    calendar: {memory: ana}\n",
        )
    )
    start = datetime(2026, 11, 10, 9, tzinfo=UTC)
    huge = [
        Event(
            id=f"e{i}",
            calendar_id="ana",
            start=start + timedelta(minutes=i),
            end=start + timedelta(minutes=i + 1),
        )
        for i in range(1000)
    ]
    rt = Runtime(
        settings,
        Store(settings.store_url),
        None,  # type: ignore[arg-type]
        lambda: start,
        calendars={("memory", None): MemoryCalendar({"ana": huge})},
    )
    try:
        [report] = syncing.sync(rt, start)
        assert (report.outcome, report.events) == ("read", 100)
        assert report.truncated == "more than 100 events (sync.max_events)"
        [status] = rt.store.calendars()
        assert status.truncated == report.truncated and status.event_count == 100
    finally:
        rt.store.close()


def test_a_vdir_shares_one_budget_across_its_files(tmp_path: Path) -> None:
    from connectors.vdir import VdirCalendar

    folder = tmp_path / "ana"
    folder.mkdir()
    write(folder / "a-hostile.ics", ics(HOSTILE["minutely-1900-9999"]))
    write(folder / "b-hostile.ics", ics(HOSTILE["secondly-billion"]).replace("hostile@", "h2@"))
    good = "BEGIN:VEVENT\nUID:good\nDTSTART:20261110T090000Z\nDTEND:20261110T100000Z\nEND:VEVENT"
    write(folder / "c-good.ics", f"BEGIN:VCALENDAR\nVERSION:2.0\n{good}\nEND:VCALENDAR\n")
    cal = CalendarRef("k", "ana@example.com", "vdir", str(folder), "Europe/Berlin")
    started = time.monotonic()
    result = VdirCalendar(limits=SyncLimits(max_events=3000)).sync(cal, WINDOW, None)
    assert time.monotonic() - started < 10
    assert result.truncated == "more than 3000 events (sync.max_events)"
    assert len(result.events) == 3000 and "good" in {e.id for e in result.events}


def test_a_calendar_whose_connector_cannot_be_built_fails_alone(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors import registry

    config(project, ics(HOSTILE["hourly-from-year-1"]))
    (project / "dee").mkdir()
    path = project / "steadyhand.yaml"
    path.write_text(path.read_text() + "  - email: dee@example.com\n    calendar: {vdir: dee}\n")
    monkeypatch.setitem(registry.CALENDARS, "vdir", ("connectors.gone:Vdir", None))
    monkeypatch.setenv("STEADYHAND_NOW", NOW)
    result = run_cli("sync")
    assert result.code == 1, result.err
    assert result.err.strip() == "error: 'vdir' is not available in this version of steadyhand"
    assert "read" in line_of(result.out, "ana@example.com")
    assert "failed" in line_of(result.out, "dee@example.com")
