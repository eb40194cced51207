"""The page behind a follow-up's "choose which of these are yours to share" link
(``/answer/{token}`` for a ``followup`` link; the claim's period is the follow-up's).

The 1:1's commitments the email offered are kept, when it is sent, as the recipient's own
answers ``offered:<n>`` under program ``followup`` and the follow-up's period (never in
the link). The page shows each as a checkbox "mine, share with my partner"; only the POST
records: ``shared:<n>`` with its words for each one ticked; unticking deletes it. It can
be changed for 7 days after the link was made. GET never records; the same POST twice
changes nothing. Free text is never logged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.programs import followup
from worker.store import Store
from worker.web.pages import Site, Visit, long_date, outcome

PROGRAM = followup.NAME
#: How long the choice can be changed after the follow-up was sent.
EDITABLE = timedelta(days=7)


def _stored(store: Store, email: str, period: str, kind: str) -> dict[int, str]:
    """``email``'s ``kind`` (``offered`` or ``shared``) commitments of the follow-up."""
    out = {}
    for a in store.answers_of(email, PROGRAM, (period, period)):
        head, _, n = a.question.partition(":")
        if head == kind and n.isdecimal() and a.text:
            out[int(n)] = a.text
    return out


def _both(store: Store, email: str, period: str) -> tuple[dict[int, str], dict[int, str]]:
    return _stored(store, email, period, "offered"), _stored(store, email, period, "shared")


class FollowupForm:
    """The follow-up's answer form (:class:`worker.web.forms.AnswerForm`)."""

    PROGRAM = PROGRAM

    def __init__(self, site: Site) -> None:
        self.site = site

    def _closes(self, visit: Visit) -> datetime:
        return visit.issued + EDITABLE

    def _page(
        self,
        request: Request,
        visit: Visit,
        items: dict[int, str],
        shared: dict[int, str],
        *,
        status: int = 200,
        said: str = "",
        problem: str = "",
    ) -> HTMLResponse:
        until = self._closes(visit)
        is_open = self.site.clock() < until
        every = {**items, **shared}
        return self.site.render(
            request,
            "followup.html.j2",
            status,
            title="Your 1:1 commitments",
            items=[{"n": n, "text": every[n], "shared": n in shared} for n in sorted(every)],
            is_open=is_open,
            until=long_date(until.astimezone(visit.tz).date()),
            csrf=self.site.csrf(visit) if is_open else "",
            said=said,
            problem=problem,
        )

    async def show(self, request: Request, visit: Visit) -> HTMLResponse:
        period = visit.claim.period
        items, shared = await self.site.call(lambda s: _both(s, visit.email, period))
        outcome(request, "shown")
        return self._page(request, visit, items, shared)

    async def record(self, request: Request, visit: Visit) -> HTMLResponse:
        period = visit.claim.period
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        items, shared = await self.site.call(lambda s: _both(s, visit.email, period))
        if self.site.clock() >= self._closes(visit):
            outcome(request, "refused: closed")
            problem = (
                "This choice is closed: it could be changed for 7 days after your 1:1, "
                "so nothing was changed."
            )
            return self._page(request, visit, items, shared, status=409, problem=problem)
        ticked = {n for n in items if form.get(f"share:{n}") == "1"}
        values: dict[str, int | str | None] = {
            f"shared:{n}": items[n] if n in ticked else None for n in items
        }
        changed = await self.site.save(request, visit, PROGRAM, period, values)
        said = "Saved." if changed else "Nothing to change: this was already saved."
        return self._page(request, visit, items, {n: items[n] for n in ticked}, said=said)
