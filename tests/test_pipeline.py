"""The main job end to end on memory calendars: sync, measure, decide, send exactly once.

The Huey tasks run in immediate mode (as huey's own test_immediate does), so the tick,
the send task and the sweeper are exercised without a consumer process.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from huey import MemoryHuey

from connectors.memory import MemoryCalendar, RecordingTransport
from tests.conftest import write
from tests.tz import BERLIN, NEW_YORK, at
from worker import config
from worker.core.errors import TransientError
from worker.core.model import Event, Response
from worker.cycle import sync as syncing
from worker.cycle.decide import decide as decide_emails
from worker.cycle.deliver import LEASE
from worker.cycle.run import run_cycle
from worker.cycle.runtime import Runtime
from worker.queue.tasks import register
from worker.store import Store

CONFIG = """\
timezone: Europe/Berlin
working_hours: {mon-fri: "09:00-17:00"}
people:
  - email: ana@example.com
    name: Ana Lima
    working_hours: {mon-fri: "09:00-12:30, 13:30-17:30"}
    calendar: {memory: ana}
  - email: dee@example.com
    name: Dee Park
    timezone: America/New_York
    calendar: {memory: dee}
teams:
  - name: Platform
    leader: ana@example.com
    members: [dee@example.com]
mail: {from: "Steadyhand <steadyhand@example.com>", transport: memory}
emails:
  reflection: {to: everyone, at: "16:30"}
"""


def meeting(eid: str, start: datetime, hours: float, **kw: object) -> Event:
    return Event(
        eid,
        "",
        start,
        start + timedelta(hours=hours),
        attendees=("ana@example.com", "dee@example.com"),
        **kw,
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> tuple[Runtime, MemoryCalendar, RecordingTransport, Clock]:
    settings = config.load(write(tmp_path / "steadyhand.yaml", CONFIG))
    calendar = MemoryCalendar(
        {
            "ana": [
                meeting("m1", at(BERLIN, "2026-11-05 09:00"), 4),
                meeting("m2", at(BERLIN, "2026-11-05 14:00"), 1, response=Response.DECLINED),
                meeting("m3", at(BERLIN, "2026-11-06 10:00"), 1),
            ],
            "dee": [meeting("m1", at(BERLIN, "2026-11-05 09:00"), 4)],
        }
    )
    transport = RecordingTransport()
    clock = Clock(at(BERLIN, "2026-11-05 16:45"))
    rt = Runtime(
        settings=settings,
        store=Store(settings.store_url),
        transport=transport,
        clock=clock,
        calendars={("memory", None): calendar},
    )
    return rt, calendar, transport, clock


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_reflection_goes_to_whoever_is_inside_working_hours_now(world) -> None:
    rt, _, transport, clock = world
    report = run_cycle(rt, clock())
    assert [r.outcome for r in report.syncs] == ["read", "read"]
    (message,) = transport.sent  # 16:45 Berlin is 10:45 in New York: Dee's comes later
    assert message["To"] == "Ana Lima <ana@example.com>"
    assert message["Subject"] == "Your day, Thursday 5 November: 4.0 h in meetings"
    assert message["X-Steadyhand-Key"] == "reflection:ana@example.com:2026-11-05"
    assert message["List-Unsubscribe"] is None  # no link configured: nothing to act on
    assert message.get_content_type() == "multipart/alternative"
    text, html = bodies(message)
    assert "Hi Ana," in text
    assert "Meetings        4.0 h (47 % of your working time)\n" in text  # 3.5 h of 7.5 h
    assert "Outside hours   30 min of meetings outside your working hours" in text  # lunch
    assert "Tomorrow, Friday 6 November: 1.0 h of meetings, the first at 10:00." in text
    assert "<strong>4.0 h</strong>" in html

    clock.now = at(NEW_YORK, "2026-11-05 16:40")
    run_cycle(rt, clock())
    assert [m["To"] for m in transport.sent] == [
        "Ana Lima <ana@example.com>",
        "Dee Park <dee@example.com>",
    ]


def test_a_second_cycle_sends_nothing_new(world) -> None:
    rt, _, transport, clock = world
    run_cycle(rt, clock())
    again = run_cycle(rt, clock() + timedelta(minutes=5))
    assert again.decided == [] and again.deliveries == []
    assert len(transport.sent) == 1
    assert [r.outcome for r in again.syncs] == ["unchanged", "unchanged"]


def test_nothing_is_sent_outside_working_hours(world) -> None:
    rt, _, transport, _clock = world
    for moment in (
        at(BERLIN, "2026-11-05 17:45"),
        at(BERLIN, "2026-11-07 16:45"),
    ):  # evening; Saturday
        run_cycle(rt, moment)
    assert transport.sent == []


def test_html_values_are_escaped(world, tmp_path: Path) -> None:
    rt, _, transport, clock = world
    people = tuple(
        p.model_copy(update={"name": "<b>Ana</b> & Co"}) if p.email.startswith("ana") else p
        for p in rt.settings.people
    )
    rt.settings = rt.settings.model_copy(update={"people": people})
    run_cycle(rt, clock())
    _, html = bodies(transport.sent[0])
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<b>Ana</b>" not in html


def test_a_transient_send_failure_is_retried_later_and_sent_once(world) -> None:
    rt, _, transport, clock = world
    calls: list[str] = []
    real_send = transport.send

    def flaky(message: EmailMessage) -> str:
        calls.append(message["Message-ID"])
        if len(calls) == 1:
            raise TransientError("421 try again", retry_after=90)
        return real_send(message)

    transport.send = flaky  # type: ignore[method-assign]
    first = run_cycle(rt, clock())
    assert [d.outcome for d in first.deliveries] == ["retry"]
    assert run_cycle(rt, clock() + timedelta(seconds=60)).deliveries == []
    later = run_cycle(rt, clock() + timedelta(seconds=95))
    assert [d.outcome for d in later.deliveries] == ["sent"]
    assert len(transport.sent) == 1 and calls[0] == calls[1]


def _huey(rt: Runtime) -> tuple[MemoryHuey, Callable[..., object]]:
    huey = MemoryHuey("test", immediate=True, results=False, utc=True)
    return huey, register(huey, rt)


def test_tick_task_decides_and_sends_and_runs_once_per_minute(world) -> None:
    rt, _, transport, _ = world
    _, tasks = _huey(rt)
    tasks.tick()
    tasks.tick()  # same minute: the store says it ran already
    assert len(transport.sent) == 1
    assert [r.status for r in rt.store.outbox_rows()] == ["done"]


def test_sweeper_finishes_a_send_whose_worker_died_mid_claim(world) -> None:
    rt, _, transport, clock = world
    syncing.sync(rt, clock())
    (row_id,) = decide_emails(rt, clock())
    assert rt.store.claim(row_id, clock(), LEASE) is not None  # the worker died here
    _, tasks = _huey(rt)
    tasks.sweep()
    assert transport.sent == []  # its lease still runs
    clock.now += LEASE + timedelta(minutes=1)
    tasks.sweep()
    assert len(transport.sent) == 1
    (row,) = rt.store.outbox_rows()
    assert (row.status, row.attempts) == ("done", 2)


def test_message_id_is_derived_from_the_key_so_a_resend_is_recognisable(world) -> None:
    rt, _, transport, clock = world
    run_cycle(rt, clock())
    parsed = email.message_from_bytes(transport.sent[0].as_bytes())
    from worker.mail import message_id

    assert parsed["Message-ID"] == message_id(
        "reflection:ana@example.com:2026-11-05", "example.com"
    )
