"""The store's schema under Alembic: one migration per change of the tables, in
``versions/`` (``0001`` the baseline, the tables as they were before migrations existed;
``0002`` answers and preferences; ``0003`` experiments and sign-ins). ``steadyhand upgrade``
runs them.

No ``alembic.ini``: :func:`alembic_config` builds the configuration in code, with the
migrations found beside this file (in a checkout and in an installed wheel alike), and
``env.py`` runs them on the connection handed in through ``config.attributes``.

A new migration (a change of ``worker/store/tables.py``): start it from the template with
``python -c "from alembic import command; from worker.store.migrations import
alembic_config; command.revision(alembic_config(), 'what changed', rev_id='0003')"``
(it writes ``versions/v0003_what_changed.py``), write its ``op.`` calls by hand (never importing
``tables.py``: a migration is what the tables were then), and add its revision to
:data:`REVISIONS` and its new tables to :data:`ADDED`.

A brand-new store does not run them: :class:`worker.store.Store` creates the tables from
the metadata and stamps it :data:`HEAD` (tests/test_migrations.py checks that both give
the same schema, and that :data:`HEAD` is the last migration).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it runs (an upgrade, the tests), not when a store opens: every
# command opens one, and opening reads the revision table directly.

#: The revisions this steadyhand knows, oldest first; the last is the one it needs.
REVISIONS = ("0001", "0002", "0003")
BASELINE, HEAD = REVISIONS[0], REVISIONS[-1]

#: The tables each revision added: a store made before migrations existed has no version
#: stamp, and counts as the last revision whose tables it has.
ADDED = {
    "0001": frozenset(
        {
            "events",
            "sync_state",
            "sync_notes",
            "read_notes",
            "outbox",
            "audit",
            "blocks",
            "unsubscribes",
            "ticks",
        }
    ),
    "0002": frozenset({"answers", "preferences"}),
    "0003": frozenset({"experiments", "sign_ins"}),
}

#: Alembic's own record of the revision a store is at (as Alembic makes it).
version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the store's migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")  # v0003_what_changed.py
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Run the migrations on ``connection`` up to ``revision`` (the caller commits)."""
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def script_head() -> str | None:
    """The last migration in ``versions/`` (tests compare it with :data:`HEAD`)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
