"""The pulse's answer form at ``/answer/{token}`` (a link of program ``pulse``).

A pulse link is for one person's one week (the claim's period, ``2026-W45``). The page
shows every question of the pulse with its scale as radio buttons: the stored score, or
the one the email's link chose (``?q=ID&score=N``) pre-selected but not saved; an
optional comment per question and "share my comment with my leader, without my name"
(unticked unless it was ticked before). Only the POST records, under program ``pulse``:
``<id>`` (the score), ``<id>.comment`` and ``<id>.share`` (1 = share it). Answers can be
changed until the end of the Sunday of that week in the person's zone; after that the
page shows them read-only and a POST is refused in words. The same POST twice changes
nothing; a new score replaces the old one. The page also lists the person's own earlier
pulse answers (only theirs: the link is theirs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.cycle.pulses import questions
from worker.programs import pulse
from worker.programs.pulse import Question
from worker.store import Store
from worker.web.pages import (
    MAX_TEXT,
    Form,
    Site,
    Visit,
    bad_link,
    clean_text,
    long_date,
    outcome,
)

#: How many earlier weeks of their own answers the page lists.
HISTORY_WEEKS = 12


@dataclass
class _Given:
    """One question's answers: a score, a comment, and whether the comment is shared."""

    score: int | None = None
    comment: str = ""
    share: bool = False


@dataclass
class _Week:
    given: dict[str, _Given] = field(default_factory=dict)

    def of(self, qid: str) -> _Given:
        return self.given.setdefault(qid, _Given())


def _weeks(store: Store, email: str, first: str, last: str) -> dict[str, _Week]:
    out: dict[str, _Week] = {}
    for a in store.answers_of(email, pulse.NAME, (first, last)):
        qid, _, part = a.question.partition(".")
        given = out.setdefault(a.period, _Week()).of(qid)
        if part == "":
            given.score = a.score
        elif part == "comment":
            given.comment = a.text or ""
        elif part == "share":
            given.share = a.score == 1
    return out


def _score(value: str | None, q: Question) -> int | None:
    """A score on ``q``'s scale as written in a form or query; None for anything else."""
    text = (value or "").strip()
    if text.isdecimal() and len(text) <= 2 and q.low <= int(text) <= q.high:
        return int(text)
    return None


class PulseForm:
    """``/answer/{token}`` for a pulse link."""

    PROGRAM = pulse.NAME

    def __init__(self, site: Site) -> None:
        self.site = site

    def _week(self, visit: Visit) -> tuple[str, tuple[Question, ...]]:
        asked = questions(self.site.settings)
        try:
            pulse.monday_of(visit.claim.period)
        except ValueError:
            raise bad_link("invalid") from None
        if not asked:
            raise bad_link("invalid")
        return visit.claim.period, asked

    async def _stored(self, visit: Visit, week: str) -> tuple[_Week, dict[str, _Week]]:
        monday = pulse.monday_of(week)
        first = pulse.week_of(monday - timedelta(weeks=HISTORY_WEEKS))
        weeks = await self.site.call(lambda s: _weeks(s, visit.email, first, week))
        return weeks.pop(week, _Week()), weeks

    def _page(
        self,
        request: Request,
        visit: Visit,
        week: str,
        asked: tuple[Question, ...],
        shown: _Week,
        earlier: dict[str, _Week],
        *,
        status: int = 200,
        said: str = "",
        problem: str = "",
        preselected: bool = False,
    ) -> HTMLResponse:
        is_open = self.site.clock() < pulse.closes(week, visit.person)
        monday = pulse.monday_of(week)
        sunday = monday + timedelta(days=6)
        texts = {q.id: q.text for q in asked}
        history = [
            {
                "week": f"the week of {long_date(pulse.monday_of(w))}",
                "answers": [
                    {"question": texts.get(qid, qid), "score": g.score, "comment": g.comment}
                    for qid, g in sorted(given.given.items())
                ],
            }
            for w, given in sorted(earlier.items(), reverse=True)
        ]
        return self.site.render(
            request,
            "pulse.html.j2",
            status,
            title=f"Pulse for the week of {long_date(monday)}",
            week=f"the week of {long_date(monday)}",
            questions=[
                {
                    "id": q.id,
                    "text": q.text,
                    "low": q.low,
                    "high": q.high,
                    "scores": [
                        {"score": n, "checked": shown.of(q.id).score == n} for n in q.scores
                    ],
                    "comment": shown.of(q.id).comment,
                    "share": shown.of(q.id).share,
                    "score": shown.of(q.id).score,
                }
                for q in asked
            ],
            is_open=is_open,
            until=long_date(sunday),
            csrf=self.site.csrf(visit) if is_open else "",
            said=said,
            problem=problem,
            preselected=preselected,
            max_text=f"{MAX_TEXT:,}",
            min_team_size=self.site.settings.privacy.min_team_size,
            history=history,
        )

    async def show(self, request: Request, visit: Visit) -> HTMLResponse:
        week, asked = self._week(visit)
        stored, earlier = await self._stored(visit, week)
        wanted = request.query_params.get("q", "")
        chosen = next((q for q in asked if q.id == wanted), None)
        picked = _score(request.query_params.get("score"), chosen) if chosen else None
        is_open = self.site.clock() < pulse.closes(week, visit.person)
        if chosen and picked is not None and picked != stored.of(chosen.id).score and is_open:
            stored.of(chosen.id).score = picked
            outcome(request, "shown, score pre-selected")
            return self._page(request, visit, week, asked, stored, earlier, preselected=True)
        outcome(request, "shown")
        return self._page(request, visit, week, asked, stored, earlier)

    async def record(self, request: Request, visit: Visit) -> HTMLResponse:
        week, asked = self._week(visit)
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        typed = _Week({q.id: _typed(form, q) for q in asked})
        if self.site.clock() >= pulse.closes(week, visit.person):
            stored, earlier = await self._stored(visit, week)
            outcome(request, "refused: the week is closed")
            problem = (
                "This week is closed: pulse answers can be changed until the end of its "
                "Sunday, so nothing was changed."
            )
            return self._page(
                request, visit, week, asked, stored, earlier, status=409, problem=problem
            )
        problem = _problem(form, asked, typed)
        if problem:
            _, earlier = await self._stored(visit, week)
            outcome(request, "refused: form shown again")
            return self._page(
                request, visit, week, asked, typed, earlier, status=400, problem=problem
            )
        values: dict[str, int | str | None] = {}
        for q in asked:
            given = typed.of(q.id)
            values[q.id] = given.score
            values[f"{q.id}.comment"] = given.comment
            values[f"{q.id}.share"] = 1 if given.share and given.comment else None
        changed = await self.site.save(request, visit, pulse.NAME, week, values)
        _, earlier = await self._stored(visit, week)
        said = "Saved." if changed else "Nothing to change: these answers were already saved."
        return self._page(request, visit, week, asked, typed, earlier, said=said)


def _typed(form: Form, q: Question) -> _Given:
    comment = clean_text(form.get(f"{q.id}.comment"))
    share = (form.get(f"{q.id}.share") or "").strip() == "1"
    return _Given(_score(form.get(q.id), q), comment, share)


def _problem(form: Form, asked: tuple[Question, ...], typed: _Week) -> str:
    """What is wrong with a pulse form, in words; "" when nothing is."""
    for q in asked:
        raw = (form.get(q.id) or "").strip()
        if raw and typed.of(q.id).score is None:
            return f"Choose a score from {q.low} to {q.high} for “{q.text}”."
        size = len(typed.of(q.id).comment)
        if size > MAX_TEXT:
            return (
                f"Your comment on “{q.text}” is {size:,} characters long; comments can be "
                f"{MAX_TEXT:,} at most. Shorten it and press Save again."
            )
    return ""
