"""What people tell steadyhand through the web service: answers (a reflection's score
and notes, later check-ins and pulse), and their preferences (a pause of every email;
per-program opt-outs are the ``unsubscribes`` of :mod:`.ledger`).

Answers are a person's own: the only reads here are by the person (``answers_of``) and
by counts. Free text is never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, delete, func, insert, select, update

from worker.store.tables import _dt, _ts, answers, preferences, unsubscribes


@dataclass(frozen=True, slots=True)
class Answer:
    person: str
    program: str
    period: str
    question: str
    score: int | None
    text: str | None
    created: datetime
    updated: datetime


#: One question's value: a score, a text, or None (the answer is taken back).
Value = int | str | None


def _stored(value: Value) -> tuple[int | None, str | None] | None:
    """``(score, text)`` as stored for ``value``; None for no answer (None or blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return (value, None) if isinstance(value, int) else (None, value)


class AnswerQueries:
    """The answers part of :class:`worker.store.Store`."""

    engine: Engine

    def record_answers(
        self,
        person: str,
        program: str,
        period: str,
        values: Mapping[str, Value],
        now: datetime,
    ) -> bool:
        """Set each question of ``values`` for ``person``'s ``program`` and ``period`` in
        one transaction: an int is a score, a str a text; None or a blank text deletes the
        answer. True when anything changed (the same answers again change nothing)."""
        person = person.lower()
        changed = False
        with self.engine.begin() as conn:
            where = (
                (answers.c.person == person)
                & (answers.c.program == program)
                & (answers.c.period == period)
            )
            have = {
                r.question: (r.score, r.text)
                for r in conn.execute(
                    select(answers.c.question, answers.c.score, answers.c.text).where(where)
                )
            }
            for question, value in values.items():
                new = _stored(value)
                old = have.get(question)
                if new == old:
                    continue
                changed = True
                if new is None:
                    conn.execute(delete(answers).where(where & (answers.c.question == question)))
                elif old is None:
                    conn.execute(
                        insert(answers).values(
                            person=person,
                            program=program,
                            period=period,
                            question=question,
                            score=new[0],
                            text=new[1],
                            created_ts=_ts(now),
                            updated_ts=_ts(now),
                        )
                    )
                else:
                    conn.execute(
                        update(answers)
                        .where(where & (answers.c.question == question))
                        .values(score=new[0], text=new[1], updated_ts=_ts(now))
                    )
        return changed

    def answers_of(
        self, person: str, program: str | None = None, periods: tuple[str, str] | None = None
    ) -> list[Answer]:
        """``person``'s own answers (of ``program``; with ``periods`` = (first, last), the
        periods between them, compared as text: ISO dates sort as days do), oldest first."""
        query = select(answers).where(answers.c.person == person.lower())
        if program is not None:
            query = query.where(answers.c.program == program)
        if periods is not None:
            query = query.where(answers.c.period >= periods[0], answers.c.period <= periods[1])
        query = query.order_by(answers.c.program, answers.c.period, answers.c.question)
        with self.engine.connect() as conn:
            return [
                Answer(
                    r.person,
                    r.program,
                    r.period,
                    r.question,
                    r.score,
                    r.text,
                    _dt(r.created_ts),
                    _dt(r.updated_ts),
                )
                for r in conn.execute(query)
            ]

    def count_answers(self, person: str) -> int:
        """How many answers ``person`` has stored (the preferences page says so)."""
        query = select(func.count()).select_from(answers).where(answers.c.person == person.lower())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def delete_answers(
        self, person: str, program: str | None = None, period: str | None = None
    ) -> int:
        """Delete ``person``'s answers (of ``program``, of ``period``); how many rows went."""
        query = delete(answers).where(answers.c.person == person.lower())
        if program is not None:
            query = query.where(answers.c.program == program)
        if period is not None:
            query = query.where(answers.c.period == period)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    def purge_answers(self, older_than: datetime) -> int:
        """Delete every answer last changed before ``older_than`` (``privacy.keep_answers``)."""
        query = delete(answers).where(answers.c.updated_ts < _ts(older_than))
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    # -- preferences -------------------------------------------------------------------
    def set_pause(self, person: str, until: date | None, now: datetime) -> None:
        """Pause every email to ``person`` up to and including ``until`` (None: resume)."""
        person = person.lower()
        value = until.isoformat() if until else None
        with self.engine.begin() as conn:
            done = conn.execute(
                update(preferences)
                .where(preferences.c.person == person)
                .values(paused_until=value, updated_ts=_ts(now))
            ).rowcount
            if not done:
                conn.execute(
                    insert(preferences).values(
                        person=person, paused_until=value, updated_ts=_ts(now)
                    )
                )

    def paused_until(self, person: str) -> date | None:
        """The last day of ``person``'s pause, or None."""
        query = select(preferences.c.paused_until).where(preferences.c.person == person.lower())
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return date.fromisoformat(value) if value else None

    def is_paused(self, person: str, day: date) -> bool:
        """Whether ``day`` (in ``person``'s zone) is inside their pause."""
        until = self.paused_until(person)
        return until is not None and day <= until

    def unsubscribed_from(self, person: str) -> set[str]:
        """The programs ``person`` opted out of (``*``: every one)."""
        query = select(unsubscribes.c.program).where(unsubscribes.c.email == person.lower())
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def resubscribe(self, person: str, program: str) -> bool:
        """Take back an opt-out of ``program`` (``*``: the opt-out of all); False if none."""
        query = delete(unsubscribes).where(
            unsubscribes.c.email == person.lower(), unsubscribes.c.program == program
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(query).rowcount)
