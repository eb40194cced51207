"""The baseline: the store's tables as steadyhand made them before migrations existed.

A store made before then has them already (all, or the older of them): each table is
created only where it is missing, so upgrading such a store keeps every row it holds.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "events",
    "sync_state",
    "sync_notes",
    "read_notes",
    "outbox",
    "audit",
    "blocks",
    "unsubscribes",
    "ticks",
)


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "events" not in have:
        op.create_table(
            "events",
            sa.Column("calendar_key", sa.String(300), primary_key=True),
            sa.Column("id", sa.String(500), primary_key=True),
            sa.Column("owner", sa.String(320), nullable=False),
            sa.Column("start_ts", sa.Float, nullable=False),
            sa.Column("end_ts", sa.Float, nullable=False),
            sa.Column("all_day", sa.Boolean, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("response", sa.String(16), nullable=False),
            sa.Column("transparency", sa.String(8), nullable=False),
            sa.Column("event_type", sa.String(24), nullable=False),
            sa.Column("attendees", sa.Text, nullable=False),
            sa.Column("organizer", sa.String(320)),
            sa.Column("series_id", sa.String(500)),
            sa.Column("etag", sa.String(200)),
            sa.Column("owned_block_id", sa.String(200)),
            sa.Column("title", sa.Text),
            sa.Column("details", sa.String(64)),
        )
        op.create_index("ix_events_owner_start", "events", ["owner", "start_ts"])
    if "sync_state" not in have:
        op.create_table(
            "sync_state",
            sa.Column("calendar_key", sa.String(300), primary_key=True),
            sa.Column("owner", sa.String(320), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("token", sa.Text),
            sa.Column("etag", sa.Text),
            sa.Column("last_modified", sa.Text),
            sa.Column("fingerprint", sa.Text),
            sa.Column("window_start", sa.Float),
            sa.Column("window_end", sa.Float),
            sa.Column("last_attempt_ts", sa.Float),
            sa.Column("last_ok_ts", sa.Float),
            sa.Column("last_error", sa.Text),
            sa.Column("event_count", sa.Integer, nullable=False),
        )
    if "sync_notes" not in have:
        op.create_table(
            "sync_notes",
            sa.Column("calendar_key", sa.String(300), primary_key=True),
            sa.Column("truncated", sa.Text, nullable=False),
        )
    if "read_notes" not in have:
        op.create_table(
            "read_notes",
            sa.Column("calendar_key", sa.String(300), primary_key=True),
            sa.Column("position", sa.Integer, primary_key=True),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("events", sa.Text, nullable=False),
        )
    if "outbox" not in have:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("key", sa.String(500), nullable=False, unique=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("program", sa.String(32), nullable=False),
            sa.Column("recipient", sa.String(320), nullable=False),
            sa.Column("period", sa.String(64), nullable=False),
            sa.Column("due_ts", sa.Float, nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("lease_until_ts", sa.Float),
            sa.Column("claimed_by", sa.String(128)),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("result", sa.Text),
            sa.Column("last_error", sa.Text),
            sa.Column("created_ts", sa.Float, nullable=False),
            sa.Column("done_ts", sa.Float),
        )
        op.create_index("ix_outbox_status_due", "outbox", ["status", "due_ts"])
    if "audit" not in have:
        op.create_table(
            "audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at_ts", sa.Float, nullable=False),
            sa.Column("actor", sa.String(64), nullable=False),
            sa.Column("person", sa.String(320)),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("subject", sa.String(500)),
            sa.Column("detail", sa.Text),
        )
    if "blocks" not in have:
        op.create_table(
            "blocks",
            sa.Column("block_id", sa.String(64), primary_key=True),
            sa.Column("owner", sa.String(320), nullable=False),
            sa.Column("calendar_key", sa.String(300), nullable=False),
            sa.Column("rule", sa.String(32), nullable=False),
            sa.Column("event_id", sa.String(500)),
            sa.Column("start_ts", sa.Float, nullable=False),
            sa.Column("end_ts", sa.Float, nullable=False),
            sa.Column("title", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("updated_ts", sa.Float, nullable=False),
            sa.Column("fingerprint", sa.String(64)),
            sa.Column("writes", sa.Integer, nullable=False),
        )
        op.create_index("ix_blocks_owner", "blocks", ["owner"])
    if "unsubscribes" not in have:
        op.create_table(
            "unsubscribes",
            sa.Column("email", sa.String(320), primary_key=True),
            sa.Column("program", sa.String(32), primary_key=True),
            sa.Column("at_ts", sa.Float, nullable=False),
        )
    if "ticks" not in have:
        op.create_table(
            "ticks",
            sa.Column("minute", sa.String(32), primary_key=True),
            sa.Column("at_ts", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
