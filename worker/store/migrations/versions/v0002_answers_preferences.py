"""What people tell steadyhand through the web service: ``answers`` (a reflection's
score and notes, one row per question of a program's period) and ``preferences`` (a pause
of every email up to a day). Opt-outs stay in ``unsubscribes``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "answers" not in have:
        op.create_table(
            "answers",
            sa.Column("person", sa.String(320), primary_key=True),
            sa.Column("program", sa.String(32), primary_key=True),
            sa.Column("period", sa.String(64), primary_key=True),
            sa.Column("question", sa.String(64), primary_key=True),
            sa.Column("score", sa.Integer),
            sa.Column("text", sa.Text),
            sa.Column("created_ts", sa.Float, nullable=False),
            sa.Column("updated_ts", sa.Float, nullable=False),
        )
        op.create_index("ix_answers_program_period", "answers", ["program", "period"])
        op.create_index("ix_answers_updated", "answers", ["updated_ts"])
    if "preferences" not in have:
        op.create_table(
            "preferences",
            sa.Column("person", sa.String(320), primary_key=True),
            sa.Column("paused_until", sa.String(10)),
            sa.Column("updated_ts", sa.Float, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("preferences")
    op.drop_table("answers")
