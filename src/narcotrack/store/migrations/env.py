"""Alembic environment: the engine comes from narcotrack (config attribute) or NARCOTRACK_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from narcotrack.store.db import make_engine
from narcotrack.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
