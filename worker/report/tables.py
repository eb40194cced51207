"""The load table of ``steadyhand analyze``, in a layout that fits the terminal.

Two layouts (``--by``), both drawn from the report dict of :func:`worker.report.build`:

- ``week``: a row per person and ISO week (Monday to Sunday) with the week's meeting,
  busy, focus and after-hours hours, and its overloaded days named with their reasons
  ("Tue, Thu (meeting load, no focus)"). The sums are :func:`worker.core.analysis.roll_up`'s,
  the week of docs/metrics.md.
- ``day``: meeting hours per person and local day, overloaded days marked ``!`` and their
  reasons listed below. When a row of all the days does not fit the width, each person
  gets a block of their own with a row per week and a column per weekday.

Without ``--by``, :func:`choose` takes ``day`` for up to two weeks whose row of days fits
the width, and ``week`` otherwise (a longer row is no longer read at a glance). Nothing
is ever cut to fit: columns are sized to their content, and a layout that would not fit
gives way to one that does (the week table wraps its last column and, if need be, the
names between words; narrower than about 65 columns it becomes lines of text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from worker.core import analysis, wording
from worker.core.wording import plural

#: The layouts of ``--by``.
LAYOUTS = ("day", "week")
#: The longest period the default layout shows by day.
DAY_LAYOUT_DAYS = 14

#: The reasons' words (kept here for callers; :mod:`worker.core.wording` holds them).
REASON_WORDS = wording.REASON_LABELS
REASON_TEXT = wording.REASON_FIGURES
#: Each reason of an overloaded day with the figure behind it.
reason_words = wording.reason_words

#: The narrowest the "overloaded days" column of the week table may wrap to.
_MIN_DAYS_COLUMN = 20
_DAY_FIELDS = tuple(f.name for f in dataclasses.fields(analysis.DayMetrics))


@dataclass(frozen=True)
class LoadTable:
    """The table of ``report`` in the layout ``by`` (``None``: :func:`choose` picks one
    for the width it is drawn at)."""

    report: Mapping[str, Any]
    names: Mapping[str, str]
    by: str | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        by = self.by or choose(self.report, self.names, console, options)
        if by == "week":
            grid = week_table(self.report, self.names)
            if fit_week_table(console, options, grid):
                yield Text("Hours per person and ISO week (Monday to Sunday)", style="bold")
                yield grid
                yield Text(
                    "meet: meetings, busy: busy events, focus: focus time, after: meetings "
                    "outside working hours (docs/metrics.md)",
                    style="dim",
                )
            else:
                yield from week_lines(self.report, self.names)
            return
        yield Text("Meeting hours per person and local day", style="bold")
        shown = shown_days(self.report)
        flat = day_table(self.report, self.names, shown)
        if _natural_width(console, options, flat) <= width:
            yield flat
        else:
            yield from day_blocks(self.report, self.names, shown)
        lines = overloaded_lines(self.report, self.names)
        if lines:
            yield Text("Overloaded days (! above), and why", style="bold")
            yield from (_indent(line) for line in lines)


def choose(
    report: Mapping[str, Any],
    names: Mapping[str, str],
    console: Console,
    options: ConsoleOptions,
) -> str:
    """``day`` for a period of up to :data:`DAY_LAYOUT_DAYS` days whose row of days fits
    ``options.max_width`` (at 80 columns one week does, at 200 two), ``week`` otherwise."""
    if len(period_days(report)) > DAY_LAYOUT_DAYS:
        return "week"
    flat = day_table(report, names, shown_days(report))
    return "day" if _natural_width(console, options, flat) <= options.max_width else "week"


# -- shared ----------------------------------------------------------------------------


def period_days(report: Mapping[str, Any]) -> list[date]:
    start = date.fromisoformat(report["period"]["start"])
    end = date.fromisoformat(report["period"]["end"])
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def shown_days(report: Mapping[str, Any]) -> list[date]:
    """The days of the period a day layout shows: Monday to Friday, and a weekend day
    when anyone has a meeting on it."""
    busy = {d["date"] for p in report["people"] for d in p["days"] if d["meeting_minutes"] > 0}
    return [d for d in period_days(report) if d.weekday() < 5 or d.isoformat() in busy]


def _name(names: Mapping[str, str], person: Mapping[str, Any]) -> str:
    email: str = person["email"]
    return names.get(email, email)


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f}"


def _natural_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    """How wide ``table`` is with every column as wide as its content."""
    return Measurement.get(console, options.update_width(10_000), table).maximum


def _indent(renderable: RenderableType, below: int = 0) -> Padding:
    """``renderable`` two spaces in (no trailing spaces to the full width)."""
    return Padding(renderable, (0, 0, below, 2), expand=False)


def _grid() -> Table:
    """A table without side borders: a rule under the header, two spaces between columns."""
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))


# -- by day ----------------------------------------------------------------------------


def _day_cell(day: Mapping[str, Any]) -> Text:
    if day["away"]:
        return Text("away", style="dim")
    text = "·" if not day["meeting_minutes"] else _hours(day["meeting_minutes"])
    if day["overloaded"]:
        return Text(f"{text}!", style="bold red")
    return Text(f"{text} ")  # the space where "!" goes keeps the figures in line


def day_table(report: Mapping[str, Any], names: Mapping[str, str], shown: Sequence[date]) -> Table:
    """A row per person, a column per shown day, then the period's total and how many
    of its days were overloaded."""
    grid = _grid()
    grid.add_column("person", no_wrap=True)
    for d in shown:
        grid.add_column(f"{d:%a}\n{d.day:>2}", justify="right", no_wrap=True, min_width=4)
    grid.add_column("total\nh", justify="right", no_wrap=True)
    grid.add_column("over-\nloaded", justify="right", no_wrap=True)
    for person in report["people"]:
        by_date = {d["date"]: d for d in person["days"]}
        week = analysis.roll_up([_metrics(d) for d in person["days"]])
        grid.add_row(
            _person_cell(names, person),
            *(_day_cell(by_date[d.isoformat()]) for d in shown),
            _hours(week.meeting_minutes),
            str(week.overloaded_days),
        )
    return grid


def _person_cell(names: Mapping[str, str], person: Mapping[str, Any]) -> Text:
    cell = Text(_name(names, person))
    cell.append("\n" + person["timezone"], style="dim")
    return cell


def day_blocks(
    report: Mapping[str, Any], names: Mapping[str, str], shown: Sequence[date]
) -> list[RenderableType]:
    """For each person, a heading and a grid with a row per week and a column per
    weekday: the day layout when a row of all the days is too wide."""
    weekdays = sorted({d.weekday() for d in shown})
    shown_set = set(shown)
    out: list[RenderableType] = []
    for person in report["people"]:
        by_date = {d["date"]: d for d in person["days"]}
        total = analysis.roll_up([_metrics(d) for d in person["days"]])
        heading = Text(_name(names, person), style="bold")
        heading.append(
            f"  {person['timezone']}: {_hours(total.meeting_minutes)} h of meetings, "
            f"{plural(total.overloaded_days, 'overloaded day')}"
        )
        grid = _grid()
        grid.add_column("week of", no_wrap=True)
        for wd in weekdays:
            grid.add_column(_WEEKDAYS[wd], justify="right", no_wrap=True, min_width=4)
        grid.add_column("total", justify="right", no_wrap=True, min_width=5)
        for row in week_rows(person):
            monday = row.first - timedelta(days=row.first.weekday())
            cells: list[Text] = []
            for wd in weekdays:
                d = monday + timedelta(days=wd)
                day = by_date.get(d.isoformat())
                cells.append(_day_cell(day) if day and d in shown_set else Text(""))
            grid.add_row(row.label, *cells, _hours(row.rolled.meeting_minutes))
        out.extend([heading, _indent(grid, below=1)])
    return out


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def overloaded_lines(report: Mapping[str, Any], names: Mapping[str, str]) -> list[Text]:
    """Each overloaded day and its reasons with their figures: "Ana Lima, Thu 05 Nov:
    meeting_load (83 % of working time in meetings), …"."""
    lines: list[Text] = []
    for person in report["people"]:
        for day in person["days"]:
            if day["overloaded"]:
                d = date.fromisoformat(day["date"])
                text = f"{_name(names, person)}, {d:%a %d %b}: " + ", ".join(reason_words(day))
                lines.append(Text(text))
    return lines


# -- by week ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekRow:
    """One person's ISO week (the part of it in the period)."""

    first: date
    rolled: analysis.WeekMetrics

    @property
    def label(self) -> str:
        """The week's Monday, "26 Oct" (the week may begin or end outside the period)."""
        return f"{self.first - timedelta(days=self.first.weekday()):%d %b}"

    def overloaded(self) -> str:
        """The overloaded days and their reasons, days with the same reasons together:
        "Tue, Thu (meeting load, no focus); Fri (after hours)"."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for day in self.rolled.days:
            if day.overloaded:
                groups.setdefault(day.reasons, []).append(f"{day.date:%a}")
        parts = [
            f"{', '.join(days)} ({wording.reason_labels(reasons)})"
            for reasons, days in groups.items()
        ]
        away = [f"{day.date:%a}" for day in self.rolled.days if day.away]
        if away:
            parts.append("away " + ", ".join(away))
        return "; ".join(parts)


def week_rows(person: Mapping[str, Any]) -> list[WeekRow]:
    """A person's days rolled up per ISO week, in order."""
    days = sorted((_metrics(d) for d in person["days"]), key=lambda m: m.date)
    return [WeekRow(w[0].date, analysis.roll_up(w)) for w in _week_runs(days)]


def _week_runs(days: Iterable[analysis.DayMetrics]) -> list[list[analysis.DayMetrics]]:
    """``days`` (in order) cut into ISO weeks."""
    out: list[list[analysis.DayMetrics]] = []
    for d in days:
        if out and out[-1][0].date.isocalendar()[:2] == d.date.isocalendar()[:2]:
            out[-1].append(d)
        else:
            out.append([d])
    return out


def _metrics(day: Mapping[str, Any]) -> analysis.DayMetrics:
    """A day of the report dict back as :class:`~worker.core.analysis.DayMetrics`."""
    fields = {name: day[name] for name in _DAY_FIELDS}
    fields["date"] = date.fromisoformat(day["date"])
    fields["reasons"] = tuple(day["reasons"])
    return analysis.DayMetrics(**fields)


def week_table(report: Mapping[str, Any], names: Mapping[str, str]) -> Table:
    """A row per person and week; with more than one week, a total row per person."""
    grid = _grid()
    grid.add_column("person", no_wrap=True)  # fit_week_table may let names wrap
    grid.add_column("week of", no_wrap=True)
    for header in ("meet", "busy", "focus", "after"):
        grid.add_column(header, justify="right", no_wrap=True)
    grid.add_column("overloaded days", overflow="fold")
    for person in report["people"]:
        rows = week_rows(person)
        for i, row in enumerate(rows):
            grid.add_row(
                Text(_name(names, person) if i == 0 else ""),
                row.label,
                *_week_figures(row.rolled),
                Text(row.overloaded(), style="red"),
                end_section=len(rows) == 1,
            )
        if len(rows) > 1:
            total = analysis.roll_up([d for row in rows for d in row.rolled.days])
            grid.add_row(
                "",
                Text("all", style="bold"),
                *(Text(f, style="bold") for f in _week_figures(total)),
                Text(plural(total.overloaded_days, "overloaded day"), style="bold"),
                end_section=True,
            )
    return grid


def _week_figures(week: analysis.WeekMetrics) -> tuple[str, str, str, str]:
    return (
        _hours(week.meeting_minutes),
        _hours(week.busy_minutes),
        _hours(week.focus_minutes),
        _hours(week.after_hours_meeting_minutes),
    )


def fit_week_table(console: Console, options: ConsoleOptions, grid: Table) -> bool:
    """Whether the week table ``grid`` fits ``options.max_width`` with its last column
    wrapped to no less than :data:`_MIN_DAYS_COLUMN` and, if need be, its names wrapped
    between words (never inside one); the width of the names is set for that."""
    wide = options.update_width(10_000)
    need = _natural_width(console, options, grid)
    last = [Measurement.get(console, wide, c).maximum for c in grid.columns[-1].cells]
    need -= max(0, max(last, default=0) - _MIN_DAYS_COLUMN)
    if need <= options.max_width:
        return True
    person = grid.columns[0]
    sizes = [Measurement.get(console, wide, c) for c in person.cells]
    natural = max((m.maximum for m in sizes), default=0)
    narrowest = max([len(str(person.header)), *(m.minimum for m in sizes)])
    if need - (natural - narrowest) > options.max_width:
        return False
    person.width = natural - (need - options.max_width)
    person.no_wrap = False
    return True


def week_lines(report: Mapping[str, Any], names: Mapping[str, str]) -> list[RenderableType]:
    """The week layout as lines of text, for a width the table does not fit."""
    out: list[RenderableType] = []
    for person in report["people"]:
        out.append(Text(_name(names, person), style="bold"))
        for row in week_rows(person):
            meet, busy, focus, after = _week_figures(row.rolled)
            line = (
                f"week of {row.label}: meetings {meet} h, busy {busy} h, "
                f"focus {focus} h, after hours {after} h"
            )
            overloaded = row.overloaded()
            out.append(_indent(Text(line + (f"; {overloaded}" if overloaded else ""))))
    return out
