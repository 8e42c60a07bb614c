"""Shared fixtures: one test body runs on a real SQLite file and on a real PostgreSQL server.

PostgreSQL comes from NARCOTRACK_TEST_PG_URL (default: the local server on 127.0.0.1:5432, user
postgres). The fixtures create a throw-away database and drop it at the end. Where no server is
reachable the PostgreSQL half of each test is skipped with the reason; with NARCOTRACK_REQUIRE_PG=1 (as
`.ci/run` sets) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from narcotrack.store.db import make_engine
from narcotrack.store.repo import init_store
from narcotrack.store.seed import organisation_rows

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get(
    "NARCOTRACK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REFERENCE_TABLES = {"place", "organisation", "alembic_version"}


@pytest.fixture(scope="session", autouse=True)
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep files narcotrack writes to its data folder (keys, stores) out of the working tree."""
    old = os.environ.get("NARCOTRACK_DATA_DIR")
    os.environ["NARCOTRACK_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    yield
    if old is None:
        os.environ.pop("NARCOTRACK_DATA_DIR", None)
    else:
        os.environ["NARCOTRACK_DATA_DIR"] = old


def shared_data(*parts: str) -> Path:
    """A file of the shared reference data; skips the test (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared reference data not found at {path}")
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated and seeded SQLite store, built once and copied for each test."""
    return build_template(tmp_path_factory.mktemp("template") / "narcotrack.sqlite")


def build_template(path: Path) -> Path:
    """Migrate and seed a SQLite store at ``path``, checkpointed so that copying the file copies it all."""
    engine = make_engine(f"sqlite:///{path}")
    init_store(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test session."""
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect():
            pass
    except Exception as exc:
        admin.dispose()
        reason = f"no PostgreSQL server reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
        if os.environ.get("NARCOTRACK_REQUIRE_PG") == "1":
            pytest.fail(reason + " (NARCOTRACK_REQUIRE_PG=1)")
        pytest.skip(reason)
    name = f"narcotrack_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    init_store(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(engine: Engine) -> None:
    """Empty every table but the reference data, so each test starts from a freshly seeded store."""
    from narcotrack.store.schema import Base

    names = [t.name for t in Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    seeded = {r["code"] for r in organisation_rows()}
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE"))
        conn.execute(text("DELETE FROM organisation WHERE NOT (code = ANY(:codes))"), {"codes": list(seeded)})
        conn.execute(text("DELETE FROM place WHERE level = 'point'"))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A seeded store on each engine; the same test body runs on both."""
    if request.param == "sqlite":
        path = tmp_path / "narcotrack.sqlite"
        shutil.copy(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        url = request.getfixturevalue("pg_url")
        eng = make_engine(url)
        _reset_pg(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A seeded SQLite store only, for tests about the embedded default itself."""
    path = tmp_path / "narcotrack.sqlite"
    shutil.copy(sqlite_template, path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()
