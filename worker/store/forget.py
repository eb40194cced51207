"""Erasing a person (``steadyhand forget EMAIL``): everything stored about them goes, in one
transaction, except what keeps steadyhand from writing to them again or twice.

Deleted: the events, sync state and read notes of the calendars they own, the records of
the blocks written on them, their answers and pause, and the audit entries about them.
Emptied: the outbox rows to them keep only their idempotency key (the record that an
email was decided, so it is never decided and sent again) and how it ended; what the
email said goes, and a row still to be carried out is done without it (``forgotten``).
The emails to other people that named them are emptied too. Kept: their opt-outs, so
that no email to them starts again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from worker.core.model import UTC
from worker.store.tables import (
    _ts,
    answers,
    audit_log,
    blocks,
    events,
    experiments,
    outbox,
    preferences,
    read_notes,
    sign_ins,
    sync_notes,
    sync_state,
    unsubscribes,
)

#: The result of an outbox row that was still to go when its recipient was forgotten.
FORGOTTEN = "forgotten"
_EMPTY = "{}"


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What :meth:`ForgetQueries.forget` deleted, emptied and kept, in counts."""

    person: str
    events: int = 0  # events of the calendars they own
    calendars: int = 0  # those calendars' sync state
    notes: int = 0  # what those calendars' last reads noted
    blocks: int = 0  # records of the blocks steadyhand wrote on their calendars
    answers: int = 0
    preferences: int = 0  # their pause
    sign_ins: int = 0  # the dashboard's sign-in links sent to them
    experiments: int = 0  # experiments they recorded: kept for their team, without their name
    audit: int = 0  # audit entries about them
    emails: int = 0  # outbox rows to them emptied now (what the email said)
    cancelled: int = 0  # of those, still to go: done without sending (``forgotten``)
    others: int = 0  # emails sent to other people that named them: emptied
    keys: int = 0  # kept: the outbox rows to them, each its idempotency key and outcome
    opt_outs: tuple[str, ...] = ()  # kept: the programs they opted out of ("*": all)
    attended: int = 0  # kept: events on other people's calendars that list them

    @property
    def deleted(self) -> int:
        return (
            self.events
            + self.calendars
            + self.notes
            + self.blocks
            + self.answers
            + self.preferences
            + self.audit
        )


class ForgetQueries:
    """The forgetting part of :class:`worker.store.Store`."""

    engine: Engine

    def forget(
        self, person: str, now: datetime | None = None, dry_run: bool = False
    ) -> ForgetReport:
        """Delete everything stored about ``person`` but their opt-outs and the keys of
        the emails decided for them (see the module docs), in one transaction; with
        ``dry_run`` the same counts, and nothing changed."""
        person = person.strip().lower()
        moment = now or datetime.now(UTC)
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                report = _forget(conn, person, moment)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        return report


def _count(conn: Connection, statement: Any) -> int:
    return int(conn.execute(statement).rowcount or 0)


def _forget(conn: Connection, person: str, now: datetime) -> ForgetReport:
    keys = list(
        conn.execute(select(sync_state.c.calendar_key).where(sync_state.c.owner == person))
        .scalars()
        .all()
    )
    of_theirs = (events.c.owner == person) | events.c.calendar_key.in_(keys)
    counts: dict[str, Any] = {
        "events": _count(conn, delete(events).where(of_theirs)),
        "notes": _count(conn, delete(sync_notes).where(sync_notes.c.calendar_key.in_(keys)))
        + _count(conn, delete(read_notes).where(read_notes.c.calendar_key.in_(keys))),
        "calendars": _count(conn, delete(sync_state).where(sync_state.c.calendar_key.in_(keys))),
        "blocks": _count(conn, delete(blocks).where(blocks.c.owner == person)),
        "answers": _count(conn, delete(answers).where(answers.c.person == person)),
        "preferences": _count(conn, delete(preferences).where(preferences.c.person == person)),
        "sign_ins": _count(conn, delete(sign_ins).where(func.lower(sign_ins.c.email) == person)),
        "experiments": _count(
            conn,
            update(experiments)
            .where(func.lower(experiments.c.created_by) == person)
            .values(created_by=""),
        ),
    }
    about = (func.lower(audit_log.c.person) == person) | func.lower(audit_log.c.subject).contains(
        person, autoescape=True
    )
    counts["audit"] = _count(conn, delete(audit_log).where(about))
    to_them = func.lower(outbox.c.recipient) == person
    counts["cancelled"] = _count(
        conn,
        update(outbox)
        .where(to_them, outbox.c.status.in_(("pending", "claimed")))
        .values(status="done", result=FORGOTTEN, done_ts=_ts(now), lease_until_ts=None),
    )
    said = (outbox.c.payload != _EMPTY) | outbox.c.last_error.is_not(None)
    counts["emails"] = _count(
        conn, update(outbox).where(to_them, said).values(payload=_EMPTY, last_error=None)
    )
    counts["keys"] = int(
        conn.execute(select(func.count()).select_from(outbox).where(to_them)).scalar_one()
    )
    # Sent (or given up) emails to other people that named them: what they said goes too.
    # One still to go keeps its words: it is the other person's email.
    named = (
        ~to_them
        & outbox.c.status.in_(("done", "failed"))
        & (outbox.c.payload != _EMPTY)
        & func.lower(outbox.c.payload).contains(person, autoescape=True)
    )
    counts["others"] = _count(conn, update(outbox).where(named).values(payload=_EMPTY))
    opt_outs = tuple(
        sorted(
            conn.execute(
                select(unsubscribes.c.program).where(unsubscribes.c.email == person)
            ).scalars()
        )
    )
    listed = func.lower(events.c.attendees).contains(f'"{person}"', autoescape=True)
    counts["attended"] = int(
        conn.execute(select(func.count()).select_from(events).where(listed)).scalar_one()
    )
    report = ForgetReport(person, opt_outs=opt_outs, **counts)
    detail = {k: v for k, v in counts.items() if v}  # counts only: the person is not named
    conn.execute(
        insert(audit_log).values(
            at_ts=_ts(now),
            actor="admin",
            person=None,
            action="forgotten",
            subject=None,
            detail=json.dumps(detail, sort_keys=True),
        )
    )
    return report
