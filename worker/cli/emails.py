"""``steadyhand emails preview``, ``recognize`` and ``unsubscribe``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from worker import mail
from worker.cli.app import ConfigOpt, NowOpt, _now, _runtime, _settings, app, err, out
from worker.core.errors import Problem, UserError
from worker.core.model import TimeRange, local_day_range
from worker.cycle import decide as emails
from worker.cycle.deliver import deliver
from worker.cycle.figures import ensure_synced
from worker.programs import PREVIEWED

emails_app = typer.Typer(help="Look at the email programs.", no_args_is_help=True)
app.add_typer(emails_app, name="emails")
PROGRAMS = PREVIEWED


@emails_app.command("preview")
def preview(
    program: Annotated[str, typer.Argument(help=" | ".join(PREVIEWED))],
    to: Annotated[str, typer.Option("--to", help="The recipient (email).")],
    day: Annotated[str | None, typer.Option("--date", help="The day it is about.")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the HTML part here.")
    ] = None,
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """Render one email as it would be sent, without sending it."""
    if program not in PROGRAMS:
        raise UserError(
            Problem(f"no email program named {program!r}", "use " + ", ".join(PROGRAMS))
        )
    settings = _settings(config)
    moment = _now(now, settings)
    person = settings.person(to)
    try:
        wanted = date.fromisoformat(day) if day else moment.astimezone(person.tz).date()
    except ValueError:
        raise UserError(
            Problem(f"--date {day!r} is not a date", "write it like 2026-11-05")
        ) from None
    rt = _runtime(settings)
    span = TimeRange(
        local_day_range(wanted, person.tz).start, local_day_range(wanted, person.tz).end
    )
    ensure_synced(rt, list(settings.persons()), span, moment)
    values = emails.preview(rt, program, person.email, wanted, moment)
    env = mail.environment(
        settings.path(settings.mail.templates) if settings.mail.templates else None
    )
    subject, text, html_part = mail.render(env, program, values)
    out.print(f"To: {person.name} <{person.email}>", markup=False)
    out.print(f"Subject: {subject}\n", markup=False)
    out.print(text, markup=False)
    if html:
        html.write_text(html_part, encoding="utf-8")
        err.print(f"wrote {html}", markup=False)


@app.command()
def recognize(
    email: Annotated[str, typer.Argument(help="Who you recognise (email).")],
    text: Annotated[str, typer.Option("--for", help="What for, in your words.")],
    sender: Annotated[str | None, typer.Option("--from", help="The leader sending it.")] = None,
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """Send your own note of recognition to a team member (cc you), in their working hours."""
    settings = _settings(config)
    moment = _now(now, settings)
    rt = _runtime(settings, moment)
    due, row_id = emails.recognize(rt, email, text, sender, moment)
    person = settings.person(email)
    if due.at <= moment and row_id is not None:
        done = deliver(rt, row_id, moment)  # this note only: other due rows are the worker's
        if done.outcome == "unsubscribed":
            raise UserError(
                Problem(
                    f"the note to {person.email} was not sent: they opted out of these emails",
                    f"tell them in person (`steadyhand audit --person {person.email}` shows it)",
                )
            )
        if done.outcome != "sent":
            raise UserError(
                Problem(
                    f"the note to {person.email} was not sent: {done.outcome} {done.detail}",
                    "see `steadyhand doctor`; the worker retries it if it can",
                )
            )
        out.print(f"Sent to {person.name} <{person.email}>.", markup=False)
    else:
        local = due.at.astimezone(person.tz)
        out.print(
            f"Queued: it reaches {person.name} at {local:%a %d %b %H:%M} {person.timezone}, "
            "inside their working hours (the worker sends it).",
            markup=False,
        )


@app.command()
def unsubscribe(
    email: Annotated[str, typer.Argument(help="Who opts out.")],
    program: Annotated[str | None, typer.Option("--program", help="Only this program.")] = None,
    config: ConfigOpt = None,
    now: NowOpt = None,
) -> None:
    """Stop emails to EMAIL (all programs, or one). Honoured before every send."""
    if program is not None and program not in (*PROGRAMS, "recognize"):
        raise UserError(
            Problem(f"no email program named {program!r}", "use " + ", ".join(PROGRAMS))
        )
    settings = _settings(config)
    rt = _runtime(settings)
    moment = _now(now, settings)
    new = rt.store.unsubscribe(email, program or "*", moment)
    what = f"{program} emails" if program else "emails from steadyhand"
    if new:
        rt.store.audit(
            "unsubscribed", moment, actor="user", person=email.lower(), subject=program or "*"
        )
        out.print(f"{email} will get no more {what}.", markup=False)
    else:
        out.print(f"{email} had already opted out of {what}.", markup=False)
