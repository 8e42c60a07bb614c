"""Federation node to node: a Thai node pulls from and pushes to a Cambodian node over TAXII 2.1 on
loopback, and both talk to the OASIS medallion server as a third-party peer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from narcotrack.cli import app
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.errors import ConfigError, NotAuthenticated, NotFound
from narcotrack.exchange.federation import PartnerUnreachable, pull, push
from narcotrack.exchange.partners import Partner, add_partner, get_partner, list_partners, remove_partner
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import AuditEvent, Incident, PartnerNode, StixProvenance
from narcotrack.store.seed import org_id
from tests.exchange.conftest import KEY, CutSession, export, principal
from tests.exchange.medallion_peer import medallion
from tests.exchange.test_stix_export import _rich_store
from tests.exchange.test_taxii import _token
from tests.web.helpers import serve
from tests.web.test_access_matrix import _client, _store


def _partner(node: Engine, url: str, org: str, token: str, name: str = "peer") -> Partner:
    with session_scope(node) as s:
        return add_partner(s, name, f"{url}/taxii2/api/", org, token)[0]


def _incident_ids(objects: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in objects if o["type"] == "incident"}


def _held(node: Engine, partner_id: str | None = None) -> list[str]:
    """STIX ids of the incidents a node holds from partners (every one once, or the list shows it)."""
    q = select(StixProvenance.stix_id).where(StixProvenance.record_type == "incident")
    if partner_id is not None:
        q = q.where(StixProvenance.partner_id == partner_id)
    with node.connect() as conn:
        return list(conn.scalars(q))


def _kh_and_th(engine: Engine, partner_node: Any, tmp_path: Path) -> tuple[set[str], str, Engine]:
    """Cambodia's store with records of every sharing; the incidents TH-ONCB may see, a token of the Thai
    node's account on it, and a fresh Thai node."""
    _store(engine)
    _rich_store(engine)
    shared = _incident_ids(export(engine, principal(engine, "TH-ONCB"), tmp_path / "th.json"))
    return shared, _token(engine, "th-node", "TH-ONCB"), partner_node("TH", engine)


def test_a_partner_node_pulls_what_it_may_see_once_with_provenance(
        engine: Engine, partner_node: Any, tmp_path: Path) -> None:
    shared, token, th = _kh_and_th(engine, partner_node, tmp_path)
    with serve(engine) as url:
        kh = _partner(th, url, "KH-NACD", token, "kh-nacd")
        first = pull(th, kh, limit=7)
        again = pull(th, kh, limit=7)
    [coll] = first.collections
    assert coll.title == "Everything shared with you" and coll.pages > 3 and not coll.problems
    assert first.total("created") >= len(shared) and first.collections[0].created["incident"] == len(shared)
    held = _held(th, kh.id)
    assert sorted(held) == sorted(shared)  # all of it, each once, and nothing RED or outside the agreements
    assert again.total("created") == 0 and again.collections[0].resumed_from == coll.cursor
    with th.connect() as conn:
        owners = set(conn.scalars(select(Incident.owner_org_id)))
        events = conn.execute(select(AuditEvent.action, AuditEvent.detail)
                              .where(AuditEvent.action == "partner_pull")).all()
    assert owners == {org_id("KH-NACD")}  # the partner's records stay the partner's
    assert len(events) == 2 and events[0][1]["partner"] == "kh-nacd" and events[0][1]["pages"] == coll.pages
    with th.connect() as conn:
        one = conn.execute(select(StixProvenance.record_id, StixProvenance.stix_id)
                           .where(StixProvenance.record_type == "incident")).first()
    assert one is not None
    analyst = _client(th, "TH-ONCB", "analyst")
    page = analyst.get(f"/incidents/{one[0]}")
    assert page.status_code == 200 and "pulled from partner node kh-nacd" in page.text and one[1] in page.text
    assert analyst.get("/admin/partners").status_code == 403
    admin = _client(th, "TH-ONCB", "admin").get("/admin/partners")
    assert admin.status_code == 200 and 'data-partner="kh-nacd"' in admin.text
    last_pull = again.collections[0].objects  # the newest pull is the one shown
    assert f"{last_pull:,} objects, 0 not stored" in admin.text and token not in admin.text
    assert "never" in admin.text  # no push yet


def test_a_pull_cut_mid_way_resumes_without_loss_or_duplicates(
        engine: Engine, partner_node: Any, tmp_path: Path) -> None:
    shared, token, th = _kh_and_th(engine, partner_node, tmp_path)
    with serve(engine) as url:
        kh = _partner(th, url, "KH-NACD", token)
        with pytest.raises(PartnerUnreachable, match="run the command again to resume"):
            pull(th, kh, limit=5, session=CutSession(pages=3), retries=1, backoff=0)
        before = _held(th, kh.id)
        assert 0 < len(before) < len(shared)  # the cut left part of the feed stored
        # A link that drops once more and comes back within the retries loses nothing either.
        resumed = pull(th, kh, limit=5, session=CutSession(pages=2, failures=1), retries=2, backoff=0)
    assert resumed.collections[0].resumed_from is not None
    held = _held(th, kh.id)
    assert len(held) == len(set(held)) and set(held) == shared
    assert resumed.collections[0].created["incident"] == len(shared) - len(before)
    with th.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Incident)) == len(shared)


def test_a_node_pushes_its_own_records_the_partner_may_see_and_only_changes_next_time(
        engine: Engine, partner_node: Any) -> None:
    th = partner_node("TH", engine)
    _rich_store(th)  # recorded on the TH node but owned by KH-NACD: not Thailand's to send
    with session_scope(th) as s:
        for marking, place in (("GREEN", "Nong Khai pier"), ("RED", "Chiang Saen safe house")):
            create_incident(s, IncidentIn(occurred_on=dt.date(2025, 6, 2), country="TH", place_text=place,
                                          reporting_org="TH-ONCB", marking=marking, distribution="partners",
                                          seizures=[SeizureIn(drug="yaba", quantity=40_000, unit="tablet")]))
    token = _token(engine, "th-node", "TH-ONCB")
    with serve(engine) as url:
        kh = _partner(th, url, "KH-NACD", token)
        first = push(th, kh, key=KEY)
        second = push(th, kh, key=KEY)
    assert first.collection == "Inbox" and first.records["incident"] == 1 and not first.failures
    assert first.successes == first.objects and first.pushed_until is not None
    assert second.records["incident"] == 0 and second.since == first.pushed_until
    with engine.connect() as conn:
        places = conn.execute(select(Incident.place_text, Incident.owner_org_id)).all()
    assert ("Nong Khai pier", org_id("TH-ONCB")) in places
    assert all(p != "Chiang Saen safe house" for p, _ in places)  # RED never leaves
    with th.connect() as conn:
        events = conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")).all()
    assert [e["format"] for e in events] == ["taxii push", "taxii push"] and events[0]["accepted"] == first.successes


def test_partner_directory_and_clear_errors(engine: Engine, partner_node: Any) -> None:
    th = partner_node("TH", engine)
    with session_scope(th) as s:
        with pytest.raises(NotFound, match="no organisation"):
            add_partner(s, "kh", "http://127.0.0.1:9/taxii2/api/", "XX-NONE", "t")
        with pytest.raises(Exception, match="not an http"):
            add_partner(s, "kh", "ftp://kh/", "KH-NACD", "t")
        add_partner(s, "kh", "http://127.0.0.1:9/taxii2/api/", "KH-NACD", "secret-token")
    with session_scope(th) as s:
        [info] = list_partners(s)
        assert info.partner.auth_kind == "bearer" and info.cursors == []
        partner = get_partner(s, "kh")
        assert partner.token == "secret-token"
        stored = s.scalar(select(PartnerNode.token))
        assert stored is not None and stored.startswith("fernet:") and "secret-token" not in stored  # sealed
        other = Fernet.generate_key()
        with pytest.raises(ConfigError, match="another credential key"):
            get_partner(s, "kh", key=other)
        assert list_partners(s, key=other)[0].partner.auth_kind.startswith("unreadable")
    with pytest.raises(PartnerUnreachable, match="could not be reached"):
        pull(th, partner, retries=1, backoff=0)  # nothing listens on port 9
    with serve(engine) as url:
        with session_scope(th) as s:
            wrong = add_partner(s, "kh", f"{url}/taxii2/api/", "KH-NACD", "not-a-token")[0]
        with pytest.raises(NotAuthenticated, match="refused this node's credential"):
            pull(th, wrong, retries=0)
    with session_scope(th) as s:
        remove_partner(s, "kh")
    with session_scope(th) as s:
        assert list_partners(s) == [] and s.scalar(select(PartnerNode.token)) == ""
        with pytest.raises(Exception, match="was removed"):
            get_partner(s, "kh")


def test_medallion_as_a_third_party_peer_receives_a_push_and_serves_a_pull(
        engine: Engine, partner_node: Any, tmp_path: Path) -> None:
    shared, _, th = _kh_and_th(engine, partner_node, tmp_path)
    with medallion(tmp_path, writable=True, page_size=100) as root:
        with session_scope(engine) as s:
            hub = add_partner(s, "hub", root, "TH-ONCB", "basic:peer:secret")[0]
        sent = push(engine, hub, key=KEY, chunk=10)
        with session_scope(th) as s:
            from_hub = add_partner(s, "hub", root, "KH-NACD", "basic:peer:secret")[0]
        got = pull(th, from_hub, limit=25)
        again = pull(th, from_hub, limit=25)
    assert sent.records["incident"] == len(shared) and not sent.failures and sent.requests > 1
    assert got.collections[0].pages > 1 and not got.collections[0].problems
    assert sorted(_held(th, from_hub.id)) == sorted(shared)
    assert again.total("created") == 0


def test_the_partners_commands(engine: Engine, partner_node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _rich_store(engine)
    token = _token(engine, "th-node", "TH-ONCB")
    th = partner_node("TH", engine)
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", th.url.render_as_string(hide_password=False))
    monkeypatch.setenv("KH_TOKEN", token)
    runner = CliRunner()
    with serve(engine) as url:
        added = runner.invoke(app, ["partners", "add", "kh-nacd", "--api-root", f"{url}/taxii2/api/",
                                    "--org", "KH-NACD", "--token-env", "KH_TOKEN"])
        assert added.exit_code == 0, added.output
        pulled = runner.invoke(app, ["partners", "pull", "kh-nacd", "--limit", "3"])
        assert pulled.exit_code == 0, pulled.output
        assert "Everything shared with you (from the start)" in pulled.output and "1 incident" in pulled.output
        listed = runner.invoke(app, ["partners", "list"])
        assert listed.exit_code == 0 and "credential: bearer" in listed.output and "pulled up to" in listed.output
        assert token not in listed.output + added.output + pulled.output
        missing = runner.invoke(app, ["partners", "pull", "nobody"])
        assert missing.exit_code != 0 and "no partner named 'nobody'" in missing.output
        assert "Traceback" not in missing.output
        no_secret = runner.invoke(app, ["partners", "add", "x", "--api-root", url, "--org", "KH-NACD"])
        assert no_secret.exit_code != 0 and "--token-env" in no_secret.output
    down = runner.invoke(app, ["partners", "pull", "kh-nacd", "--retries", "0"])  # the node is gone now
    assert down.exit_code == 10 and "could not be reached" in down.output and "Traceback" not in down.output
    removed = runner.invoke(app, ["partners", "remove", "kh-nacd"])
    assert removed.exit_code == 0 and "removed" in removed.output
