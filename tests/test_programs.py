"""The email programs: what a reader sees in each rendered email, built from hand-made inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from tests.tz import BERLIN, NEW_YORK
from worker import mail, programs, report
from worker.core.analysis import DayMetrics, Policy
from worker.core.model import Event, Person, Status, Team, WorkingHours
from worker.programs import samples

HOURS = WorkingHours.of({d: [(time(9), time(17))] for d in range(5)})
ANA = Person("ana@example.com", "Ana Lima", "Europe/Berlin", HOURS)
BO = Person("bo@example.com", "Bo Chen", "America/New_York", HOURS)
CY = Person("cy@example.com", "Cy Park", "Europe/Berlin", HOURS)
DEV = Person("dev@example.com", "Dev Rao", "America/New_York", HOURS)
EVE = Person("eve@example.com", "Eve Moss", "Europe/Berlin", HOURS)
HOSTILE = Person("mal@example.com", "Mal <script>alert(1)</script> & Co", "Europe/Berlin", HOURS)
MONDAY = date(2026, 11, 23)


def day(
    on: date,
    meeting: float = 60,
    *,
    focus: float = 240,
    after: float = 0,
    reasons: Sequence[str] = (),
    away: bool = False,
    chain: float | None = None,
) -> DayMetrics:
    """A day's metrics; a weekend day is a day off (no working minutes, no load)."""
    working = 0.0 if on.weekday() >= 5 else 480.0
    return DayMetrics(
        date=on,
        working_minutes=working,
        meeting_minutes=meeting,
        busy_minutes=meeting,
        meeting_load=(meeting - after) / working if working else None,
        after_hours_meeting_minutes=after,
        double_booked_minutes=0,
        longest_chain_minutes=meeting if chain is None else chain,
        focus_minutes=focus,
        fragmented_minutes=0,
        away=away,
        overloaded=bool(reasons),
        reasons=tuple(reasons),
    )


def week(**special: DayMetrics) -> list[DayMetrics]:
    """Monday 23 to Sunday 29 November 2026: 1 h of meetings a weekday unless ``mon=…``."""
    keys = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    out = []
    for i, key in enumerate(keys):
        on = MONDAY + timedelta(days=i)
        default = day(on) if i < 5 else day(on, 0, focus=0)
        out.append(special.get(key, default))
    return out


def render(program: str, ctx: dict[str, Any]) -> tuple[str, str, str]:
    return mail.render(mail.environment(), program, ctx)


def plain(value: object) -> None:
    """Contexts hold only plain values (docs/privacy.md)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            plain(v)
    elif isinstance(value, list):
        for v in value:
            plain(v)
    else:
        assert value is None or type(value) in {str, int, float, bool}, repr(value)


def flat(text: str) -> str:
    """The text as a reader sees it, whatever the line wrapping."""
    return " ".join(text.split())


FOOTER = "Sent by steadyhand inside your working hours."


def test_every_shipped_template_compiles() -> None:
    assert mail.check_templates(mail.environment()) == []


# -- follow-up ---------------------------------------------------------------------------


def test_agenda_rotates_wins_challenges_development() -> None:
    assert [programs.agenda_topic(n) for n in range(7)] == [
        "wins",
        "challenges",
        "development",
        "wins",
        "challenges",
        "development",
        "wins",
    ]


def test_commitments_from_a_description_with_mixed_markers() -> None:
    description = (
        "Agenda: roadmap\r\n"
        "- [ ] Bo sends the draft by Friday\n"
        "  TODO: book the offsite room\n"
        "todo - ask legal about the contract\n"
        "ACTION: Ana reviews the hiring plan\n"
        "action:   \n"
        "- [x] already done\n"
        "Todoist export is broken\n"
        "* [ ] not our marker\n"
        "Notes: nothing else"
    )
    assert programs.commitments(description) == [
        "Bo sends the draft by Friday",
        "book the offsite room",
        "ask legal about the contract",
        "Ana reviews the hiring plan",
    ]
    assert programs.commitments(None) == []
    assert programs.commitments("") == []
    assert programs.commitments("just notes\nno markers") == []


def test_commitments_from_an_html_description() -> None:
    description = (
        "<p>Notes</p><p>TODO: Bo &amp; Ana pair on the RFC<br>- [ ] Ana shares the deck</p>"
    )
    assert programs.commitments(description) == [
        "Bo & Ana pair on the RFC",
        "Ana shares the deck",
    ]


def one_on_one(**over: Any) -> Event:
    args: dict[str, Any] = {
        "id": "e1",
        "calendar_id": "ana",
        "start": datetime(2026, 11, 24, 10, tzinfo=BERLIN),
        "end": datetime(2026, 11, 24, 10, 30, tzinfo=BERLIN),
        "attendees": ("Bo@Example.com",),
        "organizer": "ana@example.com",
        "series_id": None,
        "title": "Ana / Bo 1:1",
    }
    args.update(over)
    return Event(**args)


@pytest.mark.parametrize(
    "title", ["1:1 Ana/Bo", "Ana <> Bo 1-1", "1on1", "One on one", "weekly 1 on 1", "1-on-1"]
)
def test_a_titled_one_on_one_is_detected(title: str) -> None:
    assert programs.is_one_on_one(one_on_one(title=title), "ana@example.com", "bo@example.com")


def test_one_on_one_detection() -> None:
    leader, member = "ANA@example.com", "bo@example.com"
    assert programs.is_one_on_one(one_on_one(), leader, member)
    # recurring without a telling title
    assert programs.is_one_on_one(one_on_one(title="Sync", series_id="s1"), leader, member)
    # a title read at send time (titles not stored)
    assert programs.is_one_on_one(one_on_one(title=None), leader, member, title="Bo 1:1")
    assert not programs.is_one_on_one(one_on_one(title=None), leader, member)
    assert not programs.is_one_on_one(one_on_one(title="Sync at 11:15"), leader, member)
    assert not programs.is_one_on_one(one_on_one(title="Planning 1/1"), leader, member)
    # a third person, the wrong person, cancelled
    three = one_on_one(attendees=("bo@example.com", "cy@example.com"))
    assert not programs.is_one_on_one(three, leader, member)
    assert not programs.is_one_on_one(one_on_one(), leader, "cy@example.com")
    assert not programs.is_one_on_one(one_on_one(status=Status.CANCELLED), leader, member)
    # the organizer listed among the attendees too is still two people
    both = one_on_one(attendees=("ana@example.com", "bo@example.com"))
    assert programs.is_one_on_one(both, leader, member)


def followup(recipient: Person, other: Person, skipped_twice: bool, items: list[str]) -> Any:
    start = datetime(2026, 11, 24, 16, tzinfo=BERLIN)
    ctx = programs.followup_context(
        recipient,
        other,
        ANA,
        start,
        start + timedelta(minutes=30),
        items,
        programs.agenda_topic(2),
        skipped_twice,
    )
    plain(ctx)
    return render("followup", ctx)


def test_followup_to_both_with_commitments_in_each_ones_zone() -> None:
    items = programs.commitments("- [ ] Bo sends the draft\nAction: Ana books <the room>")
    subject, text, html = followup(ANA, BO, True, items)
    assert subject == "After your 1:1 with Bo: 2 commitments to confirm"
    assert "your 1:1 with Bo Chen (Tuesday 24 November, 16:00–16:30, Europe/Berlin)" in text
    assert "[ ] Bo sends the draft" in text and "[ ] Ana books <the room>" in text
    assert "<li>Ana books &lt;the room&gt;</li>" in html
    assert "Next time: Development." in text
    assert "What would you like to get better at in the next three months?" in text
    flag = "your 1:1 with Bo was skipped twice in a row"
    assert flag in flat(text) and flag in flat(html)

    subject, text, html = followup(BO, ANA, True, items)
    assert subject == "After your 1:1 with Ana: 2 commitments to confirm"
    assert "(Tuesday 24 November, 10:00–10:30, America/New_York)" in text
    assert "skipped" not in text and "skipped" not in html
    assert text.rstrip().endswith("steadyhand unsubscribe bo@example.com --program followup")
    assert FOOTER in html


def test_followup_without_commitments_invites_both_to_add_theirs() -> None:
    subject, text, html = followup(BO, ANA, False, [])
    assert subject == "After your 1:1 with Ana: what did you agree?"
    assert "No commitments were written down in the invitation" in text
    assert "reply to each other with them" in html


def test_followup_refuses_an_unknown_topic() -> None:
    start = datetime(2026, 11, 24, 16, tzinfo=BERLIN)
    with pytest.raises(ValueError, match="unknown agenda topic"):
        programs.followup_context(ANA, BO, ANA, start, start, [], "gossip", False)


def test_followup_escapes_a_hostile_name_in_html() -> None:
    _, text, html = followup(ANA, HOSTILE, False, [])
    assert "<script>" not in html
    assert "Mal &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "Mal <script>alert(1)</script> & Co" in text  # plain text is not HTML


# -- recognition ---------------------------------------------------------------------------


def test_recognition_names_concrete_signals_and_whom_to_thank() -> None:
    heavy = day(MONDAY, 360, focus=30, reasons=("meeting_load", "no_focus"))
    heavy2 = day(MONDAY + timedelta(days=1), 300, focus=0, reasons=("meeting_load", "no_focus"))
    bo = week(mon=heavy, tue=heavy2)  # 6 + 5 + 3 x 1 = 14 h, 2 overloaded days
    cy = week(wed=day(MONDAY + timedelta(days=2), 120, focus=20, reasons=("no_focus",)))
    late = day(MONDAY + timedelta(days=3), 150, after=90, reasons=("after_hours",))
    dev = week(thu=late)
    ctx = programs.recognition_context(
        ANA, "23–29 November", [(CY, cy), (BO, bo), (DEV, dev)], policy=Policy()
    )
    plain(ctx)
    assert [m["name"] for m in ctx["members"]] == ["Cy Park", "Bo Chen", "Dev Rao"]  # not ranked
    assert ctx["heaviest"]["name"] == "Bo Chen"
    assert ctx["most_focus_lost"]["name"] == "Bo Chen"
    assert ctx["members"][1]["focus_lost_minutes"] == 30 + 60
    assert ctx["after_hours"] == [{"name": "Dev Rao", "minutes": 90}]
    assert ctx["suggestions"] == [
        "Recognise Bo for carrying the heaviest load: 14.0 h of meetings, "
        "2 overloaded days, 2 days without focus time.",
        "Thank Cy for keeping things moving with little room to think: 1 working day "
        "without focus time. Ask what could come off their calendar.",
        "Acknowledge the 90 min of meetings Dev took outside working hours, and check it "
        "is not becoming a habit.",
    ]
    subject, text, html = render("recognition", ctx)
    assert subject == "Your team's week (23–29 November): who to thank"
    assert "Recognise Bo for carrying the heaviest load: 14.0 h of meetings" in text
    assert "Bo Chen: 14.0 h of meetings, 2 overloaded days, 2 days without focus time" in text
    assert "Dev Rao: 6.5 h of meetings, 1 overloaded day, 90 min outside working hours" in text
    assert "<li>Recognise Bo for carrying the heaviest load" in html
    assert FOOTER in html and FOOTER in text


def test_recognition_of_a_calm_week_says_so() -> None:
    quiet = [day(MONDAY + timedelta(days=i), 0) for i in range(5)]
    ctx = programs.recognition_context(ANA, "week 48", [(BO, quiet), (CY, quiet)])
    assert ctx["suggestions"] == [] and ctx["heaviest"] is None
    assert ctx["most_focus_lost"] is None and ctx["after_hours"] == []
    _, text, html = render("recognition", ctx)
    assert "A calm week: no one stood out" in text and "A calm week" in html


def test_recognition_escapes_a_hostile_name() -> None:
    ctx = programs.recognition_context(ANA, "week 48", [(HOSTILE, week())])
    _, _, html = render("recognition", ctx)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- recognize ------------------------------------------------------------------------------


def test_recognize_carries_the_leaders_own_note() -> None:
    note = "Thank you for steering the launch.\r\n\r\nThe <b>migration</b> went smoothly\nthanks to you."
    ctx = programs.recognize_context(ANA, BO, note)
    plain(ctx)
    subject, text, html = render("recognize", ctx)
    assert subject == "A note from Ana Lima"
    assert text.startswith("Hi Bo,")
    assert "Thank you for steering the launch.\n\nThe <b>migration</b> went smoothly\n" in text
    assert "The &lt;b&gt;migration&lt;/b&gt; went smoothly<br>thanks to you.</p>" in html
    assert FOOTER in html


def test_recognize_a_hostile_leader_name_cannot_break_the_subject() -> None:
    leader = Person("ana@example.com", "Ana\r\nBcc: everyone@example.com", "Europe/Berlin", HOURS)
    subject, _, html = render("recognize", programs.recognize_context(leader, BO, "Thanks\x00!"))
    assert subject == "A note from Ana Bcc: everyone@example.com"
    assert "Thanks!" in html


# -- overload -------------------------------------------------------------------------------


def test_overload_gives_reasons_in_words_and_what_to_move_or_shorten() -> None:
    days = week(
        mon=day(
            MONDAY, 330, focus=30, chain=200, reasons=("meeting_load", "back_to_back", "no_focus")
        ),
        tue=day(MONDAY + timedelta(days=1), 300, focus=0, reasons=("meeting_load", "no_focus")),
        wed=day(MONDAY + timedelta(days=2), 60, focus=300),
        thu=day(MONDAY + timedelta(days=3), 60, focus=180),
    )[:5]
    heaviest = [
        (
            "Roadmap review",
            datetime(2026, 11, 23, 16, tzinfo=BERLIN),
            datetime(2026, 11, 23, 17, tzinfo=BERLIN),
            3,
        ),
        (
            "a meeting with 6 people",
            datetime(2026, 11, 24, 13, tzinfo=NEW_YORK),
            datetime(2026, 11, 24, 13, 30, tzinfo=NEW_YORK),
            6,
        ),
        (
            "Stand-up",
            datetime(2026, 11, 24, 9, tzinfo=NEW_YORK),
            datetime(2026, 11, 24, 9, 15, tzinfo=NEW_YORK),
            8,
        ),
    ]
    ctx = programs.overload_context(BO, days, heaviest, "the week of 23 November")
    plain(ctx)
    assert ctx["overloaded_count"] == 2
    assert ctx["days"][0]["reason_words"] == report.reason_words(days[0].as_dict())
    subject, text, html = render("overload", ctx)
    assert subject == "A heads-up: the week of 23 November looks heavy on 2 days"
    assert "Monday 23 November: 5.5 h of meetings (69 % of your working time)" in text
    assert "- 69 % of working time in meetings" in text
    assert "- 200 min back to back" in text
    assert "- only 30 min of focus time" in text
    # Berlin 16:00 is New York 10:00; Wednesday is the lightest other day
    assert (
        "Move Roadmap review (Mon 23 Nov 10:00–11:00) to Wednesday 25 November, which still "
        "has 5.0 h of uninterrupted time." in text
    )
    assert "Shorten a meeting with 6 people (Tue 24 Nov 13:00–13:30) from 30 to 25 min" in text
    assert "Ask whether Stand-up (Tue 24 Nov 09:00–09:15) needs you there." in text
    assert "<li>only 30 min of focus time</li>" in html
    assert FOOTER in html and FOOTER in text


def test_overload_of_one_day_shortens_rather_than_moves() -> None:
    tomorrow = day(MONDAY, 400, focus=0, reasons=("meeting_load", "no_focus"))
    meeting = (
        "1:1 <Bo>",
        datetime(2026, 11, 23, 9, tzinfo=BERLIN),
        datetime(2026, 11, 23, 10, tzinfo=BERLIN),
        2,
    )
    ctx = programs.overload_context(ANA, [tomorrow], [meeting], "tomorrow")
    subject, text, html = render("overload", ctx)
    assert subject == "A heads-up: tomorrow looks heavy"
    assert ctx["meetings"][0]["action"] == "shorten"
    assert "Shorten 1:1 <Bo> (Mon 23 Nov 09:00–10:00) from 60 to 50 min" in text
    assert "Shorten 1:1 &lt;Bo&gt;" in html


# -- digest ---------------------------------------------------------------------------------


def team_report(min_team_size: int, people: Sequence[Person]) -> dict[str, Any]:
    by_email = {
        BO.email: week(
            mon=day(MONDAY, 420, focus=0, reasons=("meeting_load", "no_focus")),
            sat=day(MONDAY + timedelta(days=5), 60, focus=0, after=60, reasons=("after_hours",)),
        ),
        ANA.email: week(tue=day(MONDAY + timedelta(days=1), 200)),
        CY.email: week(
            **{
                k: day(MONDAY + timedelta(days=i), 0, away=True)
                for i, k in enumerate(("mon", "tue", "wed", "thu", "fri"))
            }
        ),
    }
    rows = [(p, by_email.get(p.email, week())) for p in people]
    team = Team("Platform", ANA.email, tuple(p.email for p in people if p != ANA))
    return report.build(MONDAY, MONDAY + timedelta(days=6), rows, [team], min_team_size)


FIVE = (ANA, BO, CY, DEV, HOSTILE)
NAMES = {p.email: p.name for p in FIVE}


def test_digest_is_an_email_safe_heat_map() -> None:
    ctx = programs.digest_context(ANA, "Platform", team_report(5, FIVE), NAMES, 5)
    plain(ctx)
    assert not ctx["withheld"]
    assert [c["label"] for c in ctx["columns"]] == [
        "Mon 23",
        "Tue 24",
        "Wed 25",
        "Thu 26",
        "Fri 27",
        "Sat 28",
    ]  # Sunday: nobody met
    bo = ctx["rows"][1]
    assert bo["cells"][0] == {
        "text": "7.0",
        "bg": "#08306b",
        "fg": "#ffffff",
        "overloaded": True,
        "title": "overloaded: 88 % of working time in meetings; no focus time",
    }
    assert bo["cells"][1]["bg"] == "#eef4fb" and not bo["cells"][1]["overloaded"]
    assert bo["cells"][5]["title"] == "overloaded: 60 min of meetings outside working hours"
    assert ctx["rows"][2]["cells"][0]["text"] == "away"

    subject, text, html = render("digest", ctx)
    assert subject == "Team load for Platform, 23–29 November 2026: 2 overloaded days"
    assert '<td align="right" bgcolor="#08306b"' in html
    assert "background-color: #08306b; color: #ffffff;" in html
    assert "<strong>7.0!</strong>" in html
    assert "Bo Chen, Mon 23 Nov: 88 % of working time in meetings, no focus time" in text
    assert "Above 1.5× the median" not in text and "Above 1.5x the median: Bo Chen" in text
    assert "Above 1.5&times; the median: Bo Chen" in html
    # the hostile name is escaped, and nothing in the HTML runs or loads
    assert "Mal &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    lowered = html.lower()
    for banned in ("<script", "<svg", "http:", "https:", "<link", "<img", "url(", "<style"):
        assert banned not in lowered, banned
    assert FOOTER in html and FOOTER in text


def test_digest_text_fallback_is_an_aligned_table() -> None:
    ctx = programs.digest_context(ANA, "Platform", team_report(5, FIVE), NAMES, 5)
    _, text, _ = render("digest", ctx)
    lines = text.splitlines()
    header = next(line for line in lines if "Mon 23" in line)
    bo = next(line for line in lines if line.startswith("Bo Chen"))
    cy = next(line for line in lines if line.startswith("Cy Park"))
    assert re.search(r"Mon 23\s+Tue 24\s+Wed 25\s+Thu 26\s+Fri 27\s+Sat 28\s+total", header)
    assert bo.split() == ["Bo", "Chen", "7.0!", "1.0", "1.0", "1.0", "1.0", "1.0!", "12.0"]
    assert cy.split()[2:7] == ["away"] * 5
    assert len({len(header.rstrip()), len(bo.rstrip()), len(cy.rstrip())}) == 1
    mal = next(line for line in lines if line.startswith("Mal"))
    assert mal.startswith("Mal <script>alert(1)</s…")  # cut to the name column
    assert len(mal.rstrip()) == len(bo.rstrip())


def test_digest_of_a_small_team_carries_no_per_person_figures() -> None:
    small = (ANA, BO, CY)
    ctx = programs.digest_context(ANA, "Platform", team_report(5, small), NAMES, 5)
    plain(ctx)
    assert ctx["withheld"] and ctx["rows"] == [] and ctx["summary"] is None
    subject, text, html = render("digest", ctx)
    assert subject == "Team load for Platform, 23–29 November 2026"
    line = (
        "Team figures are shared only for teams of at least 5 people, so that no one's "
        "calendar can be singled out. This digest shows no per-person figures for "
        "Platform, which is below that threshold."
    )
    assert line in text
    assert line.replace("'", "&#39;") in html
    for who in ("Bo", "Cy", "7.0"):
        assert who not in text and who not in html
    assert "<table" not in html


def test_digest_withholds_when_the_report_lacks_the_team_even_if_others_pass() -> None:
    rep = team_report(5, FIVE)
    rep["teams"][0]["name"] = "Another team"
    ctx = programs.digest_context(ANA, "Platform", rep, NAMES, 5)
    assert ctx["withheld"] and ctx["rows"] == []


def test_digest_for_a_leader_without_a_named_team() -> None:
    empty = {"period": {"start": "2026-11-23", "end": "2026-11-29"}, "people": [], "teams": []}
    ctx = programs.digest_context(ANA, "", empty, {}, 5)
    subject, text, _ = render("digest", ctx)
    assert subject == "Team load for your team, 23–29 November 2026"
    assert "no per-person figures for your team, which is below that threshold" in flat(text)


def test_every_registered_program_has_its_two_templates_and_renders_its_sample() -> None:
    env = mail.environment(None)
    shipped = set(env.list_templates(extensions=["j2"]))
    for name in programs.PROGRAMS:
        assert {f"{name}.txt.j2", f"{name}.html.j2"} <= shipped, name
        values = samples.context(name)
        assert values is not None, name
        if name == "bundle":
            values = mail.bundle_context(env, values)
        subject, text, html = mail.render(env, name, values)
        assert subject.strip() and text.strip() and "<" in html, name
    assert samples.context("report") is None  # a template, not an email program
    assert mail.check_templates(env) == []
