"""Benchmark of hostile calendars (docs/benchmarks.md, issue 10 item 1; docs/limits.md).

Each case is one `steadyhand sync` in its own process, on a config of two people: one
good calendar (the demo's ana.ics) and one hostile input beside it. The baseline, in the
same run, is the same command on the good calendar alone. For each case it prints the
wall time, the process's peak memory (ru_maxrss of the child), the ratio of both to the
baseline, and what the sync table said of the hostile calendar; it checks that the good
calendar was read (its 39 events) and that the run ended within 30 s under 500 MB, the
acceptance of issue 10.

Cases: a 229-byte MINUTELY series from 1900 to 9999, FREQ=SECONDLY;COUNT=1000000000, an
HOURLY series from year 1, a 50 MB file, and a vdir of 513 files with one unreadable.

Run: ``.venv/bin/python bench/hostile.py [--repeat 3] [--keep]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "config" / "demo" / "ana.ics"
NOW = "2026-11-05T16:45:00+01:00"
LIMIT_SECONDS, LIMIT_MB = 30.0, 500.0


def series(uid: str, start: str, rule: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//bench//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{start}",
        f"RRULE:{rule}",
        "SUMMARY:x",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines)


def big_file(path: Path) -> None:
    """50 MB of one-day events, written in pieces (this process stays small: a child's
    ru_maxrss on Linux starts from what its parent held when it forked)."""
    event = series("e", "20261105T090000Z", "FREQ=DAILY;COUNT=1").split("BEGIN:VEVENT")[1]
    piece = ("BEGIN:VEVENT" + event.split("END:VCALENDAR")[0]) * 1000
    with path.open("w") as out:
        out.write("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
        for _ in range(50 * 1024**2 // len(piece) + 1):
            out.write(piece)
        out.write("END:VCALENDAR\r\n")


def vdir(path: Path) -> None:
    path.mkdir()
    for n in range(512):
        day = 2 + n % 25
        text = series(f"m{n}", f"202611{day:02d}T{8 + n % 9:02d}0000Z", "FREQ=DAILY;COUNT=1")
        (path / f"m{n:04d}.ics").write_text(text)
    (path / "broken.ics").write_text("this is not a calendar\n")


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "minutely from 1900": (
        "ics",
        lambda p: p.write_text(
            series("a", "19000101T090000Z", "FREQ=MINUTELY;UNTIL=99991231T235959Z")
        ),
    ),
    "secondly, a billion": (
        "ics",
        lambda p: p.write_text(series("b", "20261101T090000Z", "FREQ=SECONDLY;COUNT=1000000000")),
    ),
    "hourly from year 1": (
        "ics",
        lambda p: p.write_text(series("c", "00010101T090000Z", "FREQ=HOURLY")),
    ),
    "a 50 MB file": ("ics", big_file),
    "vdir, 513 files, 1 broken": ("vdir", vdir),
}


def run_sync(folder: Path) -> tuple[float, float, str]:
    """Wall seconds, the child's own peak memory in MB (os.wait4), and what it printed."""
    out = folder / "sync.out"
    started = time.perf_counter()
    with out.open("w") as sink:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "steadyhand"), "sync", "--now", NOW],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0  # reaped here; keep Popen from waiting again
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024, out.read_text()


def config(folder: Path, hostile: tuple[str, str] | None) -> None:
    people = ["  - {email: ana@example.com, calendar: {ics: ana.ics}}"]
    if hostile:
        kind, location = hostile
        people.append(f"  - {{email: bo@example.com, calendar: {{{kind}: {location}}}}}")
    shutil.copyfile(GOOD, folder / "ana.ics")
    (folder / "steadyhand.yaml").write_text(
        "timezone: Europe/Berlin\npeople:\n" + "\n".join(people) + "\n"
    )


def row_of(output: str, who: str) -> str:
    lines = [line for line in output.splitlines() if who in line and "│" in line]
    return " ".join(" ".join(lines).replace("│", " ").split()) if lines else "(no row)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steadyhand-bench-hostile-"))
    ok = True
    try:
        print("steadyhand bench/hostile.py")
        print(f"  python {sys.version.split()[0]}, {os.cpu_count()} cores; best of {args.repeat}")
        base_folder = work / "baseline"
        base_folder.mkdir()
        config(base_folder, None)
        base, base_mb, _ = min(run_sync(base_folder) for _ in range(args.repeat))
        print(f"  baseline (good calendar alone)  {base:6.2f} s  {base_mb:6.0f} MB")
        print("  -- each hostile input beside the good calendar --------------------------")
        for name, (kind, make) in CASES.items():
            best = None
            for attempt in range(args.repeat):
                folder = work / f"{name.replace(' ', '-').replace(',', '')}-{attempt}"
                folder.mkdir()
                location = "hostile.ics" if kind == "ics" else "hostile"
                make(folder / location)
                config(folder, (kind, location))
                seconds, mb, output = run_sync(folder)
                if best is None or seconds < best[0]:
                    best = (seconds, mb, output)
            assert best is not None
            seconds, mb, output = best
            good = " 39 " in f" {row_of(output, 'ana@example.com')} "
            within = seconds < LIMIT_SECONDS and mb < LIMIT_MB
            ok = ok and good and within
            print(
                f"  {name:27s} {seconds:6.2f} s ({seconds / base:5.1f}x)"
                f"  peak {mb:4.0f} MB ({mb / base_mb:4.1f}x)"
                f"  good read: {'yes' if good else 'NO'}"
                f"  {'within 30 s / 500 MB' if within else 'OVER THE LIMIT'}"
            )
            print(f"      hostile row: {row_of(output, 'bo@example.com')[:150]}")
        print(f"  result: {'every case within the limits' if ok else 'NOT within the limits'}")
    finally:
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
