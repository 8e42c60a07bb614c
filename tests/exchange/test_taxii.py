"""The TAXII 2.1 server, read and written by the OASIS taxii2-client as a real client over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, select
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from narcotrack.access.accounts import create_api_token
from narcotrack.exchange.extension import PRODUCER_ID
from narcotrack.exchange.markings import TLP2_IDS
from narcotrack.exchange.taxii_client import BearerAuth
from narcotrack.store.db import session_scope
from narcotrack.store.schema import AuditEvent, User
from tests.exchange.conftest import export, principal
from tests.exchange.test_stix_export import _rich_store
from tests.web.helpers import make_user, serve
from tests.web.test_access_matrix import _store, expected_visible

MEDIA = "application/taxii+json;version=2.1"


def _token(engine: Engine, username: str, org: str, role: str = "liaison") -> str:
    make_user(engine, username, org, role)
    with session_scope(engine) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return create_api_token(s, user, "partner node")


def _collection(url: str, token: str, title: str) -> Collection:
    root = Server(f"{url}/taxii2/", auth=BearerAuth(token)).api_roots[0]
    return next(c for c in root.collections if c.title == title)


def _refs(value: Any, key: str = "") -> set[str]:
    """Every STIX id a value refers to (``*_ref`` and ``*_refs`` properties, at any depth)."""
    if isinstance(value, dict):
        return {r for k, v in value.items() for r in _refs(v, k)}
    if isinstance(value, list):
        return {r for v in value for r in _refs(v, key)}
    return {value} if isinstance(value, str) and key.endswith(("_ref", "_refs")) and "--" in value else set()


def test_a_partner_reads_the_same_objects_by_taxii_as_by_export(engine: Engine, tmp_path: Path) -> None:
    ids = _store(engine)
    _rich_store(engine)
    token = _token(engine, "th-node", "TH-ONCB")
    exported = export(engine, principal(engine, "TH-ONCB"), tmp_path / "th.json")
    with serve(engine) as url:
        server = Server(f"{url}/taxii2/", auth=BearerAuth(token))
        assert server.title and len(server.api_roots) == 1
        root: ApiRoot = server.api_roots[0]
        assert MEDIA in root.versions
        titles = {c.title for c in root.collections}
        assert {"Everything shared with you", "Shared with all partners", "Matrix G1", "Inbox"} <= titles
        assert "Matrix G2" not in titles  # TH-ONCB is not in G2
        everything = next(c for c in root.collections if c.title == "Everything shared with you")
        pages = list(as_pages(everything.get_objects, per_request=7))
    served = [o for page in pages for o in page.get("objects", [])]
    def records(page: dict[str, Any]) -> int:
        return sum(1 for o in page.get("objects", []) if o["type"] in ("incident", "grouping")
                   or o.get("identity_class") == "individual")

    # A page keeps to the limit, unless one record brings more objects than that on its own.
    assert len(pages) > 3 and all(len(p.get("objects", [])) <= 7 or records(p) == 1 for p in pages)
    record_types = ("incident", "grouping")
    assert {o["id"] for o in served if o["type"] in record_types} == \
        {o["id"] for o in exported if o["type"] in record_types}
    # Every identity of the file but the producer's, which with the extension definition is in files only.
    assert {o["id"] for o in served if o["type"] == "identity"} == \
        {o["id"] for o in exported if o["type"] == "identity"} - {PRODUCER_ID}
    assert TLP2_IDS["RED"] not in {r for o in served for r in o.get("object_marking_refs", [])}
    records_served = {o["id"] for o in served if o["type"] in ("incident", "grouping")
                      or o.get("identity_class") == "individual"}
    for page in pages:  # each page stands alone: what its objects refer to is on the same page, but for
        # other records (persons, operations, incidents), which are sent in their own time
        on_page = {o["id"] for o in page.get("objects", [])}
        refs = {r for o in page.get("objects", []) for r in _refs(o)}
        assert refs - on_page - records_served <= {PRODUCER_ID}, refs - on_page - records_served
    incidents = [o for o in served if o["type"] == "incident"]
    assert len({o["id"] for o in incidents}) == len(incidents)  # no record twice across pages
    want = sum(1 for (m, d) in ids if expected_visible("TH-ONCB", "liaison", m, d) and m != "RED") + 1
    assert len(incidents) == want
    with engine.connect() as conn:
        events = conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")).all()
    assert len(events) == len(pages) and all(e["format"] == "taxii" for e in events)


def test_group_collection_holds_only_that_agreements_records_and_filters_work(engine: Engine) -> None:
    _store(engine)
    token = _token(engine, "th-node", "TH-ONCB")
    with serve(engine) as url:
        group = _collection(url, token, "Matrix G1")
        objects = group.get_objects()["objects"]
        incidents = [o for o in objects if o["type"] == "incident"]
        assert incidents and all(o["extensions"] and "sharing_group" in json.dumps(o) for o in incidents)
        assert all(json.loads(json.dumps(o))["extensions"][next(iter(o["extensions"]))]["sharing_group"]
                   == "Matrix G1" for o in incidents)
        only = group.get_objects(type="incident")["objects"]
        assert {o["type"] for o in only} == {"incident"}
        one = group.get_object(incidents[0]["id"])["objects"]
        assert [o["id"] for o in one] == [incidents[0]["id"]]
        versions = group.object_versions(incidents[0]["id"])["versions"]
        assert versions == [incidents[0]["modified"]]
        manifest = group.get_manifest()["objects"]
        assert {m["id"] for m in manifest} == {o["id"] for o in objects}
        later = group.get_objects(added_after="2999-01-01T00:00:00Z")
        assert not later.get("objects")


def test_protocol_errors(engine: Engine) -> None:
    token = _token(engine, "th-node", "TH-ONCB")
    with serve(engine) as url:
        none = requests.get(f"{url}/taxii2/", headers={"Accept": MEDIA}, timeout=10)
        assert none.status_code == 401 and none.headers["content-type"].startswith("application/taxii+json")
        assert none.json()["http_status"] == "401"
        bad = requests.get(f"{url}/taxii2/", headers={"Accept": MEDIA, "Authorization": "Bearer nope"}, timeout=10)
        assert bad.status_code == 401
        html = requests.get(f"{url}/taxii2/", headers={"Accept": "text/html", "Authorization": f"Bearer {token}"},
                            timeout=10)
        assert html.status_code == 406
        missing = requests.get(f"{url}/taxii2/api/collections/nope/objects/", timeout=10,
                               headers={"Accept": MEDIA, "Authorization": f"Bearer {token}"})
        assert missing.status_code == 404 and "nope" in missing.json()["description"]


def _bundle_objects(engine: Engine, tmp_path: Path, org: str) -> list[dict[str, Any]]:
    return export(engine, principal(engine, org, "analyst"), tmp_path / "own.json")


def test_a_partner_pushes_its_own_records_to_the_inbox_and_reads_the_status(
        engine: Engine, partner_node: Any, tmp_path: Path) -> None:
    # Thailand's node records an incident and pushes it to Cambodia's inbox.
    th = partner_node("TH", engine)
    _rich_store(th)  # owned by KH-NACD on the TH node: not Thailand's to send
    token = _token(engine, "th-node", "TH-ONCB")
    objects = _bundle_objects(th, tmp_path, "KH-NACD")
    with serve(engine) as url:
        inbox = _collection(url, token, "Inbox")
        status = inbox.add_objects({"objects": objects})
        assert status.status == "complete" and status.failure_count >= 1 and status.success_count >= 1
        assert all("may send only records it owns" in f["message"] for f in status.failures
                   if f["id"].startswith("incident--"))
        again = Server(f"{url}/taxii2/", auth=BearerAuth(token)).api_roots[0].get_status(status.id)
        assert again.total_count == len(objects)
        everything = _collection(url, token, "Everything shared with you")
        refused = requests.post(everything.objects_url, json={"objects": objects}, timeout=10,
                                headers={"Accept": MEDIA, "Content-Type": MEDIA, "Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and "inbox" in refused.json()["description"]


def test_records_a_partner_owns_arrive_in_the_inbox_with_their_owner(
        engine: Engine, partner_node: Any, tmp_path: Path) -> None:
    import datetime as dt

    from narcotrack.domain.models import IncidentIn, SeizureIn
    from narcotrack.store.repo import create_incident
    from narcotrack.store.schema import Incident
    from narcotrack.store.seed import org_id

    th = partner_node("TH", engine)
    with session_scope(th) as s:
        create_incident(s, IncidentIn(occurred_on=dt.date(2025, 6, 2), country="TH", place_text="Nong Khai pier",
                                      reporting_org="TH-ONCB", marking="GREEN", distribution="partners",
                                      seizures=[SeizureIn(drug="yaba", quantity=40_000, unit="tablet")]))
    objects = _bundle_objects(th, tmp_path, "TH-ONCB")
    token = _token(engine, "th-node", "TH-ONCB")
    with serve(engine) as url:
        status = _collection(url, token, "Inbox").add_objects({"objects": objects})
    assert status.failure_count == 0, status.failures
    assert any(s["id"].startswith("incident--") for s in status.successes)
    with engine.connect() as conn:
        owners = conn.scalars(select(Incident.owner_org_id).where(Incident.place_text == "Nong Khai pier")).all()
    assert owners == [org_id("TH-ONCB")]
