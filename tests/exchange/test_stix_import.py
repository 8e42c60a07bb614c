"""STIX import: a partner's bundle maps back without loss, re-imports change nothing, bad bundles change
nothing and say why."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from narcotrack.errors import ImportRejected, InvalidInput
from narcotrack.exchange.extension import EXTENSION_ID
from narcotrack.exchange.stix_import import import_file, import_objects
from narcotrack.exchange.stix_read import kind_of
from narcotrack.store.schema import AuditEvent, Incident, Person, PersonIdentity, Seizure, StixProvenance
from tests.exchange.conftest import export, principal
from tests.exchange.test_stix_export import _rich_store
from tests.web.test_access_matrix import _store

MakeNode = Callable[[str, Engine], Engine]


def _records(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The objects that are records (not the directory of organisations and places, which each node keeps)."""
    return {o["id"]: o for o in objects
            if o["type"] == "relationship" or kind_of(o) in ("incident", "individual", "grouping")}


def _text(output: str) -> str:
    return " ".join(output.split())  # the console wraps long lines


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_a_partner_node_holds_and_reshares_exactly_what_it_received(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _store(engine)
    _rich_store(engine)
    sent = export(engine, principal(engine, "TH-ONCB"), tmp_path / "kh-for-th.json")
    th = partner_node("TH", engine)
    report = import_file(th, tmp_path / "kh-for-th.json")
    assert report.committed and report.created["incident"] == len([o for o in sent if o["type"] == "incident"])
    again = export(th, principal(th, "TH-ONCB", "analyst"), tmp_path / "th-own.json")
    assert _records(again) == _records(sent)
    # Provenance names the STIX id of every record; a second import changes nothing.
    assert _count(th, StixProvenance) >= report.created["incident"] + report.created["person"]
    second = import_file(th, tmp_path / "kh-for-th.json")
    assert not second.created and not second.updated and second.unchanged["incident"] == report.created["incident"]
    assert _count(th, Incident) == report.created["incident"]


def test_full_identities_arrive_where_the_agreement_allows_and_pseudonyms_elsewhere(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _store(engine)
    export(engine, principal(engine, "LA-LCDC"), tmp_path / "la.json")
    la = partner_node("LA", engine)
    import_file(la, tmp_path / "la.json")
    with la.connect() as conn:
        names = set(conn.scalars(select(PersonIdentity.name_latin)))
        pseudonyms = set(conn.scalars(select(StixProvenance.pseudonym).where(StixProvenance.pseudonym.is_not(None))))
    assert names == {"Matrixname GREEN groupG2", "Matrixname AMBER groupG2", "Matrixname CLEAR groupG2"}
    assert pseudonyms and not any(p.startswith("Matrixname") for p in pseudonyms)


def test_a_newer_version_updates_and_an_older_one_is_ignored(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _rich_store(engine)
    objects = export(engine, principal(engine, "TH-ONCB"), tmp_path / "b.json")
    th = partner_node("TH", engine)
    import_objects(th, objects)
    newer = copy.deepcopy(objects)
    incident = next(o for o in newer if o["type"] == "incident")
    incident["modified"] = "2099-01-01T00:00:00.000Z"
    incident["extensions"][EXTENSION_ID]["seizures"][0]["quantity"] = 7.0
    report = import_objects(th, newer)
    assert report.updated == {"incident": 1}
    with th.connect() as conn:
        assert 7.0 in set(conn.scalars(select(Seizure.quantity)))
    report = import_objects(th, objects)  # the old copy again
    assert report.updated == {} and report.unchanged["incident"] == 1


def test_one_bad_object_rejects_the_bundle_naming_it_and_stores_nothing(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _rich_store(engine)
    objects = export(engine, principal(engine, "TH-ONCB"), tmp_path / "b.json")
    bad = copy.deepcopy(objects)
    index, incident = next((i, o) for i, o in enumerate(bad) if o["type"] == "incident")
    incident["extensions"][EXTENSION_ID]["seizures"][0]["drug"] = "moonrock"
    th = partner_node("TH", engine)
    before = _count(th, Person), _count(th, Incident), _count(th, AuditEvent)
    with pytest.raises(ImportRejected) as caught:
        import_objects(th, bad)
    report = caught.value.report
    assert [(p.index, p.stix_id) for p in report.problems] == [(index, incident["id"])]  # type: ignore[attr-defined]
    assert "seizures[0].drug" in str(caught.value) and "moonrock" in str(caught.value)
    assert (_count(th, Person), _count(th, Incident), _count(th, AuditEvent)) == before
    partial = import_objects(th, bad, partial=True)
    assert partial.committed and partial.created["incident"] == 0 and partial.created["person"] >= 1


def test_objects_of_other_tools_are_counted_not_stored(engine: Engine) -> None:
    indicator = {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                 "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
                 "pattern": "[file:name = 'x']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}
    report = import_objects(engine, [indicator])
    assert report.not_ours == {"indicator": 1} and not report.created


def test_a_node_ignores_its_own_records_sent_back(engine: Engine, tmp_path: Path) -> None:
    _rich_store(engine)
    objects = export(engine, principal(engine, "TH-ONCB"), tmp_path / "b.json")
    report = import_objects(engine, objects)
    assert report.owned_here["incident"] == 1 and not report.created.get("incident")


def test_not_a_bundle_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"type": "indicator"}))
    with pytest.raises(InvalidInput, match=r"not a STIX 2\.1 bundle"):
        import_file(engine, path)


def test_the_commands_export_for_a_partner_and_import_on_the_other_node(
        sqlite_engine: Engine, partner_node: MakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from narcotrack.cli import app

    runner = CliRunner()
    _rich_store(sqlite_engine)
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    out = tmp_path / "for-th.json"
    both = runner.invoke(app, ["export", "stix", "--out", str(out), "--user", "x", "--partner", "TH-ONCB"])
    assert both.exit_code != 0 and "one of them" in _text(both.output)
    r = runner.invoke(app, ["export", "stix", "--out", str(out), "--partner", "TH-ONCB"])
    assert r.exit_code == 0, r.output
    assert "1 incident" in _text(r.output) and out.exists()
    with sqlite_engine.connect() as conn:
        detail = conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")).one()
    assert detail["format"] == "stix" and detail["partner"] == "TH-ONCB" and detail["objects"] > 0
    th = partner_node("TH", sqlite_engine)
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", th.url.render_as_string(hide_password=False))
    r = runner.invoke(app, ["import", str(out)])
    assert r.exit_code == 0, r.output
    assert "created" in r.output and "1 incident" in _text(r.output)
    assert _count(th, Incident) == 1
