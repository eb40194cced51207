"""Which emails a person gets: ``/unsubscribe/{token}`` (one program or every email, or a
pause) and ``/preferences/{token}`` (each program's opt-out, the pause, what steadyhand
holds about them, "Download as JSON" and "Delete my answers").

A GET shows the choice pre-selected and a button; the POST records it. The one exception
is RFC 8058's one-click POST from a mail program's own Unsubscribe button: a form body
of ``List-Unsubscribe=One-Click`` and no ``csrf`` field opts out of the link's program
(a bundle's link: every email) at once. A page shows and exports the person's own data
only: the link says whose.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from worker.config import Settings
from worker.core.model import TimeRange
from worker.links import Purpose
from worker.programs import PROGRAMS
from worker.store import Store
from worker.web.pages import Form, Site, Visit, bad_link, long_date, outcome

ALL = "*"
#: What each program's emails are, as a page names them.
LABELS = {
    "reflection": "end-of-day reflection emails",
    "recognition": "weekly notes on whom to thank",
    "recognize": "notes your leader writes to you",
    "followup": "follow-ups after a 1:1",
    "overload": "warnings of an overloaded day or week",
    "digest": "weekly team load digests",
}
#: How far ahead a pause may reach.
MAX_PAUSE = timedelta(days=366)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def label(program: str) -> str:
    return "emails from steadyhand" if program == ALL else LABELS.get(program, program)


def programs_for(settings: Settings, email: str) -> list[str]:
    """The programs whose emails ``email`` gets under the config, in the registry's order."""
    e = settings.emails
    members = {m for t in settings.team_models() for m in t.members}
    gets = {
        "reflection": e.reflection is not None and email in settings.audience(e.reflection.to),
        "recognition": e.recognition is not None and email in settings.audience(e.recognition.to),
        "recognize": email in members,
        "followup": e.followup is not None,
        "overload": e.overload is not None,
        "digest": e.digest is not None and email in settings.audience(e.digest.to),
    }
    return [name for name in PROGRAMS if gets.get(name)]


def _pause_until(form: Form, visit: Visit, now: datetime) -> date | str:
    """The form's pause date, or what is wrong with it in words."""
    text = (form.get("until") or "").strip()
    today = now.astimezone(visit.tz).date()
    try:
        until = date.fromisoformat(text)
    except ValueError:
        return "Choose the last day of the pause (a date like 2026-12-31)."
    if until < today:
        return f"{long_date(until)} has passed: choose today or a later day."
    if until > today + MAX_PAUSE:
        return "A pause can last a year at most: choose an earlier day."
    return until


class PreferencePages:
    """``/unsubscribe/{token}``, ``/preferences/{token}`` and its export."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def _program(self, visit: Visit) -> str:
        program = visit.claim.program
        if program != ALL and program not in LABELS:
            raise bad_link("invalid")
        return program

    def _audit(self, store: Store, action: str, visit: Visit, subject: str) -> None:
        store.audit(
            action,
            self.site.clock(),
            actor="user",
            person=visit.email,
            subject=subject,
            detail={"via": "web"},
        )

    def _preferences_path(self, visit: Visit) -> str:
        return self.site.path(visit, Purpose.PREFERENCES, visit.claim.program, visit.claim.period)

    # -- /unsubscribe/{token} ------------------------------------------------------------
    def _unsubscribe_page(
        self,
        request: Request,
        visit: Visit,
        *,
        choice: str,
        until: str = "",
        problem: str = "",
        said: str = "",
    ) -> HTMLResponse:
        program = self._program(visit)
        return self.site.render(
            request,
            "unsubscribe.html.j2",
            400 if problem else 200,
            title="Fewer emails",
            program=None if program == ALL else program,
            label=label(program),
            choice=choice,
            until=until,
            problem=problem,
            said=said,
            csrf=self.site.csrf(visit),
            preferences=self._preferences_path(visit),
        )

    async def unsubscribe_page(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.UNSUBSCRIBE)
        program = self._program(visit)
        opted = await self.site.call(lambda s: s.unsubscribed_from(visit.email))
        outcome(request, "shown")
        said = ""
        if ALL in opted:
            said = "You already get no email from steadyhand."
        elif program in opted:
            said = f"You already get no {label(program)}."
        choice = "all" if program == ALL else "one"
        return self._unsubscribe_page(request, visit, choice=choice, said=said)

    async def unsubscribe(self, request: Request) -> Response:
        visit = self.site.claim(request, Purpose.UNSUBSCRIBE)
        program = self._program(visit)
        form = await self.site.form(request)
        if "csrf" not in form and form.get("List-Unsubscribe") == "One-Click":
            # RFC 8058: the mail program's button; the signed link is the whole credential
            new = await self.site.call(lambda s: self._opt_out(s, visit, program))
            outcome(request, "one-click: unsubscribed" if new else "one-click: already")
            return PlainTextResponse(f"Unsubscribed: you will get no more {label(program)}.\n")
        self.site.check_post(request, visit, form)
        choice = form.get("choice") or ""
        now = self.site.clock()
        if choice == "pause":
            until = _pause_until(form, visit, now)
            if isinstance(until, str):
                outcome(request, "refused: form shown again")
                return self._unsubscribe_page(
                    request, visit, choice="pause", until=form.get("until") or "", problem=until
                )
            await self.site.call(lambda s: self._pause(s, visit, until))
            outcome(request, "paused")
            heading = f"No emails until the end of {long_date(until)}"
            message = "steadyhand will write again the day after. You can resume sooner below."
        elif choice in ("one", "all") and not (choice == "one" and program == ALL):
            which = program if choice == "one" else ALL
            new = await self.site.call(lambda s: self._opt_out(s, visit, which))
            outcome(request, "unsubscribed" if new else "already unsubscribed")
            heading = "You are unsubscribed" if new else "You were already unsubscribed"
            message = f"You will get no more {label(which)}."
        else:
            outcome(request, "refused: form shown again")
            return self._unsubscribe_page(
                request,
                visit,
                choice="all" if program == ALL else "one",
                problem="Choose one of the options, then press the button.",
            )
        return self.site.render(
            request,
            "message.html.j2",
            title=heading,
            heading=heading,
            message=message,
            preferences=self._preferences_path(visit),
        )

    def _opt_out(self, store: Store, visit: Visit, program: str) -> bool:
        new = store.unsubscribe(visit.email, program, self.site.clock())
        if new:
            self._audit(store, "unsubscribed", visit, program)
        return new

    def _pause(self, store: Store, visit: Visit, until: date | None) -> None:
        store.set_pause(visit.email, until, self.site.clock())
        said = until.isoformat() if until else ""
        self._audit(store, "paused" if until else "resumed", visit, said)

    # -- /preferences/{token} ------------------------------------------------------------
    def _holdings(self, store: Store, visit: Visit) -> dict[str, Any]:
        """What steadyhand holds about the person: their calendars as the store knows
        them (no address or secret beyond the key it shows everywhere), the days of
        events stored, their answers, opt-outs and pause."""
        email = visit.email
        calendars = [
            {
                "name": c.calendar_key.removeprefix(f"{email}:"),
                "kind": c.kind,
                "events": c.event_count,
                "last_read": c.last_ok.isoformat(timespec="seconds") if c.last_ok else None,
            }
            for c in store.calendars()
            if c.owner.lower() == email
        ]
        span = TimeRange(datetime(1970, 1, 2, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
        days = {
            e.range.start.astimezone(visit.tz).date()
            for e in store.events_for(email, span, visit.tz)
        }
        return {
            "calendars": calendars,
            "days": len(days),
            "answers": store.count_answers(email),
            "opted_out": store.unsubscribed_from(email),
            "paused_until": store.paused_until(email),
        }

    async def _preferences_page(
        self,
        request: Request,
        visit: Visit,
        *,
        said: str = "",
        problem: str = "",
        until: str = "",
    ) -> HTMLResponse:
        held = await self.site.call(lambda s: self._holdings(s, visit))
        opted: set[str] = held["opted_out"]
        names = programs_for(self.site.settings, visit.email)
        names += sorted(p for p in opted if p != ALL and p not in names and p in LABELS)
        today = self.site.clock().astimezone(visit.tz).date()
        paused = held["paused_until"]
        return self.site.render(
            request,
            "preferences.html.j2",
            400 if problem else 200,
            title="Your emails and your data",
            programs=[{"name": n, "label": LABELS[n], "on": n not in opted} for n in names],
            no_email=ALL in opted,
            paused=long_date(paused) if paused and paused >= today else "",
            until=until,
            calendars=[
                f"{c['name']} ({c['kind']}, {plural(c['events'], 'event')})"
                for c in held["calendars"]
            ],
            days=f"{held['days']:,}",
            answers=f"{held['answers']:,}",
            csrf=self.site.csrf(visit),
            said=said,
            problem=problem,
            action=f"preferences/{visit.quoted}",
            export=f"preferences/{visit.quoted}/export.json",
        )

    async def preferences_page(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.PREFERENCES)
        outcome(request, "shown")
        return await self._preferences_page(request, visit)

    async def preferences(self, request: Request) -> HTMLResponse:
        visit = self.site.claim(request, Purpose.PREFERENCES)
        form = await self.site.form(request)
        self.site.check_post(request, visit, form)
        action = form.get("action") or ""
        if action == "programs":
            said = await self.site.call(lambda s: self._save_programs(s, visit, form))
        elif action == "pause":
            until = _pause_until(form, visit, self.site.clock())
            if isinstance(until, str):
                outcome(request, "refused: form shown again")
                typed = form.get("until") or ""
                return await self._preferences_page(request, visit, problem=until, until=typed)
            await self.site.call(lambda s: self._pause(s, visit, until))
            said = f"Paused: no emails until the end of {long_date(until)}."
        elif action == "resume":
            await self.site.call(lambda s: self._pause(s, visit, None))
            said = "Resumed: steadyhand writes again from today."
        elif action == "delete_answers":
            if form.get("confirm") != "yes":
                outcome(request, "refused: not confirmed")
                problem = "Tick “Yes, delete them” to delete your answers; nothing was deleted."
                return await self._preferences_page(request, visit, problem=problem)
            gone = await self.site.call(lambda s: self._delete_answers(s, visit))
            said = f"Deleted {plural(gone, 'answer')}."
        else:
            outcome(request, "refused: no action")
            problem = "Use one of the buttons on this page."
            return await self._preferences_page(request, visit, problem=problem)
        outcome(request, action.replace("_", " "))
        return await self._preferences_page(request, visit, said=said)

    def _save_programs(self, store: Store, visit: Visit, form: Form) -> str:
        email = visit.email
        known = programs_for(self.site.settings, email)
        opted = store.unsubscribed_from(email)
        known += [p for p in sorted(opted) if p != ALL and p not in known and p in LABELS]
        wanted = set(form.getlist("program"))
        now = self.site.clock()
        for name in known:
            if name in wanted and name in opted:
                store.resubscribe(email, name)
                self._audit(store, "resubscribed", visit, name)
            elif name not in wanted and name not in opted:
                store.unsubscribe(email, name, now)
                self._audit(store, "unsubscribed", visit, name)
        none = form.get("none") == "yes"
        if none and ALL not in opted:
            store.unsubscribe(email, ALL, now)
            self._audit(store, "unsubscribed", visit, ALL)
        elif not none and ALL in opted:
            store.resubscribe(email, ALL)
            self._audit(store, "resubscribed", visit, ALL)
        if none:
            return "Saved: steadyhand sends you no email."
        return "Saved."

    def _delete_answers(self, store: Store, visit: Visit) -> int:
        gone = store.delete_answers(visit.email)
        self._audit(store, "answers_deleted", visit, str(gone))
        return gone

    # -- /preferences/{token}/export.json ----------------------------------------------------
    def _export(self, store: Store, visit: Visit) -> dict[str, Any]:
        held = self._holdings(store, visit)
        paused = held["paused_until"]
        return {
            "person": visit.email,
            "exported_at": self.site.clock().isoformat(timespec="seconds"),
            "preferences": {
                "paused_until": paused.isoformat() if paused else None,
                "opted_out": sorted(held["opted_out"]),
            },
            "calendars": held["calendars"],
            "days_with_events": held["days"],
            "answers": [
                {
                    "program": a.program,
                    "period": a.period,
                    "question": a.question,
                    "score": a.score,
                    "text": a.text,
                    "created": a.created.isoformat(timespec="seconds"),
                    "updated": a.updated.isoformat(timespec="seconds"),
                }
                for a in store.answers_of(visit.email)
            ],
        }

    async def export(self, request: Request) -> Response:
        visit = self.site.claim(request, Purpose.PREFERENCES)
        data = await self.site.call(lambda s: self._export(s, visit))
        outcome(request, "exported")
        day = self.site.clock().astimezone(visit.tz).date().isoformat()
        return Response(
            json.dumps(data, ensure_ascii=False, indent=2) + "\n",
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="steadyhand-{day}.json"'},
        )
