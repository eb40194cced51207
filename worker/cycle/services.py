"""What is left of the old orchestration module while the emails move to their programs.

It holds the reflection's values (:func:`reflection_context`), :func:`decide_emails` and
:class:`Upcoming`, and re-exports the names that moved out (to :mod:`worker.cycle.runtime`,
:mod:`~worker.cycle.figures`, :mod:`~worker.cycle.deliver` and :mod:`~worker.cycle.run`),
and :mod:`~worker.cycle.sync`'s, so callers keep working; import them from their modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from worker import programs
from worker.core import analysis, schedule, wording
from worker.core.model import Person, local_day_range
from worker.cycle.deliver import (
    CLAIMER,
    LEASE,
    MAX_ATTEMPTS,
    NOT_SENT,
    NOT_TRANSIENT,
    RETRY_BASE,
    RETRY_CAP,
    Delivery,
    deliver,
)
from worker.cycle.figures import ensure_synced, load_report
from worker.cycle.runtime import (
    LIMITED_KINDS,
    Runtime,
    build_transport,
    day_metrics,
    person_events,
    policy,
    select,
)
from worker.cycle.sync import SyncReport, sync, sync_window

__all__ = [
    "CLAIMER",
    "LEASE",
    "LIMITED_KINDS",
    "MAX_ATTEMPTS",
    "NOT_SENT",
    "NOT_TRANSIENT",
    "REASON_WORDS",
    "RETRY_BASE",
    "RETRY_CAP",
    "Delivery",
    "Runtime",
    "SyncReport",
    "Upcoming",
    "build_transport",
    "day_metrics",
    "decide_emails",
    "deliver",
    "ensure_synced",
    "load_report",
    "person_events",
    "policy",
    "reflection_context",
    "select",
    "sync",
    "sync_window",
]


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A send that is not due yet (or is due now), for summaries and ``doctor``."""

    program: str
    recipient: str
    period: str
    at: datetime
    state: str  # due | scheduled | sent


def decide_emails(rt: Runtime, now: datetime) -> list[int]:
    """Write an outbox row for every send that is due and not yet decided; return new ids
    (the programs and their rules are in :mod:`worker.cycle.decide`)."""
    from worker.cycle import decide as emails

    return emails.decide(rt, now)


def reflection_context(rt: Runtime, person: Person, day: date) -> dict[str, Any]:
    """The reflection's values as decided (templates/README.md): the reflected day's
    figures, and under ``_reflect`` the facts its send-time words are computed from (the
    next working day, its meetings and blocks): :func:`worker.core.wording.reflection_at_send`
    words them for the moment it is sent, when ``today`` may already be tomorrow."""
    ahead = [day + timedelta(days=i) for i in range(1, schedule.SEARCH_DAYS + 1)]
    events = person_events(rt, person, ahead[0], ahead[-1])
    away = analysis.away_dates(events, person, ahead)
    following = schedule.next_working_day(person, day, away) or ahead[0]
    metrics = {m.date: m for m in day_metrics(rt, person, day, following)}
    today = metrics[day]
    tomorrow = metrics[following]
    span = local_day_range(following, person.tz)
    meetings_from = rt.settings.meetings_from(person.email)  # as day_metrics counted them
    meetings = sorted(
        (e.start, e.end)
        for e in events
        if analysis.is_meeting(e, person, meetings_from)
        and e.start < span.end
        and e.end > span.start
    )
    blocks = sorted(
        (b.title, b.start, b.end)
        for b in rt.store.blocks_of(person.email)
        if b.status == "managed" and b.start.astimezone(person.tz).date() == following
    )
    return {
        "name": person.name,
        "first_name": programs.first_name(person),
        "email": person.email,
        "timezone": person.timezone,
        "day_label": wording.day_label(day),
        "today": {
            "meeting_hours": _hours(today.meeting_minutes),
            "meeting_load": today.meeting_load,
            "meeting_load_pct": round((today.meeting_load or 0) * 100),
            "longest_chain_hours": _hours(today.longest_chain_minutes),
            "focus_hours": _hours(today.focus_minutes),
            "after_hours_meeting_minutes": round(today.after_hours_meeting_minutes),
            "reasons": list(today.reasons),
            "reasons_text": ", ".join(REASON_WORDS.get(r, r) for r in today.reasons),
        },
        "tomorrow": {
            "label": wording.day_label(following),
            "day_off": tomorrow.working_minutes == 0,
            "meeting_hours": _hours(tomorrow.meeting_minutes),
        },
        "_reflect": wording.reflection_facts(day, following, meetings, blocks),
    }


REASON_WORDS = {
    "meeting_load": "most of your working time went to meetings",
    "back_to_back": "a long run of back-to-back meetings",
    "no_focus": "no stretch of focus time",
    "after_hours": "meetings outside your working hours",
    "double_booked": "meetings that overlapped",
}


# -- small helpers ---------------------------------------------------------------------


def _hours(minutes: float) -> float:
    return round(minutes / 60, 1)


#: Re-exported from :mod:`worker.cycle.run` when first asked for (so not in ``__all__``):
#: run imports decide, and decide imports :func:`reflection_context` from this module.
_FROM_RUN = ("CycleReport", "run_cycle", "tick")


def __getattr__(name: str) -> Any:
    if name in _FROM_RUN:
        from worker.cycle import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
