"""The answer forms of the programs other than the reflection, behind ``/answer/{token}``.

Glossary
--------
answer form
    What ``/answer/{token}`` shows and records for a link whose claim names ``PROGRAM``
    (a check-in's day, a pulse's week, a partner's commitments). The reflection's own form
    is :class:`worker.web.answers.AnswerPages`; every other program registers one here.
    ``show`` answers the GET (never recording anything: mail scanners open links) and
    ``record`` the POST (after :meth:`worker.web.pages.Site.check_post`).

:func:`answer_forms` is the one registry: a program's form module adds its line there.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.web.checkin import CheckinForm
from worker.web.followup import FollowupForm
from worker.web.pages import Site, Visit
from worker.web.partners import PartnersForm
from worker.web.pulse import PulseForm


class AnswerForm(Protocol):
    """The form of one program at ``/answer/{token}`` (see the module docs)."""

    @property
    def PROGRAM(self) -> str:
        """The program whose links open this form (the claim's program)."""
        ...

    async def show(self, request: Request, visit: Visit) -> HTMLResponse:
        """GET: the form with the claim's answers (and any choice in the query) shown."""
        ...

    async def record(self, request: Request, visit: Visit) -> HTMLResponse:
        """POST: check the form, record it, show what was saved."""
        ...


def answer_forms(site: Site) -> dict[str, AnswerForm]:
    """Every program's answer form by program name (the reflection's is built in)."""
    forms: list[AnswerForm] = [
        CheckinForm(site),
        FollowupForm(site),
        PartnersForm(site),
        PulseForm(site),
    ]
    return {f.PROGRAM: f for f in forms}
