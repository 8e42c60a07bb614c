"""Store a STIX 2.1 bundle from a partner: upsert by STIX id, keep provenance, all or nothing.

Every object is read and checked before anything is written; one bad object rejects the bundle (with
its index, id, property and reason) unless the caller asks for a partial import. An object already held
is updated only when the partner's ``modified`` is newer, so pulling the same feed twice, or resuming a
pull that was cut, changes nothing the second time. Records keep the partner's STIX ids, owner and TLP
marking; organisations and places are matched by code, and ones this node does not know are added.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import Engine

from narcotrack.domain.ids import stable_id
from narcotrack.errors import ImportRejected, InvalidInput
from narcotrack.exchange import stix_map
from narcotrack.exchange.ids import stix_id
from narcotrack.exchange.stix_map import timestamp as timestamp_of
from narcotrack.exchange.stix_read import Read, kind_of, read
from narcotrack.store.schema import (
    Arrest,
    ImportBatch,
    Incident,
    Operation,
    OperationParticipant,
    Organisation,
    Person,
    PersonIdentity,
    Place,
    Seizure,
    SharingGroup,
    StixProvenance,
    utcnow,
)

ORDER = ("organization", "location", "individual", "grouping", "incident")
RECORD_TYPE = {"individual": "person", "grouping": "operation", "incident": "incident"}
TABLE = {"person": Person, "operation": Operation, "incident": Incident}


@dataclass
class Problem:
    index: int
    stix_id: str
    property: str
    reason: str


@dataclass
class StixImportReport:
    """What a bundle held and what became of it."""

    file_name: str
    objects: int = 0
    committed: bool = False
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    owned_here: Counter[str] = field(default_factory=Counter)  # this node's own records sent back
    not_ours: Counter[str] = field(default_factory=Counter)  # STIX types without narcotrack's extension
    problems: list[Problem] = field(default_factory=list)

    def to_text(self, max_problems: int = 20) -> str:
        outcome = "imported" if self.committed else "NOT imported: nothing was changed in the store"
        lines = [f"Import of STIX bundle {self.file_name}", f"  outcome     {outcome}", f"  objects     {self.objects:,}"]
        for label, counts in (("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged),
                              ("owned here", self.owned_here), ("not records", self.not_ours)):
            if counts:
                lines.append(f"  {label:<11} " + ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items())))
        if self.problems:
            lines.append(f"First {min(len(self.problems), max_problems)} of {len(self.problems):,} problems:")
            lines += [f"  object {p.index} ({p.stix_id}), {p.property}: {p.reason}" for p in self.problems[:max_problems]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def load_bundle(path: Path) -> list[dict[str, Any]]:
    """The objects of a bundle file, or a clear error when the file is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not a JSON file: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != "bundle" or not isinstance(data.get("objects", []), list):
        raise InvalidInput(f"{path.name} is not a STIX 2.1 bundle (no \"type\": \"bundle\" with a list of objects)")
    return [o for o in data.get("objects", []) if isinstance(o, dict)]


def import_file(engine: Engine, path: Path, **options: Any) -> StixImportReport:
    objects = load_bundle(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return import_objects(engine, objects, file_name=path.name, sha256=digest, **options)


def import_objects(engine: Engine, objects: Iterable[dict[str, Any]], *, file_name: str = "(objects)",
                   sha256: str = "", partial: bool = False, distribution: str | None = None,
                   partner_id: str | None = None, user_id: str | None = None,
                   org_id: str | None = None) -> StixImportReport:
    """Check every object, then write them all in one transaction (or none, when one is bad and
    ``partial`` is false). ``distribution`` overrides where the records are shared on this node."""
    report = StixImportReport(file_name=file_name)
    reads: dict[str, list[tuple[int, Read]]] = {k: [] for k in ORDER}
    for index, obj in enumerate(objects):
        report.objects += 1
        kind = kind_of(obj) if isinstance(obj.get("extensions"), dict) else None
        if kind is None:
            report.not_ours[str(obj.get("type"))] += 1
            continue
        r = read(obj)
        reads[kind].append((index, r))
    with engine.begin() as conn:
        writer = _Writer(conn, report, distribution=distribution, partner_id=partner_id)
        writer.resolve(reads)
        if report.problems and not partial:
            conn.rollback()
            raise ImportRejected(report.to_text(), report)
        batch_id = stable_id("import_batch", f"stix:{sha256 or file_name}:{utcnow().isoformat()}")
        conn.execute(insert(ImportBatch), [{
            "id": batch_id, "file_name": file_name[:400], "sha256": sha256, "format": "stix",
            "rows_read": report.objects, "rows_imported": sum(report.created.values()) + sum(report.updated.values()),
            "rows_skipped_existing": sum(report.unchanged.values()), "rows_rejected": len(report.problems),
            "partial": partial, "user_id": user_id, "org_id": org_id}])
        writer.write(reads, batch_id)
        from narcotrack.access.audit import record_event

        record_event(conn, "import", user_id=user_id, org_id=org_id, record_type="stix_bundle",
                     detail={"file": file_name, "partner": partner_id, "created": dict(report.created),
                             "updated": dict(report.updated), "unchanged": sum(report.unchanged.values())})
    report.committed = True
    return report


class _Writer:
    """Resolves references (codes, STIX ids) against the store and the bundle, then writes."""

    def __init__(self, conn: Connection, report: StixImportReport, *, distribution: str | None,
                 partner_id: str | None) -> None:
        self.conn, self.report, self.distribution, self.partner_id = conn, report, distribution, partner_id
        rows = conn.execute(select(Organisation.code, Organisation.id, Organisation.domestic)).all()
        self.orgs = {code: org_id for code, org_id, _ in rows}
        self.domestic = {code for code, _, domestic in rows if domestic}
        self.org_by_sid = {stix_map.org_stix_id(code): code for code in self.orgs}
        self.places = dict(conn.execute(select(Place.code, Place.id)).all())
        self.groups = dict(conn.execute(select(SharingGroup.name, SharingGroup.id)).all())
        self.known: dict[str, tuple[str, str, str]] = {}  # stix id -> (record type, record id, modified)
        self.bad: set[str] = set()

    def _problem(self, index: int, r: Read, prop: str, reason: str) -> None:
        self.report.problems.append(Problem(index, r.stix_id, prop, reason))
        self.bad.add(r.stix_id)

    def resolve(self, reads: dict[str, list[tuple[int, Read]]]) -> None:
        for _, r in reads["organization"]:
            self.org_by_sid[r.stix_id] = r.fields["code"]
        sids = [r.stix_id for k in ("individual", "grouping", "incident") for _, r in reads[k]]
        for start in range(0, len(sids), 500):
            q = select(StixProvenance.stix_id, StixProvenance.record_type, StixProvenance.record_id,
                       StixProvenance.modified).where(StixProvenance.stix_id.in_(sids[start:start + 500]))
            for sid, rtype, rid, modified in self.conn.execute(q):
                self.known[sid] = (rtype, rid, modified)
        in_bundle = {r.stix_id for k in ("individual", "grouping") for _, r in reads[k]}
        bundle_places = {r.fields["code"] for _, r in reads["location"] if not r.problems}
        bundle_orgs = set(self.org_by_sid.values())
        for kind in ORDER:
            for index, r in reads[kind]:
                for prop, reason in r.problems:
                    self._problem(index, r, prop, reason)
                if r.problems:
                    continue
                if kind in RECORD_TYPE:
                    self._check_shared(index, r, bundle_orgs)
                if kind == "incident":
                    for ref, prop in [(a["person_ref"], "arrests.person_ref") for a in r.parts["arrests"]] + [
                            (r.parts["operation_ref"], "operation_ref")]:
                        if ref and ref not in in_bundle and ref not in self.known and not self._held(ref):
                            self._problem(index, r, prop, f"refers to {ref}, which is neither in the bundle "
                                                          "nor held here")
                    code = r.parts["place_code"]
                    if code and code not in self.places and code not in bundle_places:
                        self._problem(index, r, "place_code", f"unknown place {code!r} and no location for it")
                    if r.parts["reporting"] not in self.orgs and r.parts["reporting"] not in bundle_orgs:
                        self._problem(index, r, "reporting_org", f"unknown organisation {r.parts['reporting']!r}")

    def _held(self, ref: str) -> bool:
        return self.conn.scalar(select(StixProvenance.record_id).where(StixProvenance.stix_id == ref)) is not None

    def _check_shared(self, index: int, r: Read, bundle_orgs: set[str]) -> None:
        if self.org_by_sid.get(r.parts["owner_ref"]) is None:
            self._problem(index, r, "created_by_ref", f"owner {r.parts['owner_ref']} is no organisation known here "
                                                      "or in the bundle")
        dist = self.distribution or r.fields["distribution"]
        if dist == "group" and self.distribution is None and r.parts["sharing_group"] not in self.groups:
            self._problem(index, r, "sharing_group", f"this node has no sharing group named "
                                                     f"{r.parts['sharing_group']!r}; import with a distribution")

    # -- writing -------------------------------------------------------------------------------------------------
    def write(self, reads: dict[str, list[tuple[int, Read]]], batch_id: str) -> None:
        for _, r in reads["organization"]:
            if r.stix_id not in self.bad and r.fields["code"] not in self.orgs:
                self._add_org(r)
        for _, r in reads["location"]:
            if r.stix_id not in self.bad and r.fields["code"] not in self.places:
                self._add_place(r)
        for kind in ("individual", "grouping", "incident"):
            for _, r in reads[kind]:
                if r.stix_id not in self.bad:
                    self._upsert(kind, r, batch_id)

    def _add_org(self, r: Read) -> None:
        new_id = stable_id("organisation", r.fields["code"])
        parent = self.orgs.get(r.parts["parent"] or "")
        self.conn.execute(insert(Organisation), [{**r.fields, "id": new_id, "domestic": False, "parent_id": parent}])
        self.orgs[r.fields["code"]] = new_id
        self.report.created["organisation"] += 1

    def _add_place(self, r: Read) -> None:
        new_id = stable_id("place", r.fields["code"])
        parent = self.places.get(r.parts["parent"] or "")
        self.conn.execute(insert(Place), [{**r.fields, "id": new_id, "parent_id": parent}])
        self.places[r.fields["code"]] = new_id
        self.report.created["place"] += 1

    def _sharing(self, r: Read) -> dict[str, Any]:
        dist = self.distribution or r.fields["distribution"]
        group = self.groups.get(r.parts["sharing_group"] or "") if dist == "group" else None
        return {"owner_org_id": self.orgs[self.org_by_sid[r.parts["owner_ref"]]], "distribution": dist,
                "sharing_group_id": group}

    def _record_id(self, ref: str | None) -> str | None:
        if ref is None:
            return None
        if ref in self.known:
            return self.known[ref][1]
        held = self.conn.scalar(select(StixProvenance.record_id).where(StixProvenance.stix_id == ref))
        return held

    def _upsert(self, kind: str, r: Read, batch_id: str) -> None:
        rtype = RECORD_TYPE[kind]
        table: Any = TABLE[rtype].__table__
        values = {**r.fields, **self._sharing(r)}
        held = self.known.get(r.stix_id)
        if held is not None and held[2] >= r.modified:
            self.report.unchanged[rtype] += 1
            return
        if held is None and self.org_by_sid[r.parts["owner_ref"]] in self.domestic:
            # This node's own record coming back from a partner: the original here is authoritative.
            self.report.owned_here[rtype] += 1
            return
        if kind == "grouping":
            values["lead_org_id"] = self.orgs[r.parts["lead"]]
        if kind == "incident":
            values.update(reporting_org_id=self.orgs[r.parts["reporting"]], import_batch_id=batch_id,
                          place_id=self.places.get(r.parts["place_code"] or ""),
                          operation_id=self._record_id(r.parts["operation_ref"]))
        if held is None:
            record_id = stable_id("stix", r.stix_id)
            self.conn.execute(insert(table), [{**values, "id": record_id, "version": 1}])
            self.conn.execute(insert(StixProvenance), [{
                "stix_id": r.stix_id, "record_type": rtype, "record_id": record_id, "partner_id": self.partner_id,
                "source_org_id": values["owner_org_id"], "modified": r.modified,
                "pseudonym": r.parts.get("pseudonym")}])
            self.report.created[rtype] += 1
        else:
            record_id = held[1]
            self.conn.execute(update(table).where(table.c.id == record_id)
                              .values(**values, version=table.c.version + 1))
            self.conn.execute(update(StixProvenance).where(StixProvenance.stix_id == r.stix_id)
                              .values(modified=r.modified, last_seen=utcnow(), partner_id=self.partner_id,
                                      pseudonym=r.parts.get("pseudonym")))
            self.report.updated[rtype] += 1
        self.known[r.stix_id] = (rtype, record_id, r.modified)
        getattr(self, f"_parts_{kind}")(record_id, r, values)

    def _parts_individual(self, record_id: str, r: Read, values: dict[str, Any]) -> None:
        self.conn.execute(delete(PersonIdentity).where(PersonIdentity.person_id == record_id))
        if "identity" in r.parts:
            self.conn.execute(insert(PersonIdentity), [{**r.parts["identity"], "person_id": record_id,
                                                        "updated_at": values["updated_at"]}])

    def _parts_grouping(self, record_id: str, r: Read, values: dict[str, Any]) -> None:
        self.conn.execute(delete(OperationParticipant).where(OperationParticipant.operation_id == record_id))
        rows = [{"operation_id": record_id, "org_id": self.orgs[code], "role": role}
                for code, role in r.parts["participants"] if code in self.orgs]
        if rows:
            self.conn.execute(insert(OperationParticipant), rows)

    def _parts_incident(self, record_id: str, r: Read, values: dict[str, Any]) -> None:
        self.conn.execute(delete(Seizure).where(Seizure.incident_id == record_id))
        self.conn.execute(delete(Arrest).where(Arrest.incident_id == record_id))
        stamps = {"created_at": values["created_at"], "updated_at": values["updated_at"]}
        seizures = [{**s, **stamps, "id": stable_id("stix-seizure", f"{r.stix_id}:{i}"), "incident_id": record_id}
                    for i, s in enumerate(r.parts["seizures"])]
        if seizures:
            self.conn.execute(insert(Seizure), seizures)
        arrests = []
        for i, a in enumerate(r.parts["arrests"]):
            person_id = self._record_id(a["person_ref"]) or self._stand_in(r.stix_id, i, values)
            arrests.append({"id": stable_id("stix-arrest", f"{r.stix_id}:{i}"), "incident_id": record_id,
                            "person_id": person_id, "role": a["role"], "charges": a["charges"],
                            "outcome": a["outcome"], "age_at_arrest": a["age_at_arrest"], **stamps})
        if arrests:
            self.conn.execute(insert(Arrest), arrests)

    def _stand_in(self, incident_sid: str, index: int, values: dict[str, Any]) -> str:
        """A person the partner did not share, arrested in a shared incident: kept as an unnamed person so
        that counts of persons arrested stay right, and marked withheld so it is never exported."""
        sid = stix_id("identity", "withheld", incident_sid, str(index))
        held = self._record_id(sid)
        if held is not None:
            return held
        person_id = stable_id("stix", sid)
        self.conn.execute(insert(Person), [{
            "id": person_id, "sex": "X", "owner_org_id": values["owner_org_id"], "marking": values["marking"],
            "distribution": values["distribution"], "sharing_group_id": values["sharing_group_id"],
            "created_at": values["created_at"], "updated_at": values["updated_at"]}])
        self.conn.execute(insert(StixProvenance), [{
            "stix_id": sid, "record_type": "person", "record_id": person_id, "partner_id": self.partner_id,
            "source_org_id": values["owner_org_id"], "modified": timestamp_of(values["updated_at"]),
            "withheld": True}])
        self.known[sid] = ("person", person_id, "")
        self.report.created["person withheld by the partner (unnamed stand-in)"] += 1
        return person_id
