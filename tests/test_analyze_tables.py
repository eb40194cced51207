"""`steadyhand analyze` tables fit the terminal: `--by week` and `--by day` at 80 and 200
columns, on a made-up calendar whose figures are worked out by hand below."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import write

MAX = "Maximiliane Oberhuber"

# Berlin is UTC+1 in November; working hours 09:00-17:00 (480 min), focus blocks >= 120 min.
# Week of Mon 9 Nov, Max:
#   Mon  09:00-10:00 a busy event with nobody else on it: busy 60, no meeting; focus 420
#   Tue  four 90-min meetings with 30-min gaps from 09:00: meetings 360, load 75 %, focus 0
#        -> overloaded: meeting_load, no_focus (the gaps are > 5 min: no chain over 90)
#   Wed  a meeting 18:00-19:00: after hours 60 -> overloaded: after_hours; focus 480
#   Thu  as Tuesday -> overloaded: meeting_load, no_focus
#   Fri  free: focus 480
#   week: meetings 780 (13.0 h), busy 840 (14.0 h), focus 1380 (23.0 h), after 60 (1.0 h)
# Week of Mon 16 Nov, Max: Mon 10:00-11:00 a meeting; focus 360 + 4 x 480 = 2280 (38.0 h)
# Jo: Mon 9 Nov 10:00-11:00 a meeting with Max (1.0 h), nothing else.


def meeting(uid: str, day: str, start: str, end: str, others: bool = True) -> str:
    people = "ORGANIZER:mailto:max@example.com\nATTENDEE:mailto:jo@example.com\n" if others else ""
    return (
        f"BEGIN:VEVENT\nUID:{uid}\nSUMMARY:x\nDTSTART:{day}T{start}00Z\n"
        f"DTEND:{day}T{end}00Z\n{people}END:VEVENT\n"
    )


def calendar(*events: str) -> str:
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + "".join(events) + "END:VCALENDAR\n"
    )


def crunch(day: str) -> list[str]:
    """Four 90-minute meetings 09:00-10:30, 11:00-12:30, 13:00-14:30, 15:00-16:30 Berlin."""
    slots = (("0800", "0930"), ("1000", "1130"), ("1200", "1330"), ("1400", "1530"))
    return [meeting(f"{day}-{i}", day, a, b) for i, (a, b) in enumerate(slots)]


@pytest.fixture
def team(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(
        project / "cal" / "max.ics",
        calendar(
            meeting("solo", "20261109", "0800", "0900", others=False),
            *crunch("20261110"),
            meeting("late", "20261111", "1700", "1800"),
            *crunch("20261112"),
            meeting("next", "20261116", "0900", "1000"),
        ),
    )
    write(project / "cal" / "jo.ics", calendar(meeting("jo", "20261109", "0900", "1000")))
    write(
        project / "steadyhand.yaml",
        f"""\
timezone: Europe/Berlin
working_hours: {{mon-fri: "09:00-17:00"}}
sync: {{past: 12w, future: 4w}}
people:
  - email: max@example.com
    name: {MAX}
    calendar: {{ics: cal/max.ics}}
  - email: jo@example.com
    name: Jo Wu
    calendar: {{ics: cal/jo.ics}}
""",
    )
    monkeypatch.setenv("STEADYHAND_NOW", "2026-11-23T10:00:00+01:00")
    return project


TWO_WEEKS = ("--from", "2026-11-09", "--to", "2026-11-22")


def at(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Rich takes for the width of a pipe, as a terminal of ``columns`` would be."""
    monkeypatch.setenv("COLUMNS", str(columns))


def assert_fits(out: str, columns: int) -> None:
    too_wide = [line for line in out.splitlines() if len(line.rstrip()) > columns]
    assert not too_wide, f"wider than {columns}: {too_wide}"
    assert "…" not in out


def figures(line: str) -> list[str]:
    return re.findall(r"\d+\.\d", line)


def test_two_weeks_at_80_columns_roll_up_per_week_and_name_the_overloaded_days(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(80, monkeypatch)
    result = run_cli("analyze", *TWO_WEEKS)
    assert result.code == 0, result.err
    assert_fits(result.out, 80)
    assert "Hours per person and ISO week" in result.out
    lines = result.out.splitlines()
    first = next(li for li in lines if li.startswith(MAX))
    assert "09 Nov" in first
    assert figures(first) == ["13.0", "14.0", "23.0", "1.0"]  # meet, busy, focus, after
    days = " ".join(li[first.index("Tue") :].strip() for li in lines[lines.index(first) :][:3])
    assert "Tue, Thu (meeting load, no focus); Wed (after hours)" in days
    second = next(li for li in lines if "16 Nov" in li and not li.startswith("Jo"))
    assert figures(second) == ["1.0", "1.0", "38.0", "0.0"]
    total = next(li for li in lines if " all " in li)
    assert figures(total) == ["14.0", "15.0", "61.0", "1.0"] and "3 overloaded days" in total
    jo = next(li for li in lines if li.startswith("Jo Wu"))
    assert figures(jo) == ["1.0", "1.0", "38.0", "0.0"]


def test_two_weeks_at_200_columns_show_every_day_in_one_row(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("analyze", *TWO_WEEKS)
    assert result.code == 0, result.err
    assert_fits(result.out, 200)
    row = next(li for li in result.out.splitlines() if li.startswith(MAX))
    first_week, second_week = ["·", "6.0!", "1.0!", "6.0!", "·"], ["1.0", "·", "·", "·", "·"]
    assert row.split()[2:] == [*first_week, *second_week, "14.0", "3"]
    assert (
        f"{MAX}, Tue 10 Nov: meeting_load (75 % of working time in meetings), "
        "no_focus (0 min of focus time)"
    ) in result.out
    assert f"{MAX}, Wed 11 Nov: after_hours (60 min of meetings outside working hours)" in (
        result.out
    )


def test_by_week_at_200_columns_keeps_the_overloaded_days_on_one_line(run_cli, team: Path) -> None:
    result = run_cli("analyze", *TWO_WEEKS, "--by", "week")
    assert result.code == 0, result.err
    assert_fits(result.out, 200)
    first = next(li for li in result.out.splitlines() if li.startswith(MAX))
    assert first.rstrip().endswith("Tue, Thu (meeting load, no focus); Wed (after hours)")


def test_by_day_at_80_columns_stacks_a_week_per_row_for_each_person(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(80, monkeypatch)
    result = run_cli("analyze", *TWO_WEEKS, "--by", "day")
    assert result.code == 0, result.err
    assert_fits(result.out, 80)
    lines = result.out.splitlines()
    heading = lines.index(f"{MAX}  Europe/Berlin: 14.0 h of meetings, 3 overloaded days")
    header, _rule, week1, week2 = (li.split() for li in lines[heading + 1 : heading + 5])
    assert header == ["week", "of", "Mon", "Tue", "Wed", "Thu", "Fri", "total"]
    assert week1 == ["09", "Nov", "·", "6.0!", "1.0!", "6.0!", "·", "13.0"]
    assert week2 == ["16", "Nov", "1.0", "·", "·", "·", "·", "1.0"]
    assert "Jo Wu  Europe/Berlin: 1.0 h of meetings, 0 overloaded days" in lines


def test_one_week_at_80_columns_fits_a_row_of_days(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(80, monkeypatch)
    result = run_cli("analyze", "--week", "2026-W46")
    assert result.code == 0, result.err
    assert_fits(result.out, 80)
    row = next(li for li in result.out.splitlines() if li.startswith(MAX))
    assert row.split()[2:] == ["·", "6.0!", "1.0!", "6.0!", "·", "13.0", "3"]


def test_two_months_at_200_columns_roll_up_per_week(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("analyze", "--from", "2026-10-01", "--to", "2026-11-30")
    assert result.code == 0, result.err
    assert_fits(result.out, 200)
    lines = result.out.splitlines()
    rows = lines[next(i for i, li in enumerate(lines) if li.startswith(MAX)) :]
    rows = rows[: next(i for i, li in enumerate(rows) if " all " in li)]
    labels = [re.search(r"\d\d [A-Z][a-z]{2}", li)[0] for li in rows if li.strip()]  # type: ignore[index]
    assert labels == [
        *("28 Sep", "05 Oct", "12 Oct", "19 Oct", "26 Oct"),
        *("02 Nov", "09 Nov", "16 Nov", "23 Nov", "30 Nov"),
    ]
    total = next(li for li in lines if " all " in li)
    assert figures(total)[:2] == ["14.0", "15.0"] and "3 overloaded days" in total


def test_a_long_name_wraps_between_words_at_80_columns(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = team / "steadyhand.yaml"
    config.write_text(config.read_text().replace(MAX, "Maximiliane Theodora Oberhuber-Lindqvist"))
    at(80, monkeypatch)
    result = run_cli("analyze", *TWO_WEEKS, "--by", "week")
    assert result.code == 0, result.err
    assert_fits(result.out, 80)
    lines = result.out.splitlines()
    i = next(i for i, li in enumerate(lines) if li.startswith("Maximiliane"))
    assert lines[i].startswith("Maximiliane Theodora ")
    assert lines[i + 1].startswith("Oberhuber-Lindqvist ")
    assert figures(lines[i]) == ["13.0", "14.0", "23.0", "1.0"]


def test_narrower_than_the_week_table_gives_lines_of_text(
    run_cli, team: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(44, monkeypatch)
    result = run_cli("analyze", *TWO_WEEKS, "--by", "week")
    assert result.code == 0, result.err
    assert_fits(result.out, 44)
    text = " ".join(result.out.split())
    assert (
        f"{MAX} week of 09 Nov: meetings 13.0 h, busy 14.0 h, focus 23.0 h, after hours "
        "1.0 h; Tue, Thu (meeting load, no focus); Wed (after hours)"
    ) in text


def test_demo_load_table_is_readable_at_80_columns(
    run_cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(80, monkeypatch)
    result = run_cli("demo")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    table = lines[
        next(i for i, li in enumerate(lines) if li.startswith("Meeting load")) : next(
            i for i, li in enumerate(lines) if li.startswith("Team Platform")
        )
    ]
    assert_fits("\n".join(table), 80)
    names = [li.split("  ")[0] for li in table if li[:1].isalpha() and "  " in li]
    assert names[1:] == ["Ana Lima", "Bo Berg", "Cy Chen", "Dee Park", "Eli Moss"]
    ana = next(li for li in table if li.startswith("Ana Lima"))
    assert figures(ana) == ["12.0", "12.0", "9.0", "0.0"] and ana.rstrip().endswith(
        "Thu (no focus)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "month"), "error: --by 'month' is not known"),
        (("--by", "week", "--format", "json"), "error: --by shapes the table, not --format json"),
    ],
)
def test_by_takes_day_or_week_for_the_table_only(
    run_cli, team: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("analyze", *TWO_WEEKS, *args)
    assert result.code == 2
    assert message in result.err
