"""Alembic environment: runs on the connection the store hands over (no ini file, no env vars)."""

from alembic import context

from sistack.io.store.metadata import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
