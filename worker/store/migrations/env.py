"""Alembic's entry: run the migrations on the connection steadyhand hands in
(``config.attributes["connection"]``, see :func:`worker.store.migrations.upgrade`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover
    raise RuntimeError(
        "the store's migrations run through `steadyhand upgrade`, not the alembic command"
    )
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
