"""A representative set of template values per email program, for ``config check``.

``config check`` renders each program's templates once with these values, inside the
render budget (:mod:`worker.sandbox`), so a template that fails or runs away fails the
check instead of the row at send time. The values are made by the same functions that
make the real ones (:mod:`worker.programs`, :mod:`worker.core.wording`,
:func:`worker.report.build`), from a small made-up team, so they carry every key a
template may use.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from worker import programs, report
from worker.core import wording
from worker.core.analysis import DayMetrics
from worker.core.model import Person, Team, WorkingHours
from worker.programs import bundle, checkin, checkin_blockers, checkin_digest, partners, pulse

MONDAY = date(2026, 11, 23)
_HOURS = WorkingHours.of({d: [(time(9), time(17))] for d in range(5)})
LEADER = Person("lead@example.com", "Lee Leader", "Europe/Berlin", _HOURS)
MEMBERS = tuple(
    Person(f"m{i}@example.com", name, "Europe/Berlin", _HOURS)
    for i, name in enumerate(("Ana Lima", "Bo Berg", "Cy Chen", "Dee Park", "Eli Moss"))
)


#: The sample pulse's questions: both scales.
PULSE = (
    pulse.Question("workload", "How sustainable was your workload this week?", 1, 5),
    pulse.Question("recommend", "How likely would you recommend the team to a friend?", 0, 10),
)


def _day(on: date, meeting: float, reasons: tuple[str, ...] = ()) -> DayMetrics:
    working = 0.0 if on.weekday() >= 5 else 480.0
    return DayMetrics(
        date=on,
        working_minutes=working,
        meeting_minutes=meeting,
        busy_minutes=meeting,
        meeting_load=meeting / working if working else None,
        after_hours_meeting_minutes=30.0 if reasons else 0.0,
        double_booked_minutes=0.0,
        longest_chain_minutes=meeting,
        focus_minutes=max(0.0, working - meeting) if not reasons else 0.0,
        fragmented_minutes=0.0,
        away=False,
        overloaded=bool(reasons),
        reasons=reasons,
    )


def _week(heavy: bool) -> list[DayMetrics]:
    days = []
    for i in range(7):
        on = MONDAY + timedelta(days=i)
        if i == 1 and heavy:
            days.append(_day(on, 400, ("meeting_load", "no_focus", "after_hours")))
        else:
            days.append(_day(on, 60 if i < 5 else 0))
    return days


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


#: Where the sample links point (``linked=True``): shaped like the real ones.
SAMPLE_BASE = "https://steadyhand.example.com"


def links(program: str, linked: bool) -> dict[str, Any]:
    """The ``links`` value of a ``program`` email: every value None (no secret key or no
    ``web.base_url``), or with ``linked`` sample URLs shaped like the real ones."""

    def url(purpose: str, query: str = "") -> str | None:
        return f"{SAMPLE_BASE}/{purpose}/sample-{purpose}-token{query}" if linked else None

    values: dict[str, Any] = {"unsubscribe": url("unsubscribe"), "preferences": url("preferences")}
    if program == "reflection":
        values["scores"] = (
            [
                {
                    "score": n,
                    "label": {1: "rough", 5: "great"}.get(n, ""),
                    "url": url("answer", f"?score={n}"),
                }
                for n in range(1, 6)
            ]
            if linked
            else []
        )
        values["note"], values["journal"] = url("answer"), url("journal")
    if program == "pulse":
        values["answer"] = url("answer")
        values["questions"] = (
            {
                q.id: [{"score": n, "url": url("answer", f"?q={q.id}&score={n}")} for n in q.scores]
                for q in PULSE
            }
            if linked
            else {}
        )
    if program == "checkin":
        values["form"] = url("answer")
    if program == "partners":
        values["commitments"] = (
            {
                c.id: {s: url("answer", f"?line={c.line}&status={s}") for s in ("done", "still")}
                for c in _OWN
            }
            if linked
            else {}
        )
    return values


#: A member's own commitments in the sample partners email.
_OWN = (
    partners.Commitment(MONDAY, 1, "Ship the import fix", 1),
    partners.Commitment(MONDAY + timedelta(days=1), 2, "Review the roadmap draft"),
)


def context(program: str, linked: bool = False) -> dict[str, Any] | None:
    """Values for ``program``'s templates; None for a name that is not a program. Every
    program also sees ``links`` and ``unsubscribe_url`` (None here, as without a secret
    key; with ``linked``, sample URLs, so both ways a template can go are tried)."""
    values = _context(program, linked) if program in programs.PROGRAMS else None
    if values is None:
        return None
    made = links(program, linked)
    return {**values, "links": made, "unsubscribe_url": made["unsubscribe"]}


def _context(program: str, linked: bool) -> dict[str, Any] | None:
    leader, member = LEADER, MEMBERS[0]
    if program == "reflection":
        tuesday = MONDAY + timedelta(days=1)
        decided = {
            "name": member.name,
            "first_name": wording.first_name(member),
            "email": member.email,
            "timezone": member.timezone,
            "day_label": wording.day_label(MONDAY),
            "today": {
                "meeting_hours": 5.5,
                "meeting_load": 0.69,
                "meeting_load_pct": 69,
                "longest_chain_hours": 3.0,
                "focus_hours": 1.0,
                "after_hours_meeting_minutes": 30,
                "reasons": ["meeting_load"],
                "reasons_text": wording.reason_felt(["meeting_load"]),
            },
            "tomorrow": {
                "label": wording.day_label(tuesday),
                "day_off": False,
                "meeting_hours": 2.0,
            },
            "_reflect": wording.reflection_facts(
                MONDAY,
                tuesday,
                [(_at(tuesday, 9), _at(tuesday, 10)), (_at(tuesday, 13), _at(tuesday, 14))],
                [("Focus", _at(tuesday, 7), _at(tuesday, 9))],
            ),
        }
        return wording.reflection_at_send(decided, _at(MONDAY, 15) + timedelta(minutes=30))
    if program == "recognition":
        members = [(m, _week(heavy=i % 2 == 0)) for i, m in enumerate(MEMBERS)]
        return programs.recognition_context(leader, "23–29 November", members)
    if program == "recognize":
        return programs.recognize_context(
            leader, member, "Thank you for the calm review.\n\nIt helped."
        )
    if program == "followup":
        return programs.followup_context(
            member,
            leader,
            leader,
            _at(MONDAY, 9),
            _at(MONDAY, 10),
            ["Ana: draft the plan"],
            "wins",
            True,
        )
    if program == "overload":
        heaviest = [
            ("Planning", _at(MONDAY + timedelta(days=1), 9), _at(MONDAY + timedelta(days=1), 11), 3)
        ]
        return programs.overload_context(member, _week(heavy=True), heaviest, "the next 7 days")
    if program == "digest":
        people = [(p, _week(heavy=i == 1)) for i, p in enumerate((leader, *MEMBERS))]
        team = Team("Platform", leader.email, tuple(m.email for m in MEMBERS))
        built = report.build(MONDAY, MONDAY + timedelta(days=6), people, [team], 5)
        names = {p.email: p.name for p, _ in people}
        return programs.digest_context(leader, team.name, built, names, 5)
    if program == "pulse":
        return pulse.context(member, "2026-W48", PULSE, 5)
    if program == "checkin":
        return checkin.context(member, MONDAY)
    if program == "checkin_blockers":
        blockers = [
            checkin_blockers.Blocker(MEMBERS[1].name, MONDAY, "Waiting for API keys", "Tight week"),
            checkin_blockers.Blocker(
                MEMBERS[2].name, MONDAY - timedelta(days=3), "No test data", ""
            ),
        ]
        return checkin_blockers.context(leader, MONDAY, blockers)
    if program == "checkin_digest":
        shared = [
            checkin_digest.Shared(member.name, ("Ship the import fix", "Pair with Bo"), ""),
            checkin_digest.Shared(MEMBERS[1].name, ("Review the roadmap",), "Waiting for keys"),
        ]
        done = [
            checkin_digest.Done(MEMBERS[2].name, "Write the runbook"),
            checkin_digest.Done(None, ""),
        ]
        return checkin_digest.context(member, MONDAY, "Platform", shared, done)
    if program == "partners":
        theirs = [partners.Commitment(MONDAY, 1, "Draft the hiring plan", 0)]
        return partners.context(member, "2026-W48", [(MEMBERS[1], theirs)], list(_OWN), False)
    if program == "bundle":
        parts = [
            {"key": f"{p}:{member.email}:2026-11-23", "program": p, "payload": context(p, linked)}
            for p in ("reflection", "overload")
        ]
        return bundle.context(member, parts)
    return None
