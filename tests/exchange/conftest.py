"""Nodes for exchange tests: the engine under test is Cambodia's node; a partner's node is a second store
with the same organisation directory seen from its own country."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select, update

from narcotrack.access.policy import Principal, principal_for
from narcotrack.exchange.stix_export import StixExporter, write_bundle
from narcotrack.store.db import make_engine, session_scope
from narcotrack.store.schema import Organisation, SharingGroup, SharingGroupMember
from narcotrack.store.seed import org_id

KEY = b"exchange-test-pseudonym-key"


def principal(engine: Engine, org: str, role: str = "liaison") -> Principal:
    with session_scope(engine) as s:
        return principal_for(s, org_id=org_id(org), role=role)


def export(engine: Engine, p: Principal, path: Path, **options: Any) -> list[dict[str, Any]]:
    """The objects a principal's STIX export holds, as written to the bundle file ``path``."""
    with engine.connect() as conn, path.open("w", encoding="utf-8") as fh:
        write_bundle(StixExporter(conn, p, KEY, **options).objects(), fh)
    return list(json.loads(path.read_text(encoding="utf-8"))["objects"])


def make_partner_node(path: Path, template: Path, country: str, origin: Engine) -> Engine:
    """A fresh node of ``country`` at ``path`` (a copy of the seeded ``template``) holding the sharing
    groups of ``origin``: the same organisation directory, seen from its own country."""
    shutil.copy(template, path)
    node = make_engine(f"sqlite:///{path}")
    with origin.connect() as conn:
        groups = conn.execute(select(SharingGroup.__table__)).mappings().all()
        members = conn.execute(select(SharingGroupMember.__table__)).mappings().all()
    with node.begin() as conn:
        conn.execute(update(Organisation).values(domestic=Organisation.code.startswith(f"{country}-")))
        for g in groups:
            conn.execute(SharingGroup.__table__.insert(), [dict(g)])
        if members:
            conn.execute(SharingGroupMember.__table__.insert(), [dict(m) for m in members])
    return node


@pytest.fixture
def partner_node(tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[[str, Engine], Engine]]:
    """make(country, origin): a fresh node of ``country`` holding the sharing groups of ``origin``."""
    made: list[Engine] = []

    def make(country: str, origin: Engine) -> Engine:
        node = make_partner_node(tmp_path / f"node-{country.lower()}.sqlite", sqlite_template, country, origin)
        made.append(node)
        return node

    yield make
    for node in made:
        node.dispose()


class CutSession(requests.Session):
    """A connection that drops after ``pages`` object pages, as a flaky border link does, for ``failures``
    requests (by default for good)."""

    def __init__(self, pages: int, failures: int = 10**6) -> None:
        super().__init__()
        self.pages, self.failures = pages, failures

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if "/objects/" in str(url) and str(method).upper() == "GET":
            if self.pages <= 0 and self.failures > 0:
                self.failures -= 1
                raise requests.ConnectionError("connection reset by peer")
            self.pages -= 1
        return super().request(method, url, *args, **kwargs)
