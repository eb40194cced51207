"""Inline SVG charts of the dashboard: the geometry of a line of weekly values, drawn by
the template with presentation attributes only (no script, no inline style: the pages'
Content-Security-Policy allows neither)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 28


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    label: str  # the week and the value, for the point's <title>


@dataclass(frozen=True, slots=True)
class Mark:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    unit: str
    width: int
    height: int
    points: tuple[Point, ...]
    polyline: str
    marks: tuple[Mark, ...]
    ticks: tuple[tuple[float, str], ...]  # (y, label) of the value axis
    weeks: tuple[tuple[float, str, str], ...]  # (x, label, text-anchor): first, middle, last
    baseline: float


def _x(i: int, n: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return round(LEFT + (span * i / (n - 1) if n > 1 else span / 2), 1)


def line(
    title: str,
    unit: str,
    weeks: Sequence[str],
    values: Sequence[float | None],
    marks: Sequence[tuple[str, str]] = (),
    top: float | None = None,
) -> Chart:
    """A chart of ``values`` (None: no point that week) over ``weeks``; ``marks`` are
    ``(week, label)`` of experiments, drawn as vertical lines at their week."""
    n = len(weeks)
    known = [v for v in values if v is not None]
    high = top if top is not None else max([*known, 1.0]) * 1.15
    span = HEIGHT - TOP - BOTTOM

    def y(v: float) -> float:
        return round(TOP + span * (1 - v / high), 1)

    points = tuple(
        Point(_x(i, n), y(v), f"{weeks[i]}: {v:g} {unit}".strip())
        for i, v in enumerate(values)
        if v is not None
    )
    index = {w: i for i, w in enumerate(weeks)}
    drawn = tuple(Mark(_x(index[w], n), label) for w, label in marks if w in index)
    ticks = tuple((y(v), f"{v:g}") for v in (0.0, round(high / 2, 1), round(high, 1)))
    shown = sorted({0, n // 2, n - 1}) if n else []
    return Chart(
        title,
        unit,
        WIDTH,
        HEIGHT,
        points,
        " ".join(f"{p.x},{p.y}" for p in points),
        drawn,
        ticks,
        tuple(
            (_x(i, n), weeks[i], "start" if i == 0 else "end" if i == n - 1 else "middle")
            for i in shown
        ),
        float(HEIGHT - BOTTOM),
    )
