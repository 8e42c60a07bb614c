"""Fixtures of the analytics tests: stores filled once per session (demo data, the real UNODC IDS file)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from narcotrack.store.db import make_engine
from tests.conftest import shared_data

IDS_FILE = ("unodc", "ids_individual_seizures_2011_2014.csv.gz")


@pytest.fixture(scope="session")
def ids_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Engine]:
    """A SQLite store holding the whole real UNODC IDS file (208,172 seizures), imported once (~25 s)."""
    from narcotrack.ingest.importer import import_file

    source = shared_data(*IDS_FILE)
    path = tmp_path_factory.mktemp("ids") / "ids.sqlite"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    import_file(engine, source, fmt="ids", partial=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Engine]:
    """A SQLite store with seeded demo data (scale 0.2, five years), built once and only read."""
    from narcotrack.ingest.demo import generate

    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    generate(engine, years=5, seed=1, scale=0.2)
    yield engine
    engine.dispose()
