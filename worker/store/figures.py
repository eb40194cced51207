"""The dashboard's queries: aggregates of answers (never a person's pulse score), the
experiments leaders record, and the magic sign-in links (a digest of each, never the token).

What the dashboard may learn from a pulse is who answered a question in a period (so the
privacy rule can compare groups, :mod:`worker.core.privacy`) and how many gave each score
(counted in SQL): never who gave which score. Shared comments come without a name.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, func, insert, or_, select, update

from worker.store.tables import _chunks, _ts, answers, experiments, sign_ins

#: The most people bound in one ``IN (...)`` (SQLite takes 32,766 values, PostgreSQL more).
_BATCH = 900


@dataclass(frozen=True, slots=True)
class PulseCounts:
    """One pulse question of one period over a group: who answered (not what) and how many
    gave each score."""

    question: str
    period: str
    respondents: frozenset[str]
    histogram: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.histogram.values())

    @property
    def mean(self) -> float | None:
        total = self.total
        return sum(s * n for s, n in self.histogram.items()) / total if total else None


@dataclass(frozen=True, slots=True)
class Experiment:
    id: int
    team: str
    name: str
    start: str  # an ISO date
    figures: tuple[str, ...]


def _members(column: ColumnElement[str], people: Collection[str]) -> ColumnElement[bool]:
    """``column IN (people)``, in batches joined by OR (no statement binds too many)."""
    wanted = sorted({p.lower() for p in people})
    if not wanted:
        return column.is_(None)  # matches nothing: a person is never NULL
    return or_(*(column.in_(list(chunk)) for chunk in _chunks(wanted, _BATCH)))


class FigureQueries:
    """The dashboard part of :class:`worker.store.Store`."""

    engine: Engine

    # -- pulse -------------------------------------------------------------------------
    def pulse_counts(self, people: Collection[str], first: str, last: str) -> list[PulseCounts]:
        """Per pulse question and period (ISO weeks ``first``..``last``) among ``people``:
        who answered and the histogram of scores (``GROUP BY score``)."""
        a = answers.c
        where = and_(
            a.program == "pulse",
            a.period >= first,
            a.period <= last,
            a.score.is_not(None),
            ~a.question.contains("."),
            _members(a.person, people),
        )
        who: dict[tuple[str, str], set[str]] = {}
        counts: dict[tuple[str, str], dict[int, int]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(a.period, a.question, a.person).where(where)):
                who.setdefault((r.question, r.period), set()).add(r.person)
            grouped = (
                select(a.period, a.question, a.score, func.count().label("n"))
                .where(where)
                .group_by(a.period, a.question, a.score)
            )
            for r in conn.execute(grouped):
                counts.setdefault((r.question, r.period), {})[int(r.score)] = int(r.n)
        return [
            PulseCounts(q, p, frozenset(who[(q, p)]), counts.get((q, p), {}))
            for q, p in sorted(who, key=lambda k: (k[1], k[0]))
        ]

    def shared_comments(
        self, people: Collection[str], first: str, last: str
    ) -> list[tuple[str, str, str]]:
        """``(question, period, text)`` of the pulse comments of periods ``first``..``last``
        among ``people`` whose writers ticked "share my comment" (``<id>.share`` = 1): no
        name, sorted by question, period and text (not by who wrote them)."""
        c, s = answers.alias(), answers.alias()
        query = (
            select(c.c.question, c.c.period, c.c.text)
            .join(
                s,
                and_(
                    s.c.person == c.c.person,
                    s.c.program == c.c.program,
                    s.c.period == c.c.period,
                    s.c.question == func.replace(c.c.question, ".comment", ".share"),
                ),
            )
            .where(
                c.c.program == "pulse",
                c.c.period >= first,
                c.c.period <= last,
                c.c.question.like("%.comment"),
                c.c.text.is_not(None),
                s.c.score == 1,
                _members(c.c.person, people),
            )
        )
        with self.engine.connect() as conn:
            rows = [(r.question[: -len(".comment")], r.period, r.text) for r in conn.execute(query)]
        return sorted(rows)

    # -- check-ins and partners ----------------------------------------------------------
    def blockers_by_day(self, people: Collection[str], first: str, last: str) -> dict[str, int]:
        """How many check-in blockers ``people`` shared with their leader (or team) per day
        ``first``..``last`` (ISO dates); a check-in without a ``share`` answer is shared
        with the leader."""
        b, s = answers.alias(), answers.alias()
        query = (
            select(b.c.period, func.count().label("n"))
            .select_from(b)
            .outerjoin(
                s,
                and_(
                    s.c.person == b.c.person,
                    s.c.program == b.c.program,
                    s.c.period == b.c.period,
                    s.c.question == "share",
                ),
            )
            .where(
                b.c.program == "checkin",
                b.c.question == "blocker",
                b.c.period >= first,
                b.c.period <= last,
                b.c.text.is_not(None),
                or_(s.c.text.is_(None), s.c.text.in_(["leader", "team"])),
                _members(b.c.person, people),
            )
            .group_by(b.c.period)
        )
        with self.engine.connect() as conn:
            return {r.period: int(r.n) for r in conn.execute(query)}

    def commitments_done_by_day(
        self, people: Collection[str], first: str, last: str
    ) -> dict[str, int]:
        """How many partner commitments of ``people`` are marked done, per the check-in day
        they came from (``first``..``last``)."""
        a = answers.c
        query = (
            select(a.period, func.count().label("n"))
            .where(
                a.program == "partners",
                a.question.like("done:%"),
                a.score == 1,
                a.period >= first,
                a.period <= last,
                _members(a.person, people),
            )
            .group_by(a.period)
        )
        with self.engine.connect() as conn:
            return {r.period: int(r.n) for r in conn.execute(query)}

    # -- experiments ---------------------------------------------------------------------
    def add_experiment(
        self,
        team: str,
        name: str,
        start: str,
        figures: Collection[str],
        created_by: str,
        now: datetime,
    ) -> int:
        """Record an experiment of ``team``; its id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(experiments).values(
                    team=team,
                    name=name,
                    start=start,
                    figures=",".join(figures),
                    created_by=created_by.lower(),
                    created_ts=_ts(now),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def experiments_of(self, teams: Collection[str]) -> list[Experiment]:
        """The experiments of ``teams``, by start date then id."""
        e = experiments.c
        query = select(experiments).where(e.team.in_(sorted(teams))).order_by(e.start, e.id)
        with self.engine.connect() as conn:
            return [
                Experiment(
                    r.id,
                    r.team,
                    r.name,
                    r.start,
                    tuple(f for f in r.figures.split(",") if f),
                )
                for r in conn.execute(query)
            ]

    # -- sign-in links -------------------------------------------------------------------
    def add_sign_in(self, digest: str, email: str, now: datetime) -> None:
        """Note a sign-in link made for ``email`` (``digest``: sha256 of its token)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(sign_ins).values(digest=digest, email=email.lower(), created_ts=_ts(now))
            )

    def use_sign_in(self, digest: str, now: datetime) -> str | None:
        """Mark the link of ``digest`` used; its email, or None when it is unknown or was
        used already (one UPDATE: two uses at once cannot both succeed)."""
        s = sign_ins.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(sign_ins)
                .where(s.digest == digest, s.used_ts.is_(None))
                .values(used_ts=_ts(now))
            ).rowcount
            if not done:
                return None
            return str(conn.execute(select(s.email).where(s.digest == digest)).scalar_one())

    def count_sign_ins(self, email: str, since: datetime) -> int:
        """How many sign-in links were made for ``email`` since ``since``."""
        s = sign_ins.c
        query = (
            select(func.count())
            .select_from(sign_ins)
            .where(s.email == email.lower(), s.created_ts >= _ts(since))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
