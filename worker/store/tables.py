"""The store's tables (SQLAlchemy Core) and how it keeps time in them: UTC seconds as
floats. The modules beside it hold the queries (:mod:`worker.store`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from worker.core.model import UTC

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("calendar_key", String(300), primary_key=True),
    Column("id", String(500), primary_key=True),
    Column("owner", String(320), nullable=False),
    Column("start_ts", Float, nullable=False),
    Column("end_ts", Float, nullable=False),
    Column("all_day", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("response", String(16), nullable=False),
    Column("transparency", String(8), nullable=False),
    Column("event_type", String(24), nullable=False),
    Column("attendees", Text, nullable=False),
    Column("organizer", String(320)),
    Column("series_id", String(500)),
    Column("etag", String(200)),
    Column("owned_block_id", String(200)),
    Column("title", Text),  # only with privacy.store_titles
    Column("details", String(64)),  # Event.details: a digest, never the text
    Index("ix_events_owner_start", "owner", "start_ts"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("calendar_key", String(300), primary_key=True),
    Column("owner", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("token", Text),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fingerprint", Text),
    Column("window_start", Float),
    Column("window_end", Float),
    Column("last_attempt_ts", Float),
    Column("last_ok_ts", Float),
    Column("last_error", Text),
    Column("event_count", Integer, nullable=False, default=0),
)

#: Why a calendar's last read kept only part of it (``sync.max_events``…). A table of its
#: own, so that stores made before it still open (create_all adds tables, not columns).
sync_notes = Table(
    "sync_notes",
    metadata,
    Column("calendar_key", String(300), primary_key=True),
    Column("truncated", Text, nullable=False),
)

#: What a calendar's last read read around (docs/calendars.md): each note's text, how many
#: events it concerns and the first few of them (file and UID), one per line.
read_notes = Table(
    "read_notes",
    metadata,
    Column("calendar_key", String(300), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("events", Text, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(500), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # email | calendar
    Column("program", String(32), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("period", String(64), nullable=False),
    Column("due_ts", Float, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | claimed | done | failed
    Column("lease_until_ts", Float),
    Column("claimed_by", String(128)),  # host:pid of the claimer, to spot a dead one
    Column("attempts", Integer, nullable=False, default=0),
    Column("result", Text),
    Column("last_error", Text),
    Column("created_ts", Float, nullable=False),
    Column("done_ts", Float),
    Index("ix_outbox_status_due", "status", "due_ts"),
)

audit_log = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ts", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("person", String(320)),
    Column("action", String(64), nullable=False),
    Column("subject", String(500)),
    Column("detail", Text),
)

blocks = Table(
    "blocks",
    metadata,
    Column("block_id", String(64), primary_key=True),
    Column("owner", String(320), nullable=False),
    Column("calendar_key", String(300), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("event_id", String(500)),
    Column("start_ts", Float, nullable=False),
    Column("end_ts", Float, nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),  # managed | taken_over | deleted
    Column("updated_ts", Float, nullable=False),
    Column("fingerprint", String(64)),  # what else steadyhand wrote (protection.fingerprint)
    Column("writes", Integer, nullable=False, default=0),  # part of each write's key
    Index("ix_blocks_owner", "owner"),
)

unsubscribes = Table(
    "unsubscribes",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("program", String(32), primary_key=True),  # a program, or "*" for all of them
    Column("at_ts", Float, nullable=False),
)

#: What people answered through the web service's links: one row per question of a
#: program's period (a reflection's ``score``, ``moved`` and ``dampened`` for a day). The
#: private journal ("Your last 30 days") is the reflection rows of its owner.
answers = Table(
    "answers",
    metadata,
    Column("person", String(320), primary_key=True),
    Column("program", String(32), primary_key=True),
    Column("period", String(64), primary_key=True),
    Column("question", String(64), primary_key=True),
    Column("score", Integer),
    Column("text", Text),
    Column("created_ts", Float, nullable=False),
    Column("updated_ts", Float, nullable=False),
    Index("ix_answers_program_period", "program", "period"),
    Index("ix_answers_updated", "updated_ts"),
)

#: A person's own choices beyond per-program opt-outs (``unsubscribes``): a pause of every
#: email up to and including ``paused_until`` (an ISO date in their zone).
preferences = Table(
    "preferences",
    metadata,
    Column("person", String(320), primary_key=True),
    Column("paused_until", String(10)),
    Column("updated_ts", Float, nullable=False),
)

#: What a leader tries and records on the dashboard ("no-meeting Wednesdays" from a day),
#: and which figures it should move (comma-separated names, e.g. ``meeting_hours,pulse``).
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("start", String(10), nullable=False),  # an ISO date
    Column("figures", String(500), nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("created_ts", Float, nullable=False),
    Index("ix_experiments_team", "team"),
)

#: The dashboard's magic sign-in links: a digest of each link's token (never the token),
#: whom it was for and when it was made and used (single use; requests per address counted).
sign_ins = Table(
    "sign_ins",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("created_ts", Float, nullable=False),
    Column("used_ts", Float),
    Index("ix_sign_ins_email_created", "email", "created_ts"),
)

ticks = Table(
    "ticks",
    metadata,
    Column("minute", String(32), primary_key=True),
    Column("at_ts", Float, nullable=False),
)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """``items`` in slices of ``size``, so no statement binds more values than a database takes."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
