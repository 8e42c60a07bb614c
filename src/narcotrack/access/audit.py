"""The audit chain: an append-only log in which every event carries the hash of the one before.

Each event's hash covers its sequence number, its fields and the previous event's hash, so that editing,
deleting or reordering any stored event breaks the chain at that point, and `verify_chain` says where.
Writers serialise on the chain's head (a PostgreSQL advisory lock; SQLite has one writer at a time), so
two concurrent writers never fork it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select

from narcotrack.store.schema import AuditEvent, Organisation, User, utcnow

GENESIS = "0" * 64
_LOCK_KEY = 0x6E61726374726B  # "narctrk": the advisory lock that serialises chain writers on PostgreSQL
_FIELDS = ("id", "at", "user_id", "org_id", "action", "record_type", "record_id", "address", "outcome", "detail")


def _canonical(event: dict[str, Any]) -> bytes:
    body = {k: event.get(k) for k in _FIELDS}
    at = body["at"]
    if isinstance(at, dt.datetime):
        # SQLite returns naive datetimes: the chain always hashes the UTC wall time without zone suffix.
        body["at"] = _naive_utc(at).isoformat(timespec="microseconds")
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _naive_utc(at: dt.datetime) -> dt.datetime:
    """PostgreSQL answers aware datetimes, SQLite naive UTC: both as naive UTC."""
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


def record_event(
    conn: Connection,
    action: str,
    *,
    user_id: str | None = None,
    org_id: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    address: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one event in the caller's transaction; returns its sequence number."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
    head = conn.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    at = utcnow().replace(tzinfo=None)
    event = {"id": seq, "at": at, "user_id": user_id, "org_id": org_id, "action": action,
             "record_type": record_type, "record_id": record_id, "address": address, "outcome": outcome,
             "detail": detail or {}}
    conn.execute(insert(AuditEvent), [{**event, "prev_hash": prev, "hash": event_hash(prev, event)}])
    return seq


@dataclass
class ChainReport:
    """Result of a walk: how many events, what is wrong where, and the head to note down.

    Removing events from the end of the chain leaves a shorter valid chain; only a head hash noted
    elsewhere (a report, a partner, a printout) shows that. `expected_head` checks against one.
    """

    checked: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    head_id: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems


def _events(conn: Connection, batch: int = 10_000) -> Iterator[dict[str, Any]]:
    last, table = 0, AuditEvent.__table__
    while True:
        q = select(table).where(table.c.id > last).order_by(table.c.id).limit(batch)
        rows = conn.execute(q).mappings().all()
        if not rows:
            return
        for r in rows:
            yield dict(r)
        last = rows[-1]["id"]


def verify_chain(conn: Connection, expected_head: tuple[int, str] | None = None) -> ChainReport:
    """Walk the whole chain and name each event that was edited, deleted, inserted or moved."""
    report = ChainReport()
    expected_seq, prev_hash = 1, GENESIS
    for ev in _events(conn):
        report.checked += 1
        seq = ev["id"]
        if seq != expected_seq:
            what = "deleted" if seq > expected_seq else "duplicated"
            span = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            report.problems.append((seq, f"events {span} {what} before this one"))
        if ev["prev_hash"] != prev_hash:
            report.problems.append((seq, "does not follow the event before it (deleted, inserted or reordered)"))
        if event_hash(ev["prev_hash"], ev) != ev["hash"]:
            report.problems.append((seq, "content changed after it was written"))
        expected_seq, prev_hash = seq + 1, ev["hash"]
        report.head_id, report.head_hash = seq, ev["hash"]
    if expected_head is not None:
        seq, digest = expected_head
        found = conn.execute(select(AuditEvent.hash).where(AuditEvent.id == seq)).scalar()
        if found is None:
            report.problems.append((seq, "the noted head event is missing (events removed from the end)"))
        elif found != digest:
            report.problems.append((seq, "the noted head event's hash differs (chain rewritten)"))
    return report


def search_events(
    conn: Connection,
    *,
    user: str | None = None,
    org: str | None = None,
    action: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    outcome: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events matching every filter given, newest first, with the actor's user name and organisation code.

    ``user`` is a user name and ``org`` an organisation code, as an auditor types them; dates are UTC days,
    both included. Page on with ``before_id`` = the last id of the previous page (keyset: the database
    filters and stops after ``limit`` rows, however long the log).
    """
    e, u, o = AuditEvent.__table__, User.__table__, Organisation.__table__
    conds: list[ColumnElement[bool]] = []
    if user:
        conds.append(u.c.username == user)
    if org:
        conds.append(o.c.code == org)
    for column, value in ((e.c.action, action), (e.c.record_type, record_type), (e.c.record_id, record_id),
                          (e.c.outcome, outcome)):
        if value:
            conds.append(column == value)
    if date_from:
        conds.append(e.c.at >= dt.datetime.combine(date_from, dt.time.min))
    if date_to:
        conds.append(e.c.at < dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    if before_id is not None:
        conds.append(e.c.id < before_id)
    q = (select(e.c.id, e.c.at, e.c.user_id, u.c.username, e.c.org_id, o.c.code.label("org_code"), e.c.action,
                e.c.record_type, e.c.record_id, e.c.address, e.c.outcome, e.c.detail)
         .select_from(e.outerjoin(u, u.c.id == e.c.user_id).outerjoin(o, o.c.id == e.c.org_id))
         .where(*conds).order_by(e.c.id.desc()).limit(limit))
    out = []
    for row in conn.execute(q).mappings():
        ev = dict(row)
        if isinstance(ev["at"], dt.datetime):
            ev["at"] = _naive_utc(ev["at"])
        out.append(ev)
    return out


def event_actions(conn: Connection) -> list[str]:
    """The distinct actions in the log, for an auditor's filter list."""
    return [str(a) for a in conn.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))]
