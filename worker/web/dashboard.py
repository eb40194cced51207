"""``/dashboard``: load and sentiment side by side, per team and ISO week.

A leader sees their own teams, an admin (``admins:``) every team. For each team and each
of the last :data:`WEEKS` weeks: meeting hours (median and spread across members),
after-hours minutes, overloaded days and their reasons, focus time (from the stored
events, for teams of at least ``privacy.min_team_size`` people, as the report does), and
the pulse (mean, distribution, response rate per question), check-in blockers shared with
the leader, partner commitments done. Every pulse figure the viewer could see for a
question and period goes through :func:`worker.core.privacy.shown` together (each team's,
and an all-teams one when the viewer has several), and only the shown ones are drawn.

:func:`build` makes the page's values from the store (no request: the benchmark calls it
too); :class:`DashboardPages` are the routes.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from worker.config import Settings
from worker.core import analysis, privacy, schedule
from worker.core.model import Person, Team, TimeRange, local_day_range
from worker.core.wording import REASON_LABELS
from worker.cycle.runtime import policy
from worker.programs.pulse import Question
from worker.store import Store
from worker.store.figures import Experiment, PulseCounts
from worker.web import charts
from worker.web.pages import Refused, Site, outcome
from worker.web.signin import SESSION_ENDED, Session, SignIn

#: How many weeks the charts show, and how many weeks before an experiment it is compared with.
WEEKS = 12
BEFORE = 4
#: What an experiment may be meant to move.
FIGURES = {
    "meeting_hours": "Meeting hours",
    "after_hours": "After-hours minutes",
    "overloaded": "Overloaded days",
    "focus": "Focus hours",
    "pulse": "Pulse",
}
ALL = "All your teams"
MAX_NAME = 200


week_of = schedule.iso_week


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class LoadWeek:
    meeting_median: float
    meeting_low: float
    meeting_high: float
    after_hours: float
    overloaded: int
    reasons: str
    focus_median: float


def visible_teams(settings: Settings, email: str) -> list[Team]:
    """The teams ``email`` may see: every one for an admin, else those they lead."""
    teams = list(settings.team_models())
    if email in {a.lower() for a in settings.admins}:
        return teams
    return [t for t in teams if t.leader == email]


def questions(settings: Settings, found: Iterable[PulseCounts]) -> list[Question]:
    pulse = settings.emails.pulse
    if pulse is not None:
        return [Question(q.id, q.text, q.low, q.high) for q in pulse.questions]
    ids = sorted({c.question for c in found})
    return [Question(i, i, 1, 5) for i in ids]


def _load(
    store: Store, settings: Settings, team: Team, mondays: Sequence[date]
) -> dict[str, LoadWeek]:
    start, end = mondays[0], mondays[-1] + timedelta(days=6)
    per_person: dict[str, dict[str, list[analysis.DayMetrics]]] = {}
    rules = policy(settings)
    for email in team.everyone:
        person: Person = settings.person(email)
        span = TimeRange(
            local_day_range(start, person.tz).start, local_day_range(end, person.tz).end
        )
        events = store.events_for(email, span, person.tz)
        days = analysis.analyze_days(
            person, events, start, end, rules, meetings_from=settings.meetings_from(email)
        )
        weeks = per_person.setdefault(email, {})
        for d in days:
            weeks.setdefault(week_of(d.date), []).append(d)
    out = {}
    for m in mondays:
        week = week_of(m)
        rows = [per_person[e].get(week, []) for e in team.everyone]
        meeting = [sum(d.meeting_minutes for d in r) / 60 for r in rows]
        focus = [sum(d.focus_minutes for d in r) / 60 for r in rows]
        reasons = Counter(x for r in rows for d in r if d.overloaded for x in d.reasons)
        out[week] = LoadWeek(
            round(statistics.median(meeting), 1),
            round(min(meeting), 1),
            round(max(meeting), 1),
            round(sum(d.after_hours_meeting_minutes for r in rows for d in r)),
            sum(1 for r in rows for d in r if d.overloaded),
            ", ".join(f"{n} {REASON_LABELS.get(k, k)}" for k, n in sorted(reasons.items())),
            round(statistics.median(focus), 1),
        )
    return out


def _by_week(by_day: dict[str, int]) -> Counter[str]:
    weeks: Counter[str] = Counter()
    for day, n in by_day.items():
        try:
            weeks[week_of(date.fromisoformat(day))] += n
        except ValueError:
            continue
    return weeks


def _pulse_cell(
    counts: PulseCounts | None,
    decision: privacy.Decision | None,
    q: Question,
    size: int,
    min_size: int,
    comments: list[str],
) -> dict[str, Any]:
    if counts is None or decision is None:
        return {"question": q.text, "shown": False, "reason": "No answers", "comments": []}
    if not decision.shown:
        return {"question": q.text, "shown": False, "reason": decision.reason, "comments": []}
    mean = counts.mean
    return {
        "question": q.text,
        "shown": True,
        "mean": f"{mean:.1f}" if mean is not None else "",
        "value": round(mean, 2) if mean is not None else None,
        "distribution": [
            {"score": s, "count": counts.histogram.get(s, 0)} for s in range(q.low, q.high + 1)
        ],
        "rate": f"{len(counts.respondents)} of {size}",
        "reason": "",
        "comments": comments,
    }


def build(
    store: Store,
    settings: Settings,
    teams: Sequence[Team],
    today: date,
    experiments: Sequence[Experiment] | None = None,
    only: str | None = None,
) -> dict[str, Any]:
    """The dashboard's values up to the week of ``today`` for ``teams``, every team the
    viewer may see (or, with ``only``, the one of them named so). The pulse figures of
    all of ``teams`` go through the privacy rule either way: looking at one team at a
    time shows nothing the page of all of them withholds."""
    min_size = settings.privacy.min_team_size
    this = monday(today)
    chart_mondays = [this - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    displayed = [t for t in teams if only is None or t.name == only]
    if experiments is None:
        experiments = store.experiments_of([t.name for t in displayed])
    first = chart_mondays[0]
    for e in experiments:
        try:
            first = min(first, monday(date.fromisoformat(e.start)) - timedelta(weeks=BEFORE))
        except ValueError:
            continue
    first = max(first, this - timedelta(weeks=52))
    mondays = [first + timedelta(weeks=i) for i in range((this - first).days // 7 + 1)]
    weeks = [week_of(m) for m in mondays]
    chart_weeks = weeks[-WEEKS:]
    span_days = (mondays[0].isoformat(), (this + timedelta(days=6)).isoformat())

    groups: list[tuple[str, tuple[str, ...]]] = [(f"team:{t.name}", t.everyone) for t in teams]
    if len(teams) > 1:
        union = tuple(sorted({e for t in teams for e in t.everyone}))
        groups.append(("all", union))
    counts = {key: store.pulse_counts(members, weeks[0], weeks[-1]) for key, members in groups}
    figures = [
        privacy.Figure(key, c.question, c.period, c.respondents)
        for key, found in counts.items()
        for c in found
    ]
    decided = privacy.decided(figures, min_size)
    found_counts = {(key, c.question, c.period): c for key, found in counts.items() for c in found}
    asked = questions(settings, (c for found in counts.values() for c in found))

    def pulse_rows(key: str, size: int, members: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        comments: dict[tuple[str, str], list[str]] = {}
        for q, period, text_ in store.shared_comments(members, weeks[0], weeks[-1]):
            comments.setdefault((q, period), []).append(text_)
        return {
            w: [
                _pulse_cell(
                    found_counts.get((key, q.id, w)),
                    decided.get((key, q.id, w)),
                    q,
                    size,
                    min_size,
                    comments.get((q.id, w), []),
                )
                for q in asked
            ]
            for w in weeks
        }

    shown_teams = []
    for team in displayed:
        size = len(team.everyone)
        big = size >= min_size
        load = _load(store, settings, team, mondays) if big else {}
        blockers = _by_week(store.blockers_by_day(team.everyone, *span_days))
        done = _by_week(store.commitments_done_by_day(team.everyone, *span_days))
        pulse = pulse_rows(f"team:{team.name}", size, team.everyone)
        mine = [e for e in experiments if e.team == team.name]
        marks = [(week_of(date.fromisoformat(e.start)), e.name) for e in mine]
        rows = [
            {
                "week": w,
                "load": load.get(w),
                "pulse": pulse[w],
                "blockers": blockers.get(w, 0),
                "done": done.get(w, 0),
            }
            for w in chart_weeks
        ]
        team_charts = []
        if big:
            team_charts.append(
                charts.line(
                    "Meeting hours per person (median)",
                    "h",
                    chart_weeks,
                    [load[w].meeting_median for w in chart_weeks],
                    marks,
                )
            )
            team_charts.append(
                charts.line(
                    "Focus hours per person (median)",
                    "h",
                    chart_weeks,
                    [load[w].focus_median for w in chart_weeks],
                    marks,
                )
            )
        for i, q in enumerate(asked):
            team_charts.append(
                charts.line(
                    f"Pulse: {q.text} (mean)",
                    "",
                    chart_weeks,
                    [pulse[w][i].get("value") for w in chart_weeks],
                    marks,
                    top=q.high,
                )
            )
        shown_teams.append(
            {
                "name": team.name,
                "quoted": quote(team.name, safe=""),
                "size": size,
                "load_shown": big,
                "load_note": ""
                if big
                else (f"Load figures are not shown for teams of fewer than {min_size} people."),
                "rows": rows,
                "charts": team_charts,
                "experiments": [_compare(e, weeks, load, pulse, asked) for e in mine],
            }
        )
    everyone = None
    if len(teams) > 1 and only is None:
        union_size = len({e for t in teams for e in t.everyone})
        pulse = pulse_rows("all", union_size, sorted({e for t in teams for e in t.everyone}))
        everyone = {
            "name": ALL,
            "size": union_size,
            "rows": [{"week": w, "pulse": pulse[w]} for w in chart_weeks],
        }
    return {
        "weeks": chart_weeks,
        "questions": [q.text for q in asked],
        "teams": shown_teams,
        "everyone": everyone,
        "figures": [{"id": k, "label": v} for k, v in FIGURES.items()],
        "min_size": min_size,
    }


def _mean(values: Iterable[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{sum(got) / len(got):.1f}" if got else "—"


def _compare(
    e: Experiment,
    weeks: Sequence[str],
    load: dict[str, LoadWeek],
    pulse: dict[str, list[dict[str, Any]]],
    asked: Sequence[Question],
) -> dict[str, Any]:
    """The four weeks before ``e`` against the weeks since, for load and pulse."""
    start = week_of(date.fromisoformat(e.start))
    since = [w for w in weeks if w >= start]
    at = weeks.index(since[0]) if since else len(weeks)
    before = list(weeks[max(0, at - BEFORE) : at])
    lines = []
    for key, label, pick in (
        ("meeting_hours", "Meeting hours per person (median)", lambda w: w.meeting_median),
        ("after_hours", "After-hours minutes", lambda w: w.after_hours),
        ("overloaded", "Overloaded days", lambda w: float(w.overloaded)),
        ("focus", "Focus hours per person (median)", lambda w: w.focus_median),
    ):
        if load:
            lines.append(
                {
                    "label": label,
                    "aimed": key in e.figures,
                    "before": _mean(pick(load[w]) for w in before if w in load),
                    "since": _mean(pick(load[w]) for w in since if w in load),
                }
            )
    for i, q in enumerate(asked):
        lines.append(
            {
                "label": f"Pulse: {q.text}",
                "aimed": "pulse" in e.figures,
                "before": _mean(pulse[w][i].get("value") for w in before),
                "since": _mean(pulse[w][i].get("value") for w in since),
            }
        )
    return {
        "name": e.name,
        "start": e.start,
        "week": start,
        "aims": ", ".join(FIGURES.get(f, f) for f in e.figures),
        "before_weeks": len(before),
        "since_weeks": len(since),
        "lines": lines,
    }


class DashboardPages:
    """``GET /dashboard`` and ``POST /dashboard/experiments``."""

    def __init__(self, site: Site, signin: SignIn) -> None:
        self.site = site
        self.signin = signin

    def _teams(self, request: Request, session: Session) -> tuple[list[Team], str | None]:
        """The teams the viewer may see, and the one asked for (``?team=``) if any."""
        teams = visible_teams(self.site.settings, session.email)
        wanted = request.query_params.get("team")
        if wanted is None:
            return teams, None
        if wanted not in {t.name for t in teams}:
            raise Refused(
                403,
                "This team is not yours to see",
                "The dashboard shows the teams you lead. Choose one of them from the "
                "dashboard's own page.",
                "refused: another team",
            )
        return teams, wanted

    async def dashboard(self, request: Request) -> Response:
        session, ended = self.signin.session(request)
        if session is None:
            outcome(request, "dashboard: sign in")
            return self.signin.page(request, problem=SESSION_ENDED if ended else "")
        teams, only = self._teams(request, session)
        person = self.site.settings.person(session.email)
        today = self.site.clock().astimezone(person.tz).date()
        values = await self.site.call(
            lambda s: build(s, self.site.settings, teams, today, only=only)
        )
        outcome(request, f"dashboard: {len(values['teams'])} teams")
        return self.site.render(
            request,
            "dashboard.html.j2",
            title="Dashboard",
            csrf=self.signin.csrf(session),
            viewer=person.name,
            today=today.isoformat(),
            said=request.query_params.get("said", "") and "The experiment is recorded.",
            **values,
        )

    async def record(self, request: Request) -> Response:
        session, _ended = self.signin.session(request)
        if session is None:
            raise Refused(
                403,
                "Sign in first",
                "Sign in on the dashboard's page, then record the experiment again.",
                "refused: no session",
            )
        form = await self.site.form(request)
        self.signin.check_post(request, session.cookie, form.get("csrf"))
        team = form.get("team") or ""
        if team not in {t.name for t in visible_teams(self.site.settings, session.email)}:
            raise Refused(
                403,
                "This team is not yours",
                "You can record experiments for the teams you lead.",
                "refused: another team",
            )
        name = " ".join((form.get("name") or "").split())
        chosen = [f for f in form.getlist("figures") if f in FIGURES]
        try:
            start = date.fromisoformat(form.get("start") or "")
        except ValueError:
            start = None
        if not name or len(name) > MAX_NAME or start is None or not chosen:
            raise Refused(
                400,
                "The experiment was not recorded",
                f"Give it a name (up to {MAX_NAME} characters), a start date, and at least "
                "one figure it should move; then send the form again.",
                "refused: incomplete experiment",
            )
        now = self.site.clock()
        await self.site.call(
            lambda s: s.add_experiment(team, name, start.isoformat(), chosen, session.email, now)
        )
        outcome(request, "dashboard: experiment recorded")
        return RedirectResponse(f"../dashboard?team={quote(team, safe='')}&said=1", status_code=303)
