"""A reflection is about the day it reflects on, in words true when it is sent.

Decided at one moment, an email may go out later (the worker was down, the send was
moved into the next working hours): "today" and "tomorrow" are worded from the reflected
day and the send moment in the recipient's zone, and one sent more than a working day
late is dropped and audited, not sent. The footer and headers name only opt-out routes
that work. Through the real delivery path (``deliver``) where it matters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.memory import MemoryCalendar, RecordingTransport
from tests.conftest import write
from tests.tz import APIA, BERLIN, KATHMANDU, LORD_HOWE, NEW_YORK, SYDNEY, at
from worker import config, mail, programs
from worker.core.model import UTC, Event, Person, WorkingHours, local_day_range
from worker.core.schedule import daily, next_working_day, too_late
from worker.core.wording import coming_day, reflected_day, reflection_at_send, reflection_facts
from worker.cycle import sync as syncing
from worker.cycle.decide import decide as decide_emails
from worker.cycle.deliver import deliver
from worker.cycle.run import run_cycle
from worker.cycle.runtime import Runtime
from worker.programs import samples
from worker.store import Store

CONFIG = """\
timezone: Europe/Berlin
working_hours: {mon-fri: "09:00-17:00"}
people:
  - email: dee@example.com
    name: Dee Park
    timezone: America/New_York
    calendar: {memory: dee}
  - email: cy@example.com
    name: Cy Chen
    working_hours: {mon-thu: "09:00-17:00", fri: off}
    calendar: {memory: cy}
  - email: eli@example.com
    name: Eli Moss
    timezone: America/New_York
    working_hours: {mon-thu: "08:00-16:00", fri: off}
    calendar: {memory: eli}
mail: {from: "Steadyhand <steadyhand@example.com>", transport: memory}
emails:
  reflection: {to: everyone, at: "16:30"}
"""


def meeting(eid: str, start: datetime, hours: float) -> Event:
    return Event(eid, "", start, start + timedelta(hours=hours), attendees=("kim@example.com",))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, RecordingTransport, Path]]:
    path = write(tmp_path / "steadyhand.yaml", CONFIG)
    settings_ = config.load(path)
    calendar = MemoryCalendar(
        {
            "dee": [
                # Wednesday: six hours back to back
                meeting("w1", at(NEW_YORK, "2026-11-04 10:00"), 2),
                meeting("w2", at(NEW_YORK, "2026-11-04 12:00"), 4),
                # Thursday: one over by 10:45, one running then, one to come
                meeting("t1", at(NEW_YORK, "2026-11-05 09:00"), 1),
                meeting("t2", at(NEW_YORK, "2026-11-05 10:30"), 0.75),
                meeting("t3", at(NEW_YORK, "2026-11-05 14:00"), 1),
            ],
            "cy": [
                meeting("c1", at(BERLIN, "2026-11-05 10:00"), 1),
                meeting("c2", at(BERLIN, "2026-11-09 09:30"), 1),
            ],
            "eli": [
                meeting("e1", at(NEW_YORK, "2026-11-05 09:00"), 1),
                meeting("e2", at(NEW_YORK, "2026-11-09 11:00"), 1),
            ],
        }
    )
    transport = RecordingTransport()
    rt = Runtime(
        settings=settings_,
        store=Store(settings_.store_url),
        transport=transport,
        clock=lambda: at(NEW_YORK, "2026-11-04 16:35"),
        calendars={("memory", None): calendar},
    )
    yield rt, transport, path
    rt.close()


def decided(rt: Runtime, now: datetime, email: str) -> int:
    """Sync, decide, and return the id of ``email``'s new reflection row (not sent)."""
    syncing.sync(rt, now)
    decide_emails(rt, now)
    (row,) = [
        r
        for r in rt.store.outbox_rows("pending")
        if r.recipient == email and r.program == "reflection"
    ]
    return row.id


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# -- through the delivery path ------------------------------------------------------------


def test_sent_the_next_morning_it_asks_about_wednesday_and_shows_what_is_left_of_today(
    world,
) -> None:
    rt, transport, _ = world
    row = decided(rt, at(NEW_YORK, "2026-11-04 16:35"), "dee@example.com")
    done = deliver(rt, row, at(NEW_YORK, "2026-11-05 10:45"))  # the worker was down
    assert done.outcome == "sent"
    (message,) = transport.sent
    assert message["Subject"] == "Your day, Wednesday 4 November: 6.0 h in meetings"
    text, html = bodies(message)
    assert "Your Wednesday was heavy: most of your working time went to meetings" in text
    assert "  - What moved forward on Wednesday?\n" in text
    assert "<li>What moved forward on Wednesday?</li>" in html
    # 10:45-11:15 of the running meeting and 14:00-15:00: 1.5 h; 09:00 is not "to come"
    line = "Today, Thursday 5 November, from 10:45: 1.5 h of meetings left, the next at 14:00."
    assert line in text and line in html
    for words in (text, html):
        assert "today?" not in words and "tomorrow" not in words.lower()
        assert "09:00" not in words


def test_sent_on_its_own_day_it_says_today_and_tomorrow_friday(world) -> None:
    rt, transport, _ = world
    row = decided(rt, at(NEW_YORK, "2026-11-05 16:35"), "dee@example.com")
    deliver(rt, row, at(NEW_YORK, "2026-11-05 16:35"))
    text, _ = bodies(transport.sent[0])
    assert "  - What moved forward today?\n" in text
    assert "Tomorrow, Friday 6 November: no meetings." in text


def test_cys_thursday_email_names_monday_not_tomorrow(world) -> None:
    rt, transport, _ = world
    row = decided(rt, at(BERLIN, "2026-11-05 16:35"), "cy@example.com")
    deliver(rt, row, at(BERLIN, "2026-11-05 16:35"))
    text, html = bodies(transport.sent[0])
    assert "  - What moved forward today?\n" in text
    assert "On Monday 9 November: 1.0 h of meetings, the first at 09:30." in text
    assert "tomorrow" not in text.lower() and "tomorrow" not in html.lower()


def test_a_prompt_after_working_hours_goes_the_next_working_morning_worded_for_it(
    world,
) -> None:
    """Eli's hours end at 16:00 and Friday is off: Thursday's 16:30 prompt is sent on
    Monday 08:00, about "your Thursday", with Monday as today."""
    rt, transport, _ = world
    run_cycle(rt, at(NEW_YORK, "2026-11-05 16:35"))
    assert not [m for m in transport.sent if "eli@" in m["To"]]
    run_cycle(rt, at(NEW_YORK, "2026-11-09 08:05"))
    (message,) = [m for m in transport.sent if "eli@" in m["To"]]
    assert message["X-Steadyhand-Key"] == "reflection:eli@example.com:2026-11-05"
    text, _ = bodies(message)
    assert "  - What moved forward on Thursday?\n" in text
    assert "Today, Monday 9 November, from 08:05: 1.0 h of meetings left, the next at 11:00." in (
        text
    )


def test_more_than_a_working_day_late_is_dropped_audited_and_not_a_failure(world, run_cli) -> None:
    rt, transport, path = world
    row = decided(rt, at(NEW_YORK, "2026-11-04 16:35"), "dee@example.com")
    done = deliver(rt, row, at(NEW_YORK, "2026-11-06 09:30"))  # back on Friday
    assert transport.sent == []
    assert done.outcome == "dropped"
    assert done.detail.startswith("more than one working day late")
    (stored,) = [r for r in rt.store.outbox_rows() if r.id == row]
    assert stored.status == "done" and stored.result == f"dropped: {done.detail}"
    (entry,) = [e for e in rt.store.audit_entries("dee@example.com") if e["action"] == "dropped"]
    assert entry["subject"] == "reflection:dee@example.com:2026-11-04"
    assert entry["detail"]["why"] == (
        "more than one working day late: about Wednesday 4 November, it would go out on "
        "Friday 6 November, after the next working day (Thursday 5 November)"
    )
    audit = run_cli("audit", "-c", str(path), "--person", "dee@example.com")
    assert "dropped" in audit.out and "more than one working day late" in audit.out
    doctor = run_cli("doctor", "-c", str(path))
    assert "0 failed" in doctor.out and "failed reflection" not in doctor.out


def test_late_in_new_york_is_by_new_york_dates_not_utc(world) -> None:
    rt, transport, _ = world
    row = decided(rt, at(NEW_YORK, "2026-11-04 16:35"), "dee@example.com")
    deliver(rt, row, at(NEW_YORK, "2026-11-05 23:30"))  # Friday 04:30 UTC
    assert len(transport.sent) == 1  # still Thursday for Dee: one working day late is fine


def test_a_late_reflection_is_left_out_of_its_bundle_and_the_rest_goes(world) -> None:
    rt, transport, _ = world
    row = decided(rt, at(NEW_YORK, "2026-11-04 16:35"), "dee@example.com")
    (reflection,) = [r for r in rt.store.outbox_rows() if r.id == row]
    dee, cy = rt.settings.person("dee@example.com"), rt.settings.person("cy@example.com")
    note = programs.recognize_context(cy, dee, "Thank you for the calm release.")
    parts = [
        {"key": reflection.key, "program": "reflection", "payload": reflection.payload},
        {"key": "recognize:dee@example.com:x", "program": "recognize", "payload": note},
    ]
    now = at(NEW_YORK, "2026-11-06 09:30")
    bundle = rt.store.enqueue(
        "bundle:dee@example.com:2026-11-06",
        "email",
        "bundle",
        "dee@example.com",
        "2026-11-06",
        now,
        {"name": "Dee Park", "first_name": "Dee", "parts": parts},
        now,
    )
    assert bundle is not None
    deliver(rt, bundle, now)
    (message,) = transport.sent
    assert message["Subject"] == "1 note from steadyhand, in one email"
    text, _ = bodies(message)
    assert "Thank you for the calm release." in text and "Wednesday" not in text
    dropped = [e["subject"] for e in rt.store.audit_entries() if e["action"] == "dropped"]
    assert dropped == [reflection.key]


# -- the footer and the headers name only what works ----------------------------------------


def test_without_a_link_no_list_unsubscribe_and_the_footer_names_the_admin_command(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEADYHAND_SECRET_KEY", raising=False)
    rt, transport, _ = world
    run_cycle(rt, at(NEW_YORK, "2026-11-05 16:35"))
    for message in transport.sent:
        assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
        text, html = bodies(message)
        assert "steadyhand unsubscribe " in text and "steadyhand unsubscribe " in html
        for words in (str(message), text, html):
            assert "mailto:" not in words and "reply" not in words.lower()


def test_with_a_link_the_header_and_the_footer_carry_that_one_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEADYHAND_SECRET_KEY", "timing-test-key")
    base = "https://steadyhand.example.com/unsubscribe"
    path = write(
        tmp_path / "steadyhand.yaml",
        CONFIG.replace("transport: memory}", f'transport: memory, unsubscribe_url: "{base}"}}'),
    )
    settings_ = config.load(path)
    calendar = MemoryCalendar({"cy": [meeting("c1", at(BERLIN, "2026-11-05 10:00"), 1)]})
    transport = RecordingTransport()
    rt = Runtime(
        settings_,
        Store(settings_.store_url),
        transport,
        lambda: at(BERLIN, "2026-11-05 16:35"),
        calendars={("memory", None): calendar},
    )
    try:
        run_cycle(rt, at(BERLIN, "2026-11-05 16:35"))
    finally:
        rt.close()
    (message,) = [m for m in transport.sent if "cy@" in m["To"]]
    link = str(message["List-Unsubscribe"])
    assert re.fullmatch(rf"<{re.escape(base)}\?token=[\w.\-]+>", link)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = bodies(message)
    assert f"To unsubscribe, open this link: {link[1:-1]}" in text
    assert f'<a href="{link[1:-1]}"' in html
    assert "mailto:" not in str(message) and "reply" not in text.lower()


@pytest.mark.parametrize(
    "program",
    ["reflection", "recognition", "recognize", "followup", "overload", "digest", "bundle"],
)
@pytest.mark.parametrize("link", [None, "https://steadyhand.example.com/unsubscribe?token=t"])
def test_every_shipped_footer_names_only_routes_that_work(program: str, link: str | None) -> None:
    values = samples.context(program)
    assert values is not None
    values = {**values, "unsubscribe_url": link}
    env = mail.environment(None)
    if program == "bundle":
        values = mail.bundle_context(env, values)
    _, text, html = mail.render(env, program, values)
    for words in (text, html):
        assert "reply" not in words.lower() and "mailto:" not in words
        if link:
            assert link.replace("&", "&amp;") in words
        else:
            assert "steadyhand unsubscribe " in words and "http" not in words


# -- the words, pure -----------------------------------------------------------------------


def test_the_reflected_day_is_today_on_its_day_and_your_weekday_after() -> None:
    wednesday, thursday = date(2026, 11, 4), date(2026, 11, 5)
    assert reflected_day(wednesday, wednesday) == ("today", "today")
    assert reflected_day(wednesday, thursday) == ("your Wednesday", "on Wednesday")
    assert reflected_day(wednesday, wednesday + timedelta(days=7)) == (
        "your Wednesday 4 November",
        "on Wednesday 4 November",
    )


def test_the_next_working_day_is_tomorrow_only_when_it_is_the_next_calendar_day() -> None:
    thursday = date(2026, 11, 5)
    assert coming_day(date(2026, 11, 6), thursday)[0] == "tomorrow, Friday"
    assert coming_day(date(2026, 11, 9), thursday) == ("on Monday", "On Monday 9 November")
    assert coming_day(thursday, thursday) == ("today, Thursday", "Today, Thursday 5 November")
    assert coming_day(date(2026, 11, 16), date(2026, 11, 6))[0] == "on Monday 16 November"


def test_too_late_is_after_the_end_of_the_next_working_day_in_the_recipients_zone() -> None:
    wednesday, thursday = date(2026, 11, 4), date(2026, 11, 5)
    assert too_late(wednesday, thursday, at(NEW_YORK, "2026-11-05 23:59"), NEW_YORK) is None
    assert too_late(wednesday, thursday, at(NEW_YORK, "2026-11-06 00:00"), NEW_YORK)
    # the same instant is still Thursday 17:00 twelve hours west of UTC
    assert (
        too_late(wednesday, thursday, at(NEW_YORK, "2026-11-06 00:00"), ZoneInfo("Etc/GMT+12"))
        is None
    )
    assert too_late(wednesday, thursday, at(NEW_YORK, "2026-11-04 17:00"), NEW_YORK) is None


def person(tz: ZoneInfo, days: range = range(5)) -> Person:
    return Person(
        "p@example.com", "P", tz.key, WorkingHours.of({d: [(time(9), time(17))] for d in days})
    )


def test_a_friday_prompt_moved_past_an_away_monday_is_due_on_tuesday_morning() -> None:
    p = person(BERLIN)
    away = {date(2026, 11, 9)}
    tuesday = at(BERLIN, "2026-11-10 09:05")
    due = daily("reflection", p, time(18, 0), frozenset({4}), tuesday, away, timedelta(hours=4))
    assert due is not None and due.period == "2026-11-06" and due.is_due(tuesday)
    assert next_working_day(p, date(2026, 11, 6), away) == date(2026, 11, 10)


def test_apia_skipped_friday_is_not_a_working_day() -> None:
    thursday = date(2011, 12, 29)
    assert next_working_day(person(APIA), thursday) == date(2012, 1, 2)


def test_lord_howe_half_hour_change_today_from_the_local_time() -> None:
    """Sydney-style weekend work on Lord Howe's 23.5-hour Sunday: the words follow the
    local clock after the half-hour jump."""
    everyday = person(LORD_HOWE, range(7))
    saturday, sunday = date(2026, 10, 3), date(2026, 10, 4)
    values = _values(everyday, saturday, sunday, [at(LORD_HOWE, "2026-10-04 11:00")])
    out = reflection_at_send(values, at(LORD_HOWE, "2026-10-04 09:30"))
    assert out["questions"][0] == "What moved forward on Saturday?"
    assert out["tomorrow"]["sentence"] == (
        "Today, Sunday 4 October, from 09:30: 1.0 h of meetings left, the next at 11:00."
    )


def test_kathmandu_quarter_hour_offset_blocks_already_over_are_not_listed() -> None:
    p = person(KATHMANDU)
    wednesday, thursday = date(2026, 11, 4), date(2026, 11, 5)
    values = _values(p, wednesday, thursday, [])
    values["_reflect"]["blocks"] = [
        [
            "Focus",
            at(KATHMANDU, "2026-11-05 09:00").isoformat(),
            at(KATHMANDU, "2026-11-05 10:00").isoformat(),
        ],
        [
            "Coaching",
            at(KATHMANDU, "2026-11-05 13:15").isoformat(),
            at(KATHMANDU, "2026-11-05 14:00").isoformat(),
        ],
    ]
    late = reflection_at_send(values, at(KATHMANDU, "2026-11-05 10:45"))
    assert late["blocks"] == ["Coaching 13:15–14:00"]
    assert late["blocks_heading"] == "Protected time left today, Thursday:"
    assert (
        late["tomorrow"]["sentence"] == "Today, Thursday 5 November, from 10:45: no more meetings."
    )
    on_time = reflection_at_send(values, at(KATHMANDU, "2026-11-04 16:45"))
    assert on_time["blocks"] == ["Focus 09:00–10:00", "Coaching 13:15–14:00"]
    assert on_time["blocks_heading"] == "Protected time tomorrow, Thursday:"


def test_values_decided_by_an_older_steadyhand_still_render() -> None:
    """A row decided before the words moved to send time (no facts) renders as it did."""
    old = {
        "name": "Ana Lima",
        "first_name": "Ana",
        "email": "ana@example.com",
        "timezone": "Europe/Berlin",
        "day_label": "Monday 23 November",
        "today": samples.context("reflection")["today"],  # type: ignore[index]
        "tomorrow": {
            "label": "Tuesday 24 November",
            "day_off": False,
            "meeting_hours": 2.0,
            "first_meeting": "10:00",
        },
        "blocks": ["Focus 09:00–11:00"],
    }
    filled = reflection_at_send(old, at(BERLIN, "2026-11-23 16:30"))
    _, text, _ = mail.render(mail.environment(None), "reflection", filled)
    assert "Tomorrow, Tuesday 24 November: 2.0 h of meetings, the first at 10:00." in text
    assert "  - What moved forward today?\n" in text and "  - Focus 09:00–11:00" in text


def _values(p: Person, day: date, following: date, starts: list[datetime]) -> dict[str, Any]:
    return {
        "timezone": p.timezone,
        "tomorrow": {"label": "", "day_off": False, "meeting_hours": 0.0},
        "_reflect": reflection_facts(
            day, following, [(s, s + timedelta(hours=1)) for s in starts], []
        ),
    }


# -- the property: the named days never contradict the send moment ----------------------------

ZONES = [LORD_HOWE, APIA, KATHMANDU, NEW_YORK, BERLIN, SYDNEY, ZoneInfo("Pacific/Kiritimati")]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(date(2011, 12, 20), date(2012, 1, 5))
    | st.dates(date(2026, 3, 1), date(2026, 11, 30)),
    gap=st.integers(1, 9),
    minutes=st.integers(0, 12 * 24 * 60),
    starts=st.lists(st.integers(0, 24 * 60 - 1), max_size=4),
)
def test_the_named_days_never_contradict_the_send_moments_local_date(
    zone: ZoneInfo, day: date, gap: int, minutes: int, starts: list[int]
) -> None:
    p = person(zone, range(7))
    following = day + timedelta(days=gap)
    sent = local_day_range(day, zone).start.astimezone(UTC) + timedelta(minutes=minutes)
    sent_on = sent.astimezone(zone).date()
    start = local_day_range(following, zone).start.astimezone(UTC)
    meetings = [start + timedelta(minutes=m) for m in starts]
    late = too_late(day, following, sent, zone)
    assert (late is None) == (sent_on <= following)
    if late is not None:
        return
    out = reflection_at_send(_values(p, day, following, meetings), sent)
    assert (out["day_name"] == "today") == (day == sent_on)
    assert out["questions"][0].endswith("today?") == (day == sent_on)
    when = out["tomorrow"]["when"]
    assert when.startswith("today, ") == (following == sent_on)
    assert when.startswith("tomorrow, ") == (following == sent_on + timedelta(days=1))
    for text, named in (
        (out["day_name"], day),
        (when, following),
        (out["tomorrow"]["sentence"], following),
    ):
        for weekday in WEEKDAYS:
            if weekday in text:
                assert weekday == WEEKDAYS[named.weekday()], (text, named)
    if following == sent_on:  # the words about today start from the send moment
        assert f"from {sent.astimezone(zone):%H:%M}" in out["tomorrow"]["sentence"]
        first = out["tomorrow"]["first_meeting"]
        upcoming = [m for m in meetings if m >= sent]
        assert (first is None) == (not upcoming)
