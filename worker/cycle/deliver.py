"""Carrying out the outbox: claim a row, do it (send the email, or write the calendar
change), record the outcome; retries, backoff, and rows that fail for good.

Values an email needs that are known only when it goes out are filled in here, at the
send moment, and never stored (the outbox row holds what was decided):

* a follow-up's commitments, read from the 1:1's description;
* a reflection's words about the day it reflects on and the next working day, made
  from the reflected day and the send moment in the recipient's zone
  (:func:`worker.core.wording.reflection_at_send`); one more than a working day late
  (:func:`worker.core.schedule.too_late`) raises :class:`TooLate`: it is dropped, not sent;
* a bundle's parts, each filled as its own program; a part too late is left out (and
  audited), and the bundle is dropped only when no part is left.

A row of another kind than ``email`` is done by the work its planner registered in
:data:`WRITERS` (:mod:`worker.cycle.protect` registers ``calendar``), so this module
imports no planner and the planners import it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Describes
from connectors.secrets import KEY_ENV
from worker import mail, mail_links
from worker.config import Settings
from worker.core import schedule, wording
from worker.core.errors import PermanentError, SteadyhandError, TransientError
from worker.core.model import Person
from worker.cycle.runtime import Runtime
from worker.links import Links
from worker.programs import followup
from worker.store import OutboxRow

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 8
#: Who holds a claim: this host and process (see Store.release_dead_claims).
CLAIMER = f"{socket.gethostname()}:{os.getpid()}"

#: How a claimed row of a kind other than ``email`` is carried out: ``work(rt, row, now)``
#: does it and returns what was done. Filled by the module that plans such rows.
Work = Callable[[Runtime, OutboxRow, datetime], str]
WRITERS: dict[str, Work] = {}


@dataclass(frozen=True, slots=True)
class Delivery:
    row_id: int
    key: str
    outcome: str  # sent | written | unsubscribed | paused | dropped | skipped | retry | failed
    detail: str = ""


#: Outcomes of a row that is done with nothing sent: the recipient opted out or paused,
#: or a reflection was too late for its words to be true (``detail`` says why).
NOT_SENT = ("unsubscribed", "paused", "dropped")


def deliver(rt: Runtime, row_id: int, now: datetime) -> Delivery:
    """Claim outbox row ``row_id``, carry it out (send the email or write the calendar
    change), and record the outcome. Safe to call twice: a second claim finds it done.

    The outcome says what happened: ``sent``, ``written`` (a calendar change),
    ``unsubscribed``, ``paused`` or ``dropped`` (done, nothing sent: see :data:`NOT_SENT`),
    ``skipped`` (this call did nothing: not due, taken, or done), ``retry`` or ``failed``."""
    row = rt.store.claim(row_id, now, LEASE, CLAIMER)
    if row is None:
        return Delivery(row_id, "", "skipped", "not due, taken by another worker, or done")
    try:
        if row.kind == "email":
            outcome, detail = _send_email(rt, row, now)
        else:
            outcome, detail = "written", _writer(row.kind)(rt, row, now)
    except TransientError as exc:
        retry_at = None if row.attempts >= MAX_ATTEMPTS else now + _backoff(row.attempts, exc)
        rt.store.fail(row_id, str(exc), now, retry_at)
        logger.warning("row %s %s failed, retry at %s: %s", row_id, row.key, retry_at, exc)
        return Delivery(row_id, row.key, "retry" if retry_at else "failed", str(exc))
    except (PermanentError, SteadyhandError) as exc:
        rt.store.fail(row_id, str(exc), now, None)
        rt.store.audit(
            f"{row.kind}_failed",
            now,
            person=row.recipient,
            subject=row.key,
            detail={"error": str(exc)},
        )
        logger.error("row %s %s failed for good: %s", row_id, row.key, exc)
        return Delivery(row_id, row.key, "failed", str(exc))
    except Exception as exc:  # not ours (a template's OverflowError, a bug): this row only
        return _poison(rt, row, exc, now)
    # The stored result keeps its words: ``unsubscribed``, ``dropped: why``, or what was done.
    stored = {"unsubscribed": "unsubscribed", "dropped": f"dropped: {detail}"}.get(outcome, detail)
    rt.store.complete(row_id, stored, now)
    logger.debug("row %s %s done: %s", row_id, row.key, outcome)
    return Delivery(row_id, row.key, outcome, detail)


#: Exceptions that are not ours and will not pass by retrying: the row fails at once.
NOT_TRANSIENT = (ArithmeticError, LookupError, MemoryError, RecursionError, TypeError, ValueError)


def _poison(rt: Runtime, row: OutboxRow, exc: Exception, now: datetime) -> Delivery:
    """A row whose work raised an exception that is not ours: recorded as failed with the
    reason (at once when retrying cannot help, else after MAX_ATTEMPTS), never left claimed."""
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"[:300]
    give_up = isinstance(exc, NOT_TRANSIENT) or row.attempts >= MAX_ATTEMPTS
    retry_at = None if give_up else now + _backoff(row.attempts, TransientError(reason))
    try:
        rt.store.fail(row.id, reason, now, retry_at)
        if retry_at is None:
            rt.store.audit(
                f"{row.kind}_failed",
                now,
                person=row.recipient,
                subject=row.key,
                detail={"error": reason},
            )
    except Exception as store_exc:  # the store is down too: the lease expires, a sweep retries
        logger.error("row %s: could not record its failure: %s", row.id, store_exc)
    logger.error(
        "row %s %s failed (%s): %s",
        row.id,
        row.key,
        "for good" if give_up else f"retry at {retry_at}",
        reason,
    )
    logger.debug("row %s traceback", row.id, exc_info=exc)
    return Delivery(row.id, row.key, "failed" if give_up else "retry", reason)


def _send_email(rt: Runtime, row: OutboxRow, now: datetime) -> tuple[str, str]:
    """Send the row's email: ``("sent", what the transport said)``, or ``("unsubscribed",
    "unsubscribed")`` / ``("paused", "paused")`` (due on a day of the recipient's pause) /
    ``("dropped", why)`` when it is done without sending."""
    if rt.store.is_unsubscribed(row.recipient, row.program):
        rt.store.audit(
            "not_sent", now, person=row.recipient, subject=row.key, detail={"why": "unsubscribed"}
        )
        logger.debug("not sending %s: %s unsubscribed", row.key, row.recipient)
        return "unsubscribed", "unsubscribed"
    due_day = row.due.astimezone(rt.settings.person(row.recipient).tz).date()
    if rt.store.is_paused(row.recipient, due_day):
        rt.store.audit(
            "not_sent", now, person=row.recipient, subject=row.key, detail={"why": "paused"}
        )
        logger.debug("not sending %s: %s paused", row.key, row.recipient)
        return "paused", "paused"
    person = rt.settings.person(row.recipient)
    env = mail.environment(
        rt.settings.path(rt.settings.mail.templates) if rt.settings.mail.templates else None
    )
    try:
        filled = fill_at_send_time(rt, row.program, row.payload, now)
    except TooLate as late:  # its words could no longer be true: dropped, not failed
        rt.store.audit(
            "dropped", now, person=row.recipient, subject=row.key, detail={"why": str(late)}
        )
        logger.info("not sending %s: %s", row.key, late)
        return "dropped", str(late)
    _offer_shares(rt, person.email, row.program, row.period, filled, now)
    payload = email_links(rt, person, row, filled, now)
    link = payload["unsubscribe_url"]
    if row.program == "bundle":
        payload = mail.bundle_context(env, payload)
    subject, text, html = mail.render(env, row.program, payload)
    message = mail.build(
        sender=rt.settings.mail.from_,
        to=[mail.recipient(person.name, person.email)],
        cc=[mail.recipient(rt.settings.person(e).name, e) for e in payload.get("_cc", [])],
        subject=subject,
        text=text,
        html=html,
        key=row.key,
        program=row.program,
        sent_at=now,
        unsubscribe_url=link,
    )
    sent = rt.transport.send(message)
    logger.debug("sent %s via %s", row.key, rt.transport.name)
    return "sent", sent


def _offer_shares(
    rt: Runtime, email: str, program: str, period: str, payload: dict[str, Any], now: datetime
) -> None:
    """Keep, as ``email``'s own, the 1:1 commitments a follow-up offers them to share with
    their partner (``offered:N``): the page of its share link lists them from the store,
    so their words are never in a URL. A bundle's follow-up parts likewise."""
    if program == "bundle":
        for part in payload.get("parts", []):
            period_of = str(part.get("key", "")).rsplit(":", 1)[-1]
            _offer_shares(rt, email, str(part.get("program")), period_of, part["payload"], now)
        return
    items = payload.get("commitments") or []
    if program != followup.NAME or not payload.get("share") or not items:
        return
    offered: dict[str, int | str | None] = {
        f"offered:{n}": str(text) for n, text in enumerate(items[: followup.MAX_COMMITMENTS], 1)
    }
    rt.store.record_answers(email, followup.NAME, period, offered, now)


def make_links(settings: Settings) -> Links | None:
    """The links of this process's emails: None without ``STEADYHAND_SECRET_KEY`` (links
    fail closed: no web links, no List-Unsubscribe, the footer names the admin's command)."""
    key = os.environ.get(KEY_ENV, "")
    if not key.strip():
        return None
    return Links(key, settings.web.base_url, settings.mail.unsubscribe_url)


def email_links(
    rt: Runtime, person: Person, row: OutboxRow, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """``payload`` with the links of ``row``'s email to ``person`` (``links``, and
    ``unsubscribe_url``: the List-Unsubscribe URL), their tokens stamped at ``now``."""
    return mail_links.with_links(
        payload, make_links(rt.settings), person.email, row.program, row.period, now
    )


def _backoff(attempts: int, exc: TransientError) -> timedelta:
    wait: timedelta = min(RETRY_CAP, RETRY_BASE * (1 << max(0, attempts - 1)))
    if exc.retry_after is not None:
        wait = max(wait, timedelta(seconds=exc.retry_after))
    return wait


def _writer(kind: str) -> Work:
    work = WRITERS.get(kind)
    if work is None:  # its planner was never imported: a bug, this row only
        raise SteadyhandError(f"no writer for outbox rows of kind {kind!r}")
    return work


# -- values known only at the send moment ----------------------------------------------


class TooLate(Exception):
    """A send whose words could no longer be true: dropped (and audited), not failed."""


def fill_at_send_time(
    rt: Runtime, program: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """``payload`` with the values known only when it goes out at ``now`` (see the module
    docs); raises :class:`TooLate` for a send whose words could no longer be true."""
    if program == "bundle":
        return _fill_bundle(rt, payload, now)
    if program == "reflection":
        return _reflection_at(payload, now)
    wanted = payload.get("_describe")
    if program != "followup" or not wanted:
        return payload
    ref = rt.settings.calendar_ref(wanted["owner"])
    description = None
    if ref is not None:
        connector = rt.connector(ref)
        describe = connector.describe if isinstance(connector, Describes) else None
        if describe is not None:
            try:
                description = describe(ref, wanted["event_id"])
            except Exception as exc:  # the email still goes, with an empty list to fill in
                logger.warning("could not read the 1:1's description: %s", exc)
    return {**payload, "commitments": followup.commitments(description)}


def _reflection_at(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    facts = payload.get("_reflect")
    if isinstance(facts, dict):
        late = schedule.too_late(
            date.fromisoformat(facts["day"]),
            date.fromisoformat(facts["next_day"]),
            now,
            ZoneInfo(str(payload["timezone"])),
        )
        if late is not None:
            raise TooLate(late)
    return wording.reflection_at_send(payload, now)


def _fill_bundle(rt: Runtime, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    parts = []
    for part in payload.get("parts", []):
        try:
            values = fill_at_send_time(rt, part["program"], part["payload"], now)
            parts.append({**part, "payload": values})
        except TooLate as late:
            rt.store.audit(
                "dropped",
                now,
                person=part["payload"].get("email"),
                subject=part["key"],
                detail={"why": str(late)},
            )
            logger.info("left %s out of its bundle: %s", part["key"], late)
    if not parts:
        raise TooLate("every part of the bundle was too late")
    return {**payload, "parts": parts}
