"""The check-in form behind ``/answer/{token}`` for a ``checkin`` link: one person's one
check-in day (the claim's period, an ISO date).

The form: priorities (a textarea, one a line), which of them are commitments (their line
numbers, e.g. ``1, 3``: a plain text field, so it works on the first save and without
JavaScript), a concern and a blocker (each optional), and who may see it: only me, my
leader (the default) or my team. It can be changed until the end of that day in the
person's zone; after that it is shown read-only and a POST is refused in words. GET
never records; the same POST twice changes nothing. Stored under program ``checkin``
(docs/programs.md); free text is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.core.model import local_day_range
from worker.programs import checkin
from worker.store import Store
from worker.web.pages import MAX_TEXT, Site, Visit, bad_link, clean_text, long_date, outcome

PROGRAM = checkin.NAME
#: The free-text questions, by form field.
TEXTS = {
    "priorities": "Your priorities today (one a line)",
    "concern": "A concern (optional)",
    "blocker": "Anything in your way? A blocker (optional)",
}
#: Who may see it, as the form offers it.
SHARES = {"me": "Only me", "leader": "My leader", "team": "My team"}


def closes(day: date, visit: Visit) -> datetime:
    """When ``day``'s check-in stops being editable: the end of that day, their zone."""
    return local_day_range(day, visit.tz).end


@dataclass
class _Checkin:
    priorities: str = ""
    concern: str = ""
    blocker: str = ""
    share: str = checkin.DEFAULT_SHARE
    commitments: str = ""

    @property
    def empty(self) -> bool:
        return not (self.priorities or self.concern or self.blocker)


def _stored(store: Store, email: str, day: date) -> _Checkin:
    found = _Checkin()
    for a in store.answers_of(email, PROGRAM, (day.isoformat(), day.isoformat())):
        if a.question in ("priorities", "concern", "blocker", "commitments"):
            setattr(found, a.question, a.text or "")
        elif a.question == "share":
            found.share = checkin.share_of(a.text)
    return found


def _period(visit: Visit) -> date:
    try:
        return date.fromisoformat(visit.claim.period)
    except ValueError:
        raise bad_link("invalid") from None


class CheckinForm:
    """The check-in's answer form (:class:`worker.web.forms.AnswerForm`)."""

    PROGRAM = PROGRAM

    def __init__(self, site: Site) -> None:
        self.site = site

    def _page(
        self,
        request: Request,
        visit: Visit,
        day: date,
        shown: _Checkin,
        *,
        status: int = 200,
        said: str = "",
        problem: str = "",
    ) -> HTMLResponse:
        until = closes(day, visit)
        is_open = self.site.clock() < until
        lines = checkin.lines(shown.priorities)
        ticked = set(checkin.commitment_numbers(shown.commitments, len(lines)))
        values: dict[str, Any] = {
            "title": f"Your check-in, {long_date(day)}",
            "day": long_date(day),
            "texts": [
                {"name": name, "question": q, "text": getattr(shown, name)}
                for name, q in TEXTS.items()
            ],
            "commitments": shown.commitments,
            "lines": [
                {"n": n, "text": text, "commitment": n in ticked}
                for n, text in enumerate(lines, start=1)
            ],
            "shares": [
                {"value": v, "label": label, "checked": shown.share == v}
                for v, label in SHARES.items()
            ],
            "share_label": SHARES[shown.share],
            "answers": shown,
            "is_open": is_open,
            "until": long_date((until - timedelta(microseconds=1)).astimezone(visit.tz).date()),
            "csrf": self.site.csrf(visit) if is_open else "",
            "said": said,
            "problem": problem,
            "max_text": f"{MAX_TEXT:,}",
        }
        return self.site.render(request, "checkin.html.j2", status, **values)

    async def show(self, request: Request, visit: Visit) -> HTMLResponse:
        day = _period(visit)
        stored = await self.site.call(lambda s: _stored(s, visit.email, day))
        outcome(request, "shown")
        return self._page(request, visit, day, stored)

    async def record(self, request: Request, visit: Visit) -> HTMLResponse:
        day = _period(visit)
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        if self.site.clock() >= closes(day, visit):
            stored = await self.site.call(lambda s: _stored(s, visit.email, day))
            outcome(request, "refused: the day is closed")
            problem = (
                "This check-in is closed: it could be changed until the end of its day, "
                "so nothing was changed."
            )
            return self._page(request, visit, day, stored, status=409, problem=problem)
        share = (form.get("share") or checkin.DEFAULT_SHARE).strip()
        typed = _Checkin(
            clean_text(form.get("priorities")),
            clean_text(form.get("concern")),
            clean_text(form.get("blocker")),
            share if share in SHARES else checkin.DEFAULT_SHARE,
            clean_text(form.get("commitments")),
        )
        problem = _problem(typed, share)
        if problem:
            outcome(request, "refused: form shown again")
            return self._page(request, visit, day, typed, status=400, problem=problem)
        count = len(checkin.lines(typed.priorities))
        numbers = checkin.commitment_numbers(typed.commitments, count)
        typed.commitments = ",".join(str(n) for n in numbers)
        values: dict[str, int | str | None] = {
            "priorities": typed.priorities,
            "concern": typed.concern,
            "blocker": typed.blocker,
            "commitments": typed.commitments or None,
            "share": None if typed.empty else typed.share,
        }
        changed = await self.site.save(request, visit, PROGRAM, day.isoformat(), values)
        said = "Saved." if changed else "Nothing to change: this check-in was already saved."
        if typed.empty:
            said = "Saved: this day has no check-in now." if changed else "Nothing was saved."
        return self._page(request, visit, day, typed, said=said)


def _problem(typed: _Checkin, share: str) -> str:
    """What is wrong with a check-in form, in words; "" when nothing is."""
    if share not in SHARES:
        return "Choose who may see your check-in: only you, your leader or your team."
    for name, question in TEXTS.items():
        size = len(getattr(typed, name))
        if size > MAX_TEXT:
            return (
                f"Your answer to “{question}” is {size:,} characters long; answers can be "
                f"{MAX_TEXT:,} at most. Shorten it and press Save again."
            )
    count = len(checkin.lines(typed.priorities))
    for raw in typed.commitments.replace(" ", ",").split(","):
        part = raw.strip()
        if not part:
            continue
        if not part.isdecimal() or len(part) > 4 or not 1 <= int(part) <= count:
            return (
                f"“{part[:20]}” is not the number of one of your priorities: write the "
                f"line numbers of your commitments (1 to {count}), like 1, 3."
                if count
                else "Write your priorities first, then the line numbers of your commitments."
            )
    return ""
