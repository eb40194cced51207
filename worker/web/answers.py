"""The reflection's pages: ``/answer/{token}`` (a day's score and two notes) and
``/journal/{token}`` ("Your last 30 days": each day's answers beside that day's figures).

An answer link is for one person's one day (the claim's period, an ISO date). The page
shows the day's stored answers, or the score its link pre-selects (``?score=N``, from
the email's row of scores), and a Save button: only the POST records. Answers can be
changed until the end of the next day in the person's zone ("the day closes"); after
that the page shows them read-only and a POST is refused in words. The same POST twice
changes nothing; a new score replaces the old one.

The journal lists each of the last 30 days with an answer or a stored event. Its figures
come from the analysis of the events the worker stored
(:func:`worker.core.analysis.analyze_days`), shown for the days the calendar's last read
covered; this page never syncs a calendar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.core import analysis
from worker.core.model import Event, TimeRange, local_day_range
from worker.cycle.runtime import policy
from worker.links import Purpose
from worker.store import Store
from worker.web.forms import AnswerForm
from worker.web.pages import (
    MAX_TEXT,
    Form,
    Refused,
    Site,
    Visit,
    bad_link,
    clean_text,
    long_date,
    outcome,
    short_date,
)

PROGRAM = "reflection"
#: The score row of the page and of the email: 1 rough … 5 great.
LABELS = {1: "rough", 2: "", 3: "", 4: "", 5: "great"}
#: The two free-text questions, by form field.
NOTES = {"moved": "What moved forward?", "dampened": "What dampened it?"}
#: How many days "Your last 30 days" shows.
JOURNAL_DAYS = 30


def closes(day: date, visit: Visit) -> datetime:
    """When ``day``'s answers stop being editable: the end of the next day, their zone."""
    return local_day_range(day + timedelta(days=1), visit.tz).end


def _period(visit: Visit) -> date:
    if visit.claim.program != PROGRAM:
        raise bad_link("invalid")
    try:
        return date.fromisoformat(visit.claim.period)
    except ValueError:
        raise bad_link("invalid") from None


def _score(value: str | None) -> int | None:
    """A score from 1 to 5 as written in a form or query; None for anything else."""
    text = (value or "").strip()
    if len(text) == 1 and text in "12345":
        return int(text)
    return None


@dataclass
class _Answers:
    score: int | None = None
    moved: str = ""
    dampened: str = ""

    @property
    def empty(self) -> bool:
        return self.score is None and not self.moved and not self.dampened


def _by_day(store: Store, email: str, first: date, last: date) -> dict[str, _Answers]:
    out: dict[str, _Answers] = {}
    for a in store.answers_of(email, PROGRAM, (first.isoformat(), last.isoformat())):
        found = out.setdefault(a.period, _Answers())
        if a.question == "score":
            found.score = a.score
        elif a.question in NOTES:
            setattr(found, a.question, a.text or "")
    return out


class AnswerPages:
    """``/answer/{token}`` and ``/journal/{token}``."""

    def __init__(self, site: Site, forms: Mapping[str, AnswerForm] | None = None) -> None:
        self.site = site
        self.forms = dict(forms or {})

    # -- /answer/{token} -----------------------------------------------------------------
    def _answer_page(
        self,
        request: Request,
        visit: Visit,
        day: date,
        shown: _Answers,
        *,
        status: int = 200,
        said: str = "",
        problem: str = "",
        preselected: bool = False,
    ) -> HTMLResponse:
        now = self.site.clock()
        until = closes(day, visit)
        is_open = now < until
        last_day = (until - timedelta(microseconds=1)).astimezone(visit.tz).date()
        return self.site.render(
            request,
            "answer.html.j2",
            status,
            title=f"How was {short_date(day)}?",
            day=long_date(day),
            scores=[
                {"score": n, "label": label, "checked": shown.score == n}
                for n, label in LABELS.items()
            ],
            notes=[
                {"name": name, "question": q, "text": getattr(shown, name)}
                for name, q in NOTES.items()
            ],
            answers=shown,
            is_open=is_open,
            until=long_date(last_day),
            csrf=self.site.csrf(visit) if is_open else "",
            said=said,
            problem=problem,
            preselected=preselected,
            max_text=f"{MAX_TEXT:,}",
            journal=self.site.path(visit, Purpose.JOURNAL, PROGRAM, day.isoformat()),
        )

    def _other(self, visit: Visit) -> AnswerForm | None:
        """The form of a program other than the reflection; a link of a program without
        one is not valid here."""
        if visit.claim.program == PROGRAM:
            return None
        form = self.forms.get(visit.claim.program)
        if form is None:
            raise bad_link("invalid")
        return form

    async def answer(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.ANSWER)
        other = self._other(visit)
        if other is not None:
            return await other.show(request, visit)
        day = _period(visit)
        stored = await self.site.call(
            lambda s: _by_day(s, visit.email, day, day).get(day.isoformat(), _Answers())
        )
        picked = _score(request.query_params.get("score"))
        if picked is not None and picked != stored.score and self.site.clock() < closes(day, visit):
            outcome(request, "shown, score pre-selected")
            shown = _Answers(picked, stored.moved, stored.dampened)
            return self._answer_page(request, visit, day, shown, preselected=True)
        outcome(request, "shown")
        return self._answer_page(request, visit, day, stored)

    async def record(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.ANSWER)
        other = self._other(visit)
        if other is not None:
            return await other.record(request, visit)
        day = _period(visit)
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        moved, dampened = clean_text(form.get("moved")), clean_text(form.get("dampened"))
        typed = _Answers(_score(form.get("score")), moved, dampened)
        if self.site.clock() >= closes(day, visit):
            stored = await self.site.call(
                lambda s: _by_day(s, visit.email, day, day).get(day.isoformat(), _Answers())
            )
            outcome(request, "refused: the day is closed")
            problem = (
                "This day is closed: answers can be changed until the end of the next day, "
                "so nothing was changed."
            )
            return self._answer_page(request, visit, day, stored, status=409, problem=problem)
        problem = _problem(form, typed)
        if problem:
            outcome(request, "refused: form shown again")
            return self._answer_page(request, visit, day, typed, status=400, problem=problem)
        values: dict[str, int | str | None] = {
            "score": typed.score,
            "moved": typed.moved,
            "dampened": typed.dampened,
        }
        changed = await self.site.save(request, visit, PROGRAM, day.isoformat(), values)
        said = "Saved." if changed else "Nothing to change: these answers were already saved."
        if typed.empty:
            said = "Saved: this day has no answers now." if changed else "Nothing was saved."
        return self._answer_page(request, visit, day, typed, said=said)

    # -- /journal/{token} ----------------------------------------------------------------
    def _days(self, visit: Visit) -> tuple[date, date]:
        today = self.site.clock().astimezone(visit.tz).date()
        return today - timedelta(days=JOURNAL_DAYS - 1), today

    def _journal_rows(self, store: Store, visit: Visit) -> list[dict[str, Any]]:
        first, last = self._days(visit)
        person = visit.person
        tz = visit.tz
        span = TimeRange(local_day_range(first, tz).start, local_day_range(last, tz).end)
        events = store.events_for(person.email, span, visit.tz)
        settings = self.site.settings
        metrics = analysis.analyze_days(
            person,
            events,
            first,
            last,
            policy(settings),
            meetings_from=settings.meetings_from(person.email),
        )
        with_events = _event_days(events, visit, first, last)
        ref = settings.calendar_ref(person.email)
        state = store.sync_state(ref.key) if ref is not None else None
        read = state.window if state is not None else None

        def figures(day: date) -> bool:
            """Whether the day's figures are known: it has events, or a read covered it."""
            span = local_day_range(day, tz)
            covered = read is not None and read.start <= span.start and span.end <= read.end
            return covered or day in with_events

        answered = _by_day(store, person.email, first, last)
        now = self.site.clock()
        rows = []
        for m in reversed(metrics):
            given = answered.get(m.date.isoformat())
            if given is None and m.date not in with_events:
                continue
            editable = now < closes(m.date, visit)
            rows.append(
                {
                    "period": m.date.isoformat(),
                    "day": long_date(m.date),
                    "score": given.score if given else None,
                    "label": LABELS.get(given.score or 0, "") if given else "",
                    "moved": given.moved if given else "",
                    "dampened": given.dampened if given else "",
                    "answered": given is not None and not given.empty,
                    "figures": figures(m.date),
                    "away": m.away,
                    "meetings": _hours(m.meeting_minutes),
                    "chain": _duration(m.longest_chain_minutes),
                    "focus": _duration(m.focus_minutes),
                    "edit": (
                        self.site.path(visit, Purpose.ANSWER, PROGRAM, m.date.isoformat())
                        if editable
                        else None
                    ),
                }
            )
        return rows

    async def _journal_page(
        self, request: Request, visit: Visit, *, said: str = "", status: int = 200
    ) -> HTMLResponse:
        rows = await self.site.call(lambda s: self._journal_rows(s, visit))
        return self.site.render(
            request,
            "journal.html.j2",
            status,
            title="Your last 30 days",
            rows=rows,
            csrf=self.site.csrf(visit),
            said=said,
            delete=f"journal/{visit.quoted}/delete",
        )

    async def journal(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.JOURNAL)
        outcome(request, "shown")
        return await self._journal_page(request, visit)

    async def delete(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.JOURNAL)
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        try:
            day = date.fromisoformat((form.get("period") or "").strip())
        except ValueError:
            raise Refused(
                400,
                "Which day?",
                "The form named no day to delete. Use the Delete button beside a day.",
                "refused: no day",
            ) from None
        request.state.about = f"{PROGRAM} {day.isoformat()}"
        gone = await self.site.call(
            lambda s: s.delete_answers(visit.email, PROGRAM, day.isoformat())
        )
        outcome(request, "deleted" if gone else "nothing to delete")
        said = (
            f"Deleted your answers for {long_date(day)}."
            if gone
            else f"There were no answers to delete for {long_date(day)}."
        )
        return await self._journal_page(request, visit, said=said)


def _problem(form: Form, typed: _Answers) -> str:
    """What is wrong with a reflection form, in words; "" when nothing is."""
    raw = (form.get("score") or "").strip()
    if raw and typed.score is None:
        return "Choose a score from 1 (rough) to 5 (great)."
    for name, question in NOTES.items():
        size = len(getattr(typed, name))
        if size > MAX_TEXT:
            return (
                f"Your answer to “{question}” is {size:,} characters long; answers can be "
                f"{MAX_TEXT:,} at most. Shorten it and press Save again."
            )
    return ""


def _event_days(events: Sequence[Event], visit: Visit, first: date, last: date) -> set[date]:
    """The local days from ``first`` to ``last`` that a stored event touches."""
    out: set[date] = set()
    for e in events:
        start = e.range.start.astimezone(visit.tz).date()
        end_at = max(e.range.start, e.range.end - timedelta(microseconds=1))
        end = end_at.astimezone(visit.tz).date()
        day = max(start, first)
        while day <= min(end, last):
            out.add(day)
            day += timedelta(days=1)
    return out


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f} h"


def _duration(minutes: float) -> str:
    if minutes < 60:
        return f"{round(minutes)} min"
    return f"{minutes / 60:.1f} h"
