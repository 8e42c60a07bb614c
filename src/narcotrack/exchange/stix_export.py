"""What a caller may see, as a stream of STIX 2.1 objects and as a bundle file.

The store is read in chunks ordered by (updated_at, id), so an export of a million incidents holds one
chunk in memory, and ``since`` gives an incremental feed. Each record passes the sharing policy
(``visible_filter``) and RED never leaves the node, whoever asks. Persons are named in full only when
``identity_access`` says so; otherwise their name is the reader's pseudonym. Organisations, places and
markings are sent once, the first time something refers to them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Connection, and_, or_, select

from narcotrack.access.policy import Principal, identity_access, pseudonym_for, visible_filter
from narcotrack.exchange import stix_map
from narcotrack.exchange.extension import extension_definition, producer
from narcotrack.exchange.ids import stix_id
from narcotrack.exchange.markings import NEVER_EXPORTED, marking_definition
from narcotrack.store.schema import (
    Arrest,
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
)

CHUNK = 1000


STIX_TYPE = {"person": "identity", "operation": "grouping", "incident": "incident"}
TABLES = {"person": Person.__table__, "operation": Operation.__table__, "incident": Incident.__table__}


def default_stix_id(record_type: str, record_id: str) -> str:
    """The STIX id a record of this node gets (a record pulled from a partner keeps the partner's).

    It is the record's own UUID in the version-4 layout the STIX validator demands (the version nibble
    set to 4), so the same record always gets the same id and the id leads back to the record."""
    value = uuid.UUID(record_id)
    return f"{STIX_TYPE[record_type]}--{uuid.UUID(int=(value.int & ~(0xF << 76)) | (0x4 << 76))}"


def record_id_candidates(stix_ref: str) -> list[str]:
    """The record ids a STIX id of this node can stand for (records have version-4, -5 or -7 UUIDs)."""
    try:
        value = uuid.UUID(stix_ref.split("--", 1)[1])
    except (IndexError, ValueError):
        return []
    return [str(uuid.UUID(int=(value.int & ~(0xF << 76)) | (v << 76))) for v in (7, 5, 4)]


@dataclass
class ExportStats:
    """What an export held, for the audit trail and the command's summary."""

    by_type: Counter[str] = field(default_factory=Counter)
    persons_full: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


class StixExporter:
    """One export for one principal: yields STIX objects (as ``stix2`` objects) in a stable order."""

    def __init__(self, conn: Connection, principal: Principal, key: bytes, *,
                 since: dt.datetime | None = None, chunk: int = CHUNK, owners: Iterable[str] | None = None) -> None:
        self.conn, self.p, self.key, self.since, self.chunk = conn, principal, key, since, chunk
        # Only records these organisations own (a push sends this node's own records, not its partners').
        self.owners = sorted(owners) if owners is not None else None
        self.stats = ExportStats()
        self._seen: set[str] = set()
        orgs = conn.execute(select(Organisation.__table__)).mappings().all()
        self._orgs = {o["id"]: o for o in orgs}
        self._groups = {gid: name for gid, name in conn.execute(select(SharingGroup.id, SharingGroup.name))}

    # -- the shared pieces, each sent once ------------------------------------------------------------------
    def _once(self, obj: Any) -> Iterator[Any]:
        if obj["id"] not in self._seen:
            self._seen.add(obj["id"])
            self.stats.by_type[obj["type"]] += 1
            yield obj

    def _org(self, org_id: str) -> Iterator[Any]:
        org = self._orgs[org_id]
        parent = self._orgs.get(org["parent_id"]) if org["parent_id"] else None
        if stix_map.org_stix_id(org["code"]) not in self._seen:
            yield from self._once(stix_map.organisation(org, parent["code"] if parent else None))

    def _marking(self, marking: str) -> Iterator[Any]:
        from narcotrack.exchange.markings import TLP2_IDS

        if TLP2_IDS[marking] not in self._seen:
            yield from self._once(marking_definition(marking))

    def _places(self, place_ids: Iterable[str]) -> dict[str, Mapping[Any, Any]]:
        ids = sorted(set(place_ids))
        if not ids:
            return {}
        t = Place.__table__
        parent = t.alias("parent")
        q = (select(t, parent.c.code.label("parent_code")).outerjoin(parent, parent.c.id == t.c.parent_id)
             .where(t.c.id.in_(ids)))
        return {r["id"]: r for r in self.conn.execute(q).mappings()}

    def _provenance(self, record_type: str, ids: Iterable[str]) -> dict[str, tuple[str, str | None, bool]]:
        """Per record id: its STIX id (the partner's, for a record pulled from one), the pseudonym it came
        under and whether it is a withheld stand-in."""
        wanted = sorted(set(ids))
        out: dict[str, tuple[str, str | None, bool]] = {i: (default_stix_id(record_type, i), None, False)
                                                         for i in wanted}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            q = select(StixProvenance.record_id, StixProvenance.stix_id, StixProvenance.pseudonym,
                       StixProvenance.withheld).where(
                StixProvenance.record_type == record_type, StixProvenance.record_id.in_(part))
            out.update({rid: (sid, alias, bool(withheld)) for rid, sid, alias, withheld in self.conn.execute(q)})
        return out

    def _stix_ids(self, record_type: str, ids: Iterable[str]) -> dict[str, str]:
        """STIX ids of records that may be exported (withheld stand-ins are left out)."""
        return {rid: sid for rid, (sid, _, withheld) in self._provenance(record_type, ids).items() if not withheld}

    # -- the records -------------------------------------------------------------------------------------------
    def _chunks(self, table: Any) -> Iterator[list[Mapping[Any, Any]]]:
        """Visible rows of ``table`` in (updated_at, id) order, a chunk at a time, by keyset."""
        c = table.c
        cond = and_(visible_filter(self.p, table), c.marking.notin_(sorted(NEVER_EXPORTED)))
        if self.since is not None:
            cond = and_(cond, c.updated_at > self.since)
        if self.owners is not None:
            cond = and_(cond, c.owner_org_id.in_(self.owners))
        last: tuple[Any, str] | None = None
        while True:
            q = select(table).where(cond)
            if last is not None:
                q = q.where(or_(c.updated_at > last[0], and_(c.updated_at == last[0], c.id > last[1])))
            rows = self.conn.execute(q.order_by(c.updated_at, c.id).limit(self.chunk)).mappings().all()
            if not rows:
                return
            yield list(rows)
            last = (rows[-1]["updated_at"], rows[-1]["id"])

    def _visible_ids(self, table: Any, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        c = table.c
        found: set[str] = set()
        cond = and_(visible_filter(self.p, table), c.marking.notin_(sorted(NEVER_EXPORTED)))
        for start in range(0, len(wanted), 500):
            q = select(c.id).where(cond, c.id.in_(wanted[start:start + 500]))
            found.update(self.conn.execute(q).scalars())
        return found

    def persons(self) -> Iterator[Any]:
        for rows in self._chunks(Person.__table__):
            yield from self.person_objects(rows)

    def operations(self) -> Iterator[Any]:
        for rows in self._chunks(Operation.__table__):
            yield from self.operation_objects(rows)

    def incidents(self) -> Iterator[Any]:
        for rows in self._chunks(Incident.__table__):
            yield from self.incident_objects(rows)

    def person_objects(self, rows: list[Mapping[Any, Any]]) -> Iterator[Any]:
        """Persons (visible rows of ``person``) with the organisations and markings they refer to."""
        ident = PersonIdentity.__table__
        prov = self._provenance("person", [r["id"] for r in rows])
        rows = [r for r in rows if not prov[r["id"]][2]]
        full = [r["id"] for r in rows if identity_access(self.p, _Shared(r)) == "full"]
        idents = {r["person_id"]: r for r in self.conn.execute(
            select(ident).where(ident.c.person_id.in_(full))).mappings()} if full else {}
        for r in rows:
            owner = self._orgs[r["owner_org_id"]]
            yield from self._org(owner["id"])
            yield from self._marking(r["marking"])
            access = identity_access(self.p, _Shared(r))
            identity = idents.get(r["id"]) if access == "full" else None
            if identity is not None:
                self.stats.persons_full.append(r["id"])
            pseudonym = pseudonym_for(self.key, self.p, _Shared(r), r["id"]) if access == "pseudonym" else None
            if access == "full" and identity is None:
                pseudonym = prov[r["id"]][1]  # known here only under the owner's pseudonym
            yield from self._once(stix_map.person(
                r, sid=prov[r["id"]][0], owner_ref=stix_map.org_stix_id(owner["code"]), identity=identity,
                pseudonym=pseudonym, group_names=self._groups))

    def operation_objects(self, rows: list[Mapping[Any, Any]]) -> Iterator[Any]:
        """Operations as groupings of the incidents the reader may see and the participating agencies."""
        ids = [r["id"] for r in rows]
        sids = self._stix_ids("operation", ids)
        parts: dict[str, list[tuple[str, str]]] = {}
        q = (select(OperationParticipant.operation_id, OperationParticipant.org_id, OperationParticipant.role)
             .where(OperationParticipant.operation_id.in_(ids))
             .order_by(OperationParticipant.operation_id, OperationParticipant.org_id))
        for op_id, org_id, role in self.conn.execute(q):
            parts.setdefault(op_id, []).append((org_id, role))
        inc = Incident.__table__
        linked: dict[str, list[str]] = {}
        q2 = (select(inc.c.operation_id, inc.c.id)
              .where(inc.c.operation_id.in_(ids), visible_filter(self.p, inc),
                     inc.c.marking.notin_(sorted(NEVER_EXPORTED))).order_by(inc.c.operation_id, inc.c.id))
        for op_id, inc_id in self.conn.execute(q2):
            linked.setdefault(op_id, []).append(inc_id)
        inc_sids = self._stix_ids("incident", [i for v in linked.values() for i in v])
        for r in rows:
            owner = self._orgs[r["owner_org_id"]]
            for org_id in [owner["id"], r["lead_org_id"], *(o for o, _ in parts.get(r["id"], []))]:
                yield from self._org(org_id)
            yield from self._marking(r["marking"])
            yield from self._once(stix_map.operation(
                r, sid=sids[r["id"]], owner_ref=stix_map.org_stix_id(owner["code"]),
                lead_code=self._orgs[r["lead_org_id"]]["code"],
                participants=[(self._orgs[o]["code"], role) for o, role in parts.get(r["id"], [])],
                incident_refs=[inc_sids[i] for i in linked.get(r["id"], [])], group_names=self._groups))

    def incident_objects(self, rows: list[Mapping[Any, Any]]) -> Iterator[Any]:
        """Incidents with their seizures and arrests, places, and relationships to persons and places."""
        ids = [r["id"] for r in rows]
        seizures: dict[str, list[Mapping[Any, Any]]] = {}
        for s in self.conn.execute(select(Seizure.__table__).where(Seizure.incident_id.in_(ids))
                                   .order_by(Seizure.incident_id, Seizure.created_at, Seizure.id)).mappings():
            seizures.setdefault(s["incident_id"], []).append(s)
        arrests: dict[str, list[Mapping[Any, Any]]] = {}
        for arrest in self.conn.execute(select(Arrest.__table__).where(Arrest.incident_id.in_(ids))
                                        .order_by(Arrest.incident_id, Arrest.created_at, Arrest.id)).mappings():
            arrests.setdefault(arrest["incident_id"], []).append(arrest)
        person_ids = [a["person_id"] for v in arrests.values() for a in v]
        visible_persons = self._visible_ids(Person.__table__, person_ids)
        person_sids = self._stix_ids("person", visible_persons)
        places = self._places(r["place_id"] for r in rows if r["place_id"])
        op_ids = [r["operation_id"] for r in rows if r["operation_id"]]
        visible_ops = self._visible_ids(Operation.__table__, op_ids)
        op_sids = self._stix_ids("operation", visible_ops)
        sids = self._stix_ids("incident", ids)
        for r in rows:
            owner = self._orgs[r["owner_org_id"]]
            owner_ref = stix_map.org_stix_id(owner["code"])
            yield from self._org(owner["id"])
            yield from self._org(r["reporting_org_id"])
            yield from self._marking(r["marking"])
            place = places.get(r["place_id"]) if r["place_id"] else None
            if place is not None:
                yield from self._once(stix_map.place(place, place["parent_code"]))
            mine = arrests.get(r["id"], [])
            obj = stix_map.incident(
                r, sid=sids[r["id"]], owner_ref=owner_ref, reporting_code=self._orgs[r["reporting_org_id"]]["code"],
                seizures=seizures.get(r["id"], []),
                arrests=[(a, person_sids.get(a["person_id"])) for a in mine],
                place_code=place["code"] if place else None,
                operation_ref=op_sids.get(r["operation_id"]) if r["operation_id"] else None,
                group_names=self._groups)
            yield from self._once(obj)
            modified = obj["modified"]
            if place is not None:
                yield from self._once(stix_map.relationship(
                    obj["id"], "located-at", stix_map.place_stix_id(place["code"]), modified=modified,
                    marking=r["marking"], owner_ref=owner_ref))
            for a in mine:
                ref = person_sids.get(a["person_id"])
                if ref is not None:
                    yield from self._once(stix_map.relationship(
                        ref, "related-to", obj["id"], modified=modified, marking=r["marking"],
                        owner_ref=owner_ref))

    def objects(self) -> Iterator[Any]:
        """Everything the caller may see: the producer and extension definition, then persons, operations
        and incidents, each preceded by what it refers to."""
        yield from self._once(producer())
        yield from self._once(extension_definition())
        yield from self.persons()
        yield from self.operations()
        yield from self.incidents()


class _Shared:
    """A row seen through the attributes the policy reads."""

    def __init__(self, row: Mapping[Any, Any]) -> None:
        self.owner_org_id = row["owner_org_id"]
        self.marking = row["marking"]
        self.distribution = row["distribution"]
        self.sharing_group_id = row["sharing_group_id"]


def as_dict(obj: Any) -> dict[str, Any]:
    """A ``stix2`` object as plain JSON data (what goes on the wire)."""
    return dict(json.loads(obj.serialize()))


def write_bundle(objects: Iterable[Any], out: IO[str]) -> int:
    """Stream ``objects`` into one STIX bundle; its id is derived from the content, so the same export
    gives the same file. Returns the number of objects written."""
    digest = hashlib.sha256()
    out.write('{"type": "bundle", "objects": [')
    n = 0
    for obj in objects:
        text = obj.serialize(sort_keys=True)
        digest.update(text.encode())
        out.write(("\n" if n == 0 else ",\n") + text)
        n += 1
    bundle_id = stix_id("bundle", digest.hexdigest())
    out.write(f'\n], "id": "{bundle_id}"}}\n')
    return n

