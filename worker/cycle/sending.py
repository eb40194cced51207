"""What an email needs that is known only when it goes out: values read or worded at the
send moment, never stored (the outbox row holds what was decided).

* a follow-up's commitments, read from the 1:1's description;
* a reflection's words about the day it reflects on and the next working day, made
  from the reflected day and the send moment in the recipient's zone
  (:func:`worker.core.wording.reflection_at_send`); one more than a working day late
  (:func:`worker.core.schedule.too_late`) raises :class:`TooLate`: it is dropped, not sent;
* a bundle's parts, each filled as its own program; a part too late is left out (and
  audited), and the bundle is dropped only when no part is left.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from worker.core import schedule, wording
from worker.cycle.services import Runtime
from worker.programs import followup

logger = logging.getLogger(__name__)


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
        describe = getattr(rt.connector(ref), "describe", None)
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
