"""The partner directory: the TAXII 2.1 servers this node exchanges with, and their credentials.

A partner is a row (``PartnerNode``): its API root, the organisation it speaks for and the credential
this node presents, sealed at rest (``narcotrack.access.sealed``). Pulling and pushing are in
``narcotrack.exchange.federation``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import DISTRIBUTION_RANK
from narcotrack.access.sealed import seal, unseal
from narcotrack.domain.ids import uuid7
from narcotrack.errors import ConfigError, InvalidInput, NotFound
from narcotrack.exchange.taxii_client import BearerAuth
from narcotrack.store.schema import AuditEvent, Organisation, PartnerCursor, PartnerNode


@dataclass(frozen=True)
class Partner:
    """A partner node as stored, detached from any session."""

    id: str
    name: str
    org_id: str
    org_code: str
    api_root: str
    token: str
    distribution: str
    active: bool
    readable: bool = True  # False when the stored credential was sealed under another key

    @property
    def auth_kind(self) -> str:
        if not self.readable:
            return "unreadable (sealed under another credential key)"
        return "basic" if self.token.startswith("basic:") else "bearer" if self.token else "none"


def auth_for(token: str) -> requests.auth.AuthBase | None:
    """``basic:USER:PASSWORD`` is HTTP Basic (medallion, some MISP set-ups); anything else is an API token
    sent as ``Authorization: Bearer`` (narcotrack nodes)."""
    if token.startswith("basic:"):
        user, sep, password = token[len("basic:"):].partition(":")
        if not sep or not user:
            raise InvalidInput("a Basic credential is written basic:USER:PASSWORD")
        return requests.auth.HTTPBasicAuth(user, password)
    return BearerAuth(token) if token else None


def _key(key: bytes | None) -> bytes:
    if key is not None:
        return key
    from narcotrack.config import get_settings

    return get_settings().credential_key_bytes()


def _partner(row: PartnerNode, code: str, key: bytes, *, strict: bool = True) -> Partner:
    """The partner with its credential unsealed; ``strict=False`` tolerates one sealed under another key
    (for listing), which cannot then be used."""
    try:
        token, readable = unseal(row.token, key, what=f"partner {row.name}"), True
    except ConfigError:
        if strict:
            raise
        token, readable = "", False
    return Partner(row.id, row.name, row.org_id, code, row.api_root, token, row.distribution, row.active, readable)


# -- the partner directory ------------------------------------------------------------------------------------
def add_partner(session: Session, name: str, api_root: str, org_code: str, token: str,
                distribution: str = "domestic", *, user_id: str | None = None,
                key: bytes | None = None) -> tuple[Partner, bool]:
    """Add a partner, or update (and reactivate) the one of that name; returns it and whether it is new.
    The credential is stored sealed under this node's credential key (``narcotrack.access.sealed``)."""
    name = name.strip()
    if not name or len(name) > 80:
        raise InvalidInput("a partner's name is 1 to 80 characters, e.g. th-oncb")
    if not api_root.startswith(("http://", "https://")):
        raise InvalidInput(f"the API root {api_root!r} is not an http(s) address, e.g. https://th.example/taxii2/api/")
    if distribution not in DISTRIBUTION_RANK or distribution == "group":
        raise InvalidInput(f"distribution must be owner, domestic or partners, not {distribution!r}")
    auth_for(token)  # a malformed credential fails now, not at the first pull
    org = session.scalar(select(Organisation).where(Organisation.code == org_code))
    if org is None:
        raise NotFound(f"no organisation with code {org_code!r}")
    row = session.scalar(select(PartnerNode).where(PartnerNode.name == name))
    created = row is None
    if row is None:
        row = PartnerNode(id=uuid7(), name=name)
        session.add(row)
    key = _key(key)
    sealed = seal(token, key)
    if len(sealed) > 400:
        raise InvalidInput("the credential is too long to store (at most about 250 characters)")
    row.org_id, row.api_root, row.token, row.distribution, row.active = org.id, api_root, sealed, distribution, True
    session.flush()
    partner = _partner(row, org_code, key)
    record_event(session.connection(), "partner_added" if created else "partner_updated", user_id=user_id,
                 org_id=org.id, record_type="partner_node", record_id=row.id,
                 detail={"partner": name, "api_root": api_root, "org": org_code, "distribution": distribution,
                         "auth": partner.auth_kind})
    return partner, created


def _row(session: Session, name: str) -> tuple[PartnerNode, str]:
    """The partner of that name and its organisation's code."""
    row = session.execute(select(PartnerNode, Organisation.code).join(Organisation, Organisation.id == PartnerNode.org_id)
                          .where(PartnerNode.name == name)).first()
    if row is None:
        raise NotFound(f"no partner named {name!r} (see narcotrack partners list)")
    if not row[0].active:
        raise InvalidInput(f"partner {name!r} was removed; add it again to use it")
    return row[0], row[1]


def get_partner(session: Session, name: str, *, key: bytes | None = None) -> Partner:
    row, code = _row(session, name)
    return _partner(row, code, _key(key))


@dataclass
class PartnerInfo:
    partner: Partner
    cursors: list[PartnerCursor]


def list_partners(session: Session, *, include_removed: bool = False, key: bytes | None = None) -> list[PartnerInfo]:
    q = select(PartnerNode, Organisation.code).join(Organisation, Organisation.id == PartnerNode.org_id)
    if not include_removed:
        q = q.where(PartnerNode.active.is_(True))
    rows = session.execute(q.order_by(PartnerNode.name)).all()
    cursors: dict[str, list[PartnerCursor]] = {row.id: [] for row, _ in rows}
    for c in session.scalars(select(PartnerCursor).where(PartnerCursor.partner_id.in_(list(cursors)))
                             .order_by(PartnerCursor.collection_id)) if cursors else []:
        cursors[c.partner_id].append(c)
    key = _key(key)
    return [PartnerInfo(_partner(row, code, key, strict=False), cursors[row.id]) for row, code in rows]


def remove_partner(session: Session, name: str, *, user_id: str | None = None) -> None:
    """Deactivate a partner: records pulled from it keep their provenance; its credential is erased."""
    row, _ = _row(session, name)
    session.execute(update(PartnerNode).where(PartnerNode.id == row.id).values(active=False, token=""))
    record_event(session.connection(), "partner_removed", user_id=user_id, org_id=row.org_id,
                 record_type="partner_node", record_id=row.id, detail={"partner": name})


@dataclass(frozen=True)
class Exchange:
    """The last pull or push with a partner, as the audit trail recorded it."""

    kind: str  # "pull" or "push"
    at: dt.datetime
    outcome: str
    detail: dict[str, Any]


def last_exchanges(session: Session, partner_ids: list[str], *, scan: int = 2000) -> dict[str, dict[str, Exchange]]:
    """Per partner, its last pull and last push (from the newest ``scan`` partner events), for the
    administrators' view of the federation."""
    q = (select(AuditEvent.record_id, AuditEvent.action, AuditEvent.at, AuditEvent.outcome, AuditEvent.detail)
         .where(AuditEvent.record_type == "partner_node", AuditEvent.record_id.in_(partner_ids),
                AuditEvent.action.in_(("partner_pull", "export")))
         .order_by(AuditEvent.id.desc()).limit(scan))
    out: dict[str, dict[str, Exchange]] = {pid: {} for pid in partner_ids}
    for pid, action, at, outcome, detail in session.execute(q) if partner_ids else []:
        kind = "pull" if action == "partner_pull" else "push"
        out[str(pid)].setdefault(kind, Exchange(kind, at, outcome, dict(detail or {})))
    return out
