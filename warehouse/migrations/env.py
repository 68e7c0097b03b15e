"""Alembic environment: runs migrations on the URL set by `warehouse.migrations.migrate`."""

from alembic import context

from warehouse.control import engine_for
from warehouse.models import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set"

with engine_for(url).begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
