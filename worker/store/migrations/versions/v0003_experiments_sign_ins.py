"""The dashboard's tables: ``experiments`` (what a leader tries, from which day, and which
figures it should move) and ``sign_ins`` (the magic sign-in links: a digest of each, whom
it was for, when it was made and used).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "experiments" not in have:
        op.create_table(
            "experiments",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("team", sa.String(200), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("start", sa.String(10), nullable=False),
            sa.Column("figures", sa.String(500), nullable=False),
            sa.Column("created_by", sa.String(320), nullable=False),
            sa.Column("created_ts", sa.Float, nullable=False),
        )
        op.create_index("ix_experiments_team", "experiments", ["team"])
    if "sign_ins" not in have:
        op.create_table(
            "sign_ins",
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column("email", sa.String(320), nullable=False),
            sa.Column("created_ts", sa.Float, nullable=False),
            sa.Column("used_ts", sa.Float),
        )
        op.create_index("ix_sign_ins_email_created", "sign_ins", ["email", "created_ts"])


def downgrade() -> None:
    op.drop_table("sign_ins")
    op.drop_table("experiments")
