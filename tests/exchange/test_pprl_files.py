"""Matching persons between a Cambodian and a Thai node through `narcotrack match encode/compare`: the
files hold no names, only matched pseudonyms come out, and every read of identity is audited."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from narcotrack.access.policy import pseudonym
from narcotrack.domain.models import PersonIn
from narcotrack.exchange import pprl_files
from narcotrack.store.db import session_scope
from narcotrack.store.persons import create_person
from narcotrack.store.schema import AuditEvent
from narcotrack.store.seed import org_id
from tests.web.helpers import make_user

MakeNode = Callable[[str, Engine], Engine]
KEY = "test-key-of-the-cambodian-node"
SECRET = "annex B of the KH-TH agreement, 2026"


def _persons(engine: Engine, owner: str, people: list[tuple[str, str | None, str]]) -> list[str]:
    with session_scope(engine) as s:
        return [create_person(s, PersonIn(name_latin=name, sex=sex,  # type: ignore[arg-type]
                                          date_of_birth=dt.date.fromisoformat(born) if born else None),
                              owner_org_id=org_id(owner)) for name, born, sex in people]


def _run(engine: Engine, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int = 0) -> str:
    from narcotrack.cli import app

    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == code, r.output
    return " ".join(r.output.split())


@pytest.fixture
def nodes(sqlite_engine: Engine, partner_node: MakeNode, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, Engine, list[str]]:
    monkeypatch.setenv("NARCOTRACK_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("NARCOTRACK_MATCH_SECRET", SECRET)
    th = partner_node("TH", sqlite_engine)
    kh_ids = _persons(sqlite_engine, "KH-NACD", [
        ("Sokha Chanthou", "1987-04-12", "M"), ("Kim Dara", "1990-11-02", "F"), ("Vannak Heng", "1979-01-30", "M")])
    _persons(th, "TH-ONCB", [
        ("Chanthu Sokha", "1987-04-12", "M"),  # the same man: other order, one letter less
        ("Kim Dara", "1990-11-02", "F"), ("Somchai Boonmee", "1979-01-30", "M")])
    make_user(sqlite_engine, "kh-analyst", "KH-NACD", "analyst")
    make_user(th, "th-analyst", "TH-ONCB", "analyst")
    return sqlite_engine, th, kh_ids


def test_two_nodes_find_the_persons_they_share_and_learn_only_pseudonyms(
        nodes: tuple[Engine, Engine, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kh, th, kh_ids = nodes
    kh_file, th_file, pairs = tmp_path / "kh-for-th.json", tmp_path / "th-for-kh.json", tmp_path / "pairs.csv"
    said = _run(kh, monkeypatch, ["match", "encode", "--user", "kh-analyst", "--partner", "TH-ONCB", "--out", str(kh_file)])
    assert "encodings of 3 persons for TH-ONCB" in said
    _run(th, monkeypatch, ["match", "encode", "--user", "th-analyst", "--partner", "KH-NACD", "--out", str(th_file)])
    sent = kh_file.read_text(encoding="utf-8")
    for text in ("Sokha", "sokha", "Dara", "1987", "Heng"):
        assert text not in sent
    doc = json.loads(sent)
    assert doc["node"] == "KH-NACD" and doc["partner"] == "TH-ONCB" and doc["count"] == 3
    # the pseudonyms are those Thailand already receives for these persons
    assert sorted(p["pseudonym"] for p in doc["persons"]) == sorted(
        pseudonym(KEY.encode(), org_id("TH-ONCB"), i) for i in kh_ids)

    said = _run(kh, monkeypatch, ["match", "compare", str(kh_file), str(th_file), "--out", str(pairs),
                                  "--user", "kh-analyst"])
    assert "2 matches between 3 persons of KH-NACD and 3 of TH-ONCB" in said
    rows = list(csv.DictReader(pairs.open(encoding="utf-8")))
    assert list(rows[0]) == ["our_pseudonym", "their_pseudonym", "dice", "our_person_id"]
    assert sorted(r["our_person_id"] for r in rows) == sorted(kh_ids[:2])
    assert all(float(r["dice"]) >= 0.85 for r in rows)
    th_pseudonyms = {p["pseudonym"] for p in json.loads(th_file.read_text(encoding="utf-8"))["persons"]}
    assert {r["their_pseudonym"] for r in rows} <= th_pseudonyms

    with kh.connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.detail).order_by(AuditEvent.id)).all()
    reads = [d for a, d in events if a == "read_person_identity"]
    assert [d["via"] for d in reads] == ["match encode", "match compare"]
    assert sorted(reads[1]["ids"]) == sorted(kh_ids[:2])
    assert any(a == "export" and d["format"] == "clk" and d["persons"] == 3 for a, d in events)


def test_another_secret_matches_nothing_and_a_missing_one_is_refused(
        nodes: tuple[Engine, Engine, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kh, th, _ = nodes
    kh_file, th_file = tmp_path / "kh.json", tmp_path / "th.json"
    _run(kh, monkeypatch, ["match", "encode", "-u", "kh-analyst", "-p", "TH-ONCB", "-o", str(kh_file)])
    monkeypatch.setenv("NARCOTRACK_MATCH_SECRET", "a secret the partner never agreed to")
    _run(th, monkeypatch, ["match", "encode", "-u", "th-analyst", "-p", "KH-NACD", "-o", str(th_file)])
    said = _run(kh, monkeypatch, ["match", "compare", str(kh_file), str(th_file), "-o", str(tmp_path / "p.csv")])
    assert "0 matches" in said
    monkeypatch.delenv("NARCOTRACK_MATCH_SECRET")
    said = _run(kh, monkeypatch, ["match", "encode", "-u", "kh-analyst", "-p", "TH-ONCB", "-o", str(tmp_path / "x.json")], 2)
    assert "NARCOTRACK_MATCH_SECRET" in said and not (tmp_path / "x.json").exists()
    said = _run(kh, monkeypatch, ["match", "encode", "-u", "kh-analyst", "-p", "XX-NONE", "-o", str(tmp_path / "x.json"),
                                  "--secret-env", "NARCOTRACK_PSEUDONYM_KEY"], 2)
    assert "no organisation with code 'XX-NONE'" in said


def test_broken_or_mismatched_files_are_refused_with_the_place_and_reason(
        nodes: tuple[Engine, Engine, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kh, _, _ = nodes
    good = tmp_path / "kh.json"
    _run(kh, monkeypatch, ["match", "encode", "-u", "kh-analyst", "-p", "TH-ONCB", "-o", str(good)])
    doc = json.loads(good.read_text(encoding="utf-8"))
    short = json.loads(json.dumps(doc))
    short["persons"][1]["clk"] = short["persons"][1]["clk"][:20]
    (tmp_path / "short.json").write_text(json.dumps(short), encoding="utf-8")
    other = json.loads(json.dumps(doc))
    other["schema"] = other["schema"].replace("k=", "k=x") + ";name:text:3:20"
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    for name, message in (("short.json", "short.json: person 2:"), ("junk.json", "junk.json: not a readable"),
                          ("other.json", "different schemas")):
        said = _run(kh, monkeypatch, ["match", "compare", str(good), str(tmp_path / name), "-o", str(tmp_path / "p.csv")], 2)
        assert message in said, said
        assert "Traceback" not in said
    assert not (tmp_path / "p.csv").exists()
    again = pprl_files.read(good)
    assert again.encodings.encodings.shape == (3, 16) and len(again.encodings.blocks.rows) >= 3
