"""Engines and sessions for SQLite (embedded default) and PostgreSQL, from one URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from narcotrack.config import Settings
from narcotrack.errors import ConfigError, StoreError


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: the configured store), with SQLite set to WAL and foreign keys on."""
    raw = normalise_url(url or Settings().resolved_database_url())
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(f"NARCOTRACK_DATABASE_URL is not a database URL: {raw!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(raw, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"narcotrack runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}")
    # The server runs requests in a thread pool (up to 40 threads): a pool of 20 + 20 connections keeps
    # them from closing and reopening connections under load.
    options = {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 20, **kwargs}
    return create_engine(raw, **options)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise StoreError(
            f"cannot reach the store at {engine.url.render_as_string(hide_password=True)}: {exc.orig}"
        ) from exc


def is_initialised(engine: Engine) -> bool:
    check_reachable(engine)
    return inspect(engine).has_table("alembic_version")
