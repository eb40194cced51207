"""The one rule deciding which aggregate figures may be shown (docs/privacy.md).

Every view that shows a figure computed from people's answers (the dashboard, the HTML
report) passes all the figures it would show for a question and period through
:func:`shown`, together, and shows only those it returns as shown:

* a figure is shown only when at least ``min_size`` distinct people are behind it;
* of two figures of the same question and period, both shown, the sets of people behind
  them either are the same or differ by at least ``min_size`` people (counted both ways):
  otherwise the one taken second is withheld, since subtracting one from the other would
  give away the answers of the few people who make the difference.

Figures are taken in a fixed order (more people first, then by key), so the same figures
always give the same decisions, whatever order they came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DIFFERENCING", "Decision", "Figure", "shown", "too_few"]

#: Why a figure beside another one is withheld.
DIFFERENCING = "Withheld: beside another figure it would give away someone's answer"


def too_few(min_size: int) -> str:
    """Why a figure of too few people is withheld."""
    return f"Not enough answers to show (n < {min_size})"


@dataclass(frozen=True, slots=True)
class Figure:
    """What a figure is about: its key (unique in one call, e.g. ``team:Platform``), the
    question and period, and who is behind it (who answered, never what)."""

    key: str
    question: str
    period: str
    respondents: frozenset[str]


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether ``figure`` may be shown; ``reason`` says why not (empty when shown)."""

    figure: Figure
    shown: bool
    reason: str = ""


def _order(figure: Figure) -> tuple[int, str, tuple[str, ...]]:
    return (-len(figure.respondents), figure.key, tuple(sorted(figure.respondents)))


def shown(figures: Sequence[Figure], min_size: int) -> list[Decision]:
    """The decision for each of ``figures``, in their order (see the module's rule)."""
    if min_size < 1:
        raise ValueError("min_size must be at least 1")
    decided: dict[int, Decision] = {}
    kept: dict[tuple[str, str], list[frozenset[str]]] = {}
    order = sorted(range(len(figures)), key=lambda i: _order(figures[i]))
    for i in order:
        figure = figures[i]
        group = kept.setdefault((figure.question, figure.period), [])
        if len(figure.respondents) < min_size:
            decided[i] = Decision(figure, False, too_few(min_size))
        elif any(0 < len(figure.respondents ^ other) < min_size for other in group):
            decided[i] = Decision(figure, False, DIFFERENCING)
        else:
            group.append(figure.respondents)
            decided[i] = Decision(figure, True)
    return [decided[i] for i in range(len(figures))]


def decided(figures: Sequence[Figure], min_size: int) -> dict[tuple[str, str, str], Decision]:
    """:func:`shown`'s decisions by each figure's ``(key, question, period)``."""
    return {(d.figure.key, d.figure.question, d.figure.period): d for d in shown(figures, min_size)}
