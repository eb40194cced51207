"""The page behind a partners email's "done" / "still on it" links (``/answer/{token}``
for a ``partners`` link): one of the person's own commitments, the claim's period being
the check-in day it came from and ``?line=N`` its priority line.

The page shows the commitment with the link's choice (``?status=done`` or ``still``)
pre-selected, and a "don't name me when I finish something" choice; only the POST
records: ``done:<N>`` (1 done, 0 still on it) under that day, and ``celebrate`` (0: do
not name me in the team's digest) under no period. GET never records; the same POST
twice changes nothing.
"""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.programs import checkin, followup, partners
from worker.store import Store
from worker.web.pages import Refused, Site, Visit, bad_link, long_date, outcome

PROGRAM = partners.NAME
#: The choices, by the ``status`` of the link and the form.
STATUSES = {"done": "Done", "still": "Still on it"}


def _line(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdecimal() and len(text) <= 3 and 0 < int(text) < 1000 else None


def _words(store: Store, email: str, period: str, line: int) -> str:
    """The words of ``email``'s commitment ``line`` of ``period`` ("" when there is none):
    a check-in day's priority ticked "commitment", or a shared 1:1 commitment."""
    if period.startswith(partners.ONE_ON_ONE):
        source = period.removeprefix(partners.ONE_ON_ONE)
        for a in store.answers_of(email, followup.NAME, (source, source)):
            if a.question == f"shared:{line}":
                return a.text or ""
        return ""
    texts = {}
    for a in store.answers_of(email, checkin.NAME, (period, period)):
        texts[a.question] = a.text or ""
    lines = checkin.lines(texts.get("priorities"))
    if line in checkin.commitment_numbers(texts.get("commitments"), len(lines)):
        return lines[line - 1]
    return ""


def _commitment(store: Store, email: str, period: str, line: int) -> tuple[str, str, bool]:
    """(the commitment's words, its stored status, whether its owner may be named)."""
    words = _words(store, email, period, line)
    status = ""
    named = True
    for a in store.answers_of(email, PROGRAM):
        if a.period == period and a.question == f"done:{line}":
            status = "done" if a.score == 1 else "still"
        if a.period == "" and a.question == "celebrate" and a.score == 0:
            named = False
    return words, status, named


class PartnersForm:
    """The partners' answer form (:class:`worker.web.forms.AnswerForm`)."""

    PROGRAM = PROGRAM

    def __init__(self, site: Site) -> None:
        self.site = site

    def _claimed(self, visit: Visit, line: int | None) -> tuple[str, int]:
        period = visit.claim.period
        if not (period.startswith(partners.ONE_ON_ONE) and len(period) > len(partners.ONE_ON_ONE)):
            try:
                period = date.fromisoformat(period).isoformat()
            except ValueError:
                raise bad_link("invalid") from None
        if line is None:
            raise Refused(
                400,
                "Which commitment?",
                "This link names no commitment. Use a “Done” or “Still on it” link from "
                "your partners email.",
                "refused: no line",
            )
        return period, line

    async def _found(self, visit: Visit, day: str, line: int) -> tuple[str, str, bool]:
        found = await self.site.call(lambda s: _commitment(s, visit.email, day, line))
        if not found[0]:
            raise Refused(
                404,
                "That commitment is gone",
                "It is no longer among the commitments of your check-in of that day (or "
                "the 1:1 commitments you share), so there is nothing to mark. Nothing was "
                "changed.",
                "refused: no such commitment",
            )
        return found

    def _page(
        self,
        request: Request,
        visit: Visit,
        day: str,
        line: int,
        words: str,
        status: str,
        named: bool,
        *,
        said: str = "",
        preselected: bool = False,
        code: int = 200,
        problem: str = "",
    ) -> HTMLResponse:
        return self.site.render(
            request,
            "commitments.html.j2",
            code,
            title="Your commitment",
            day="" if day.startswith(partners.ONE_ON_ONE) else long_date(date.fromisoformat(day)),
            line=line,
            words=words,
            statuses=[
                {"value": v, "label": label, "checked": status == v}
                for v, label in STATUSES.items()
            ],
            named=named,
            csrf=self.site.csrf(visit),
            said=said,
            problem=problem,
            preselected=preselected,
        )

    async def show(self, request: Request, visit: Visit) -> HTMLResponse:
        day, line = self._claimed(visit, _line(request.query_params.get("line")))
        words, status, named = await self._found(visit, day, line)
        picked = request.query_params.get("status", "")
        if picked in STATUSES and picked != status:
            outcome(request, "shown, choice pre-selected")
            return self._page(request, visit, day, line, words, picked, named, preselected=True)
        outcome(request, "shown")
        return self._page(request, visit, day, line, words, status, named)

    async def record(self, request: Request, visit: Visit) -> HTMLResponse:
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        day, line = self._claimed(visit, _line(form.get("line")))
        words, status, named = await self._found(visit, day, line)
        picked = (form.get("status") or "").strip()
        raw = form.get("named")
        wanted_named = named if raw is None else raw == "1"
        if picked not in STATUSES:
            outcome(request, "refused: form shown again")
            problem = "Choose “Done” or “Still on it”, then press Save."
            return self._page(
                request, visit, day, line, words, status, named, code=400, problem=problem
            )
        now = self.site.clock()

        def save(store: Store) -> bool:
            done = {f"done:{line}": 1 if picked == "done" else 0}
            changed = store.record_answers(visit.email, PROGRAM, day, done, now)
            celebrate = {"celebrate": None if wanted_named else 0}
            return store.record_answers(visit.email, PROGRAM, "", celebrate, now) or changed

        changed = await self.site.call(save)
        outcome(request, "saved" if changed else "unchanged")
        said = "Saved." if changed else "Nothing to change: this was already saved."
        return self._page(request, visit, day, line, words, picked, wanted_named, said=said)
