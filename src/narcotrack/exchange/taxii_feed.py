"""What the TAXII 2.1 server serves: collections, pages of objects, manifests, uploads and their status.

The web layer (``narcotrack.web.taxii``) only speaks HTTP; everything here is plain data in and out, and
every object passes the sharing policy through ``StixExporter`` (RED never leaves; AMBER only to those
the owner's distribution reaches).

A collection is a slice of what the caller may see: ``all`` of it, what is shared with ``partners``, or
what is shared with one sharing group the caller's organisation belongs to; ``inbox`` takes uploads.
Records are served in the order they were added or last changed (``updated_at``, then type and id), and
each record comes with the organisations, places, markings and relationships it refers to, under the
same ``date_added``. ``next`` is a stateless keyset token, so a page asked for again, or a pull resumed
after a dropped connection, gives the same objects.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, literal, or_, select, union_all
from sqlalchemy.engine import Engine

from narcotrack.access.policy import Principal, check_may_import, visible_filter
from narcotrack.errors import Forbidden, InvalidInput, NotFound
from narcotrack.exchange import stix_map
from narcotrack.exchange.ids import stix_uuid
from narcotrack.exchange.stix_export import TABLES, StixExporter, as_dict, record_id_candidates
from narcotrack.exchange.stix_read import kind_of
from narcotrack.store.schema import Organisation, SharingGroup, StixProvenance, TaxiiStatus

TAXII_MEDIA = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"
MAX_PAGE = 1000
KIND_OF_TYPE = {"identity": "person", "grouping": "operation", "incident": "incident"}
ROOT_KINDS = ("incident", "operation", "person")  # the order ties are broken in


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    can_read: bool
    can_write: bool
    distribution: str | None = None
    group_id: str | None = None

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "description": self.description, "can_read": self.can_read,
                "can_write": self.can_write, "media_types": [STIX_MEDIA]}


def _cid(name: str) -> str:
    return stix_uuid("taxii-collection", name)


def collections(conn: Connection, p: Principal) -> list[Collection]:
    """The collections ``p`` may use, in a stable order."""
    out = [Collection(_cid("all"), "Everything shared with you", "Every record of this node your organisation "
                      "may see, under its sharing agreements.", True, False),
           Collection(_cid("partners"), "Shared with all partners", "Records their owners share with every "
                      "partner organisation.", True, False, distribution="partners")]
    if p.groups:
        rows = conn.execute(select(SharingGroup.id, SharingGroup.name).where(SharingGroup.id.in_(sorted(p.groups)))
                            .order_by(SharingGroup.name))
        out += [Collection(_cid(f"group:{gid}"), name, f"Records shared under the agreement {name!r}.", True, False,
                           distribution="group", group_id=gid) for gid, name in rows]
    try:
        check_may_import(p)
    except Forbidden:  # the role may not send records: no inbox
        return out
    out.append(Collection(_cid("inbox"), "Inbox", "Send your organisation's records here; they are stored "
                          "with your organisation as owner and their STIX ids kept.", False, True))
    return out


def collection(conn: Connection, p: Principal, collection_id: str) -> Collection:
    for c in collections(conn, p):
        if c.id == collection_id:
            return c
    raise NotFound(f"no collection {collection_id!r} that you may use")


@dataclass
class Page:
    objects: list[dict[str, Any]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # date_added of each object
    more: bool = False
    next: str | None = None
    persons_full: list[str] = field(default_factory=list)

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"more": self.more, "objects": self.objects}
        if self.next:
            body["next"] = self.next
        return body

    def manifest(self) -> dict[str, Any]:
        body: dict[str, Any] = {"more": self.more, "objects": [
            {"id": o["id"], "date_added": a, "version": o.get("modified", o.get("created")), "media_type": STIX_MEDIA}
            for o, a in zip(self.objects, self.added, strict=True)]}
        if self.next:
            body["next"] = self.next
        return body


def taxii_time(value: dt.datetime) -> str:
    """A TAXII timestamp to the microsecond (``date_added`` must tell records changed in the same ms apart)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} is not a timestamp such as 2026-12-01T00:00:00.000Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _token(key: tuple[dt.datetime, str, str]) -> str:
    raw = json.dumps([taxii_time(key[0]), key[1], key[2]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> tuple[dt.datetime, str, str]:
    try:
        u, k, i = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return parse_time(u, "next"), str(k), str(i)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the next token is not one this server gave out") from exc


def _ids_by_kind(conn: Connection, match_ids: Sequence[str]) -> dict[str, set[str]]:
    """Record ids, per kind, that the STIX ids asked for may stand for (pulled records by provenance)."""
    out: dict[str, set[str]] = {k: set() for k in ROOT_KINDS}
    for sid in match_ids:
        kind = KIND_OF_TYPE.get(sid.split("--", 1)[0])
        if kind is not None:
            out[kind].update(record_id_candidates(sid))
    rows = conn.execute(select(StixProvenance.record_type, StixProvenance.record_id)
                        .where(StixProvenance.stix_id.in_(list(match_ids))))
    for rtype, rid in rows:
        out.setdefault(rtype, set()).add(rid)
    return out


def _index(conn: Connection, p: Principal, coll: Collection, *, kinds: Iterable[str], added_after: dt.datetime | None,
           after: tuple[dt.datetime, str, str] | None, limit: int,
           ids: dict[str, set[str]] | None) -> list[tuple[dt.datetime, str, str]]:
    """The next ``limit`` + 1 records of the collection by (updated_at, kind, id); each branch is cut to
    the limit on its own index before the branches are merged."""
    parts = []
    for kind in kinds:
        t = TABLES[kind]
        c = t.c
        cond = and_(visible_filter(p, t), c.marking != "RED")
        if coll.distribution:
            cond = and_(cond, c.distribution == coll.distribution)
        if coll.group_id:
            cond = and_(cond, c.sharing_group_id == coll.group_id)
        if added_after is not None:
            cond = and_(cond, c.updated_at > added_after)
        if ids is not None:
            cond = and_(cond, c.id.in_(sorted(ids.get(kind, set())) or [""]))
        if kind == "person":
            cond = and_(cond, ~exists().where(StixProvenance.record_id == c.id, StixProvenance.withheld.is_(True)))
        if after is not None:
            au, ak, ai = after
            if kind > ak:
                cond = and_(cond, c.updated_at >= au)
            elif kind == ak:
                cond = and_(cond, or_(c.updated_at > au, and_(c.updated_at == au, c.id > ai)))
            else:
                cond = and_(cond, c.updated_at > au)
        branch = (select(c.updated_at.label("u"), literal(kind).label("k"), c.id.label("i")).where(cond)
                  .order_by(c.updated_at, c.id).limit(limit + 1).subquery())
        parts.append(select(branch))
    if not parts:
        return []
    merged = union_all(*parts).subquery()
    q = select(merged.c.u, merged.c.k, merged.c.i).order_by(merged.c.u, merged.c.k, merged.c.i).limit(limit + 1)
    return [(u, k, i) for u, k, i in conn.execute(q)]


def read_page(conn: Connection, p: Principal, key: bytes, coll: Collection, *, added_after: str | None = None,
              limit: int | None = None, next_token: str | None = None, match_ids: Sequence[str] = (),
              match_types: Sequence[str] = (), match_versions: Sequence[str] = (),
              match_spec_versions: Sequence[str] = ()) -> Page:
    """One page of a collection's objects, as ``p`` may see them."""
    if not coll.can_read:
        raise Forbidden("this collection takes uploads only")
    size = max(1, min(limit or MAX_PAGE, MAX_PAGE))
    if match_spec_versions and "2.1" not in match_spec_versions:
        return Page()
    kinds = list(ROOT_KINDS)
    if match_types:
        wanted = set(match_types)
        kinds = [k for k in ROOT_KINDS if stix_type_of(k) in wanted
                 or (k == "incident" and wanted & {"relationship", "location"})]
    ids = _ids_by_kind(conn, match_ids) if match_ids else None
    after = _untoken(next_token) if next_token else None
    since = parse_time(added_after, "added_after") if added_after else None
    page, exporter = Page(), StixExporter(conn, p, key)
    batch, records = max(1, size // 4), 0  # a record comes with about three objects it refers to
    while True:
        keys = _index(conn, p, coll, kinds=kinds, added_after=since, after=after, limit=batch, ids=ids)
        for k, (objects, added) in zip(keys[:batch], _groups(conn, exporter, keys[:batch]), strict=True):
            if page.objects and len(page.objects) + len(objects) > size:  # but at least one record
                page.more, page.next = True, _token(after) if after else None
                break
            page.objects += objects
            page.added += [added] * len(objects)
            records += 1
            after = k
        else:
            if len(keys) > batch:
                # the rest of the page, at the rate seen so far (a tenth more): records read beyond
                # the page are built for nothing
                per_record = len(page.objects) / max(records, 1)
                batch = max(1, int((size - len(page.objects)) / per_record * 1.1) + 1)
                continue
            break
        break
    page.persons_full = exporter.stats.persons_full
    _filter(page, match_ids, match_types, match_versions)
    return page


def _groups(conn: Connection, exporter: StixExporter,
            keys: list[tuple[dt.datetime, str, str]]) -> list[tuple[list[dict[str, Any]], str]]:
    """Per key, the objects its record brings (what it refers to, not sent before on this page; the
    record; its relationships) and its date_added.

    The exporter is asked once per kind for all the batch's records of that kind (so each kind costs a
    handful of queries per batch, not per run of consecutive keys), and its generators are drawn from in
    key order, so that a shared object (an organisation, a marking, a place) goes with the first record
    on the page that refers to it."""
    makers = {"person": exporter.person_objects, "operation": exporter.operation_objects,
              "incident": exporter.incident_objects}
    rows = _rows(conn, keys)
    streams = {kind: map(as_dict, makers[kind](list(found.values()))) for kind, found in rows.items()}
    out: list[tuple[list[dict[str, Any]], str]] = []
    last: dict[str, list[dict[str, Any]]] = {}  # the objects of the latest record of each kind
    for _, kind, rid in keys:
        row = rows.get(kind, {}).get(rid)
        if row is None:
            continue
        pending: list[dict[str, Any]] = []
        for obj in streams[kind]:
            if obj["type"] == "relationship" and not pending and kind in last:
                last[kind].append(obj)  # the previous record's relationships, yielded after it
                continue
            pending.append(obj)
            if kind_of(obj) in ("individual", "grouping", "incident"):
                break
        out.append((pending, taxii_time(row["updated_at"])))
        last[kind] = pending
    for kind, stream in streams.items():  # the relationships of each kind's last record
        for obj in stream:
            last[kind].append(obj)
    return out


def stix_type_of(kind: str) -> str:
    return {"person": "identity", "operation": "grouping", "incident": "incident"}[kind]


def _rows(conn: Connection, keys: list[tuple[dt.datetime, str, str]]) -> dict[str, dict[str, Any]]:
    """The records behind the keys, per kind, in key order."""
    wanted: dict[str, list[str]] = {}
    for _, kind, rid in keys:
        wanted.setdefault(kind, []).append(rid)
    out: dict[str, dict[str, Any]] = {}
    for kind, ids in wanted.items():
        t = TABLES[kind]
        found = {r["id"]: r for r in conn.execute(select(t).where(t.c.id.in_(ids))).mappings()}
        out[kind] = {i: found[i] for i in ids if i in found}
    return out


def _filter(page: Page, ids: Sequence[str], types: Sequence[str], versions: Sequence[str]) -> None:
    keep = []
    for obj, added in zip(page.objects, page.added, strict=True):
        if ids and obj["id"] not in ids:
            continue
        if types and obj["type"] not in types:
            continue
        version = obj.get("modified", obj.get("created"))
        if versions and not {"all", "last", "first"} & set(versions) and version not in versions:
            continue
        keep.append((obj, added))
    page.objects = [o for o, _ in keep]
    page.added = [a for _, a in keep]


# -- uploads ------------------------------------------------------------------------------------------------
def accept_upload(engine: Engine, p: Principal, objects: list[dict[str, Any]], *, user_id: str | None,
                  partner_id: str | None = None, distribution: str | None = None) -> dict[str, Any]:
    """Store what a partner sends to its inbox and return the TAXII status resource.

    A partner may send only records its own organisation owns (``created_by_ref``); each object succeeds
    or fails on its own, as TAXII reports it."""
    from narcotrack.exchange.stix_import import import_objects

    check_may_import(p)
    with engine.connect() as conn:
        code = conn.scalar(select(Organisation.code).where(Organisation.id == p.org_id))
    own = stix_map.org_stix_id(str(code))
    failures: list[dict[str, Any]] = []
    allowed: list[dict[str, Any]] = []
    for obj in objects:
        kind = kind_of(obj) if isinstance(obj, dict) and isinstance(obj.get("extensions"), dict) else None
        if kind in ("individual", "grouping", "incident") and obj.get("created_by_ref") != own:
            failures.append(_outcome(obj, f"your organisation ({code}) may send only records it owns"))
        elif kind is None and isinstance(obj, dict) and obj.get("type") not in ACCEPTED_TYPES:
            failures.append(_outcome(obj, "narcotrack stores only its own record types; not stored"))
        else:
            allowed.append(obj)
    report = import_objects(engine, allowed, file_name="TAXII upload", partial=True, distribution=distribution,
                            partner_id=partner_id, user_id=user_id, org_id=p.org_id)
    problems: dict[str, str] = {}
    for problem in report.problems:
        problems.setdefault(problem.stix_id, f"{problem.property}: {problem.reason}")
    successes = []
    for obj in allowed:
        if obj.get("id") in problems:
            failures.append(_outcome(obj, problems[obj["id"]]))
        else:
            successes.append(_outcome(obj))
    now = taxii_time(dt.datetime.now(dt.UTC))
    status = {"id": str(uuid.uuid4()), "status": "complete", "request_timestamp": now,
              "total_count": len(objects), "success_count": len(successes), "failure_count": len(failures),
              "pending_count": 0, "successes": successes, "failures": failures}
    with engine.begin() as conn:
        conn.execute(insert(TaxiiStatus), [{"id": status["id"], "user_id": user_id, "body": status,
                                                      "created_at": dt.datetime.now(dt.UTC)}])
    return status


ACCEPTED_TYPES = {"identity", "location", "marking-definition", "extension-definition", "relationship"}


def _outcome(obj: Any, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(obj.get("id", "")) if isinstance(obj, dict) else ""}
    if isinstance(obj, dict) and (obj.get("modified") or obj.get("created")):
        out["version"] = obj.get("modified") or obj.get("created")
    if message:
        out["message"] = message
    return out


def read_status(conn: Connection, p: Principal, status_id: str) -> dict[str, Any]:
    row = conn.execute(select(TaxiiStatus.body, TaxiiStatus.user_id).where(TaxiiStatus.id == status_id)).first()
    if row is None or (row.user_id is not None and row.user_id != p.user_id):
        raise NotFound(f"no status {status_id!r} of yours")
    return dict(row.body)
