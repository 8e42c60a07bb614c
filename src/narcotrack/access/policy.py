"""The sharing policy: the one place that decides who may see which records and which of their fields.

A record is visible to a user when (DESIGN.md, "Sharing"; TLP 2.0; MISP distribution levels):

1. the user's organisation owns it (RED only for roles with ``may_see_red``); otherwise
2. its marking lets it leave the owner organisation (CLEAR, GREEN, AMBER; never AMBER+STRICT or RED), and
3. its distribution reaches the user's organisation: ``domestic`` reaches domestic agencies, ``group``
   the members of its sharing group, ``partners`` every organisation; ``owner`` none.

Identity fields of a visible person reach roles with ``may_see_identity``: in full for domestic
organisations and for members of a sharing group whose agreement allows identity exchange; as a keyed,
per-agreement pseudonym for everyone else, so partners can still count re-offenders.

The same rules exist twice on purpose: as a SQL filter (``visible_filter``, used by every query so
that filtering happens in the database, not after loading) and as a Python predicate (``can_see``) for
one record in hand. A test checks that both agree on every combination.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol, TypeVar

import yaml
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from narcotrack.errors import Forbidden, NotFound
from narcotrack.store.schema import Organisation, SharingGroup, SharingGroupMember

T = TypeVar("T")

LEAVES_OWNER = ("CLEAR", "GREEN", "AMBER")
DISTRIBUTION_RANK = {"owner": 0, "domestic": 1, "group": 2, "partners": 3}


@cache
def role_rules() -> dict[str, dict[str, Any]]:
    text = (resources.files("narcotrack.access") / "roles.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text)["roles"])


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (or a partner node's token) acting for one organisation."""

    org_id: str
    role: str
    domestic: bool
    groups: frozenset[str] = frozenset()
    identity_groups: frozenset[str] = frozenset()
    user_id: str | None = None

    def rule(self, name: str) -> Any:
        return role_rules()[self.role][name]


def principal_for(session: Session, *, org_id: str, role: str, user_id: str | None = None) -> Principal:
    """Build a principal from the store: the organisation's kind and its sharing-group memberships."""
    domestic = bool(session.scalar(select(Organisation.domestic).where(Organisation.id == org_id)))
    rows = session.execute(
        select(SharingGroup.id, SharingGroup.allows_identity)
        .join(SharingGroupMember, SharingGroupMember.group_id == SharingGroup.id)
        .where(SharingGroupMember.org_id == org_id)
    ).all()
    return Principal(org_id=org_id, role=role, domestic=domestic, user_id=user_id,
                     groups=frozenset(g for g, _ in rows), identity_groups=frozenset(g for g, ok in rows if ok))


class ShareableRecord(Protocol):
    @property
    def owner_org_id(self) -> str: ...
    @property
    def marking(self) -> str: ...
    @property
    def distribution(self) -> str: ...
    @property
    def sharing_group_id(self) -> str | None: ...


def can_see(p: Principal, r: ShareableRecord) -> bool:
    """Whether ``p`` may see record ``r`` at all."""
    if r.owner_org_id == p.org_id:
        return r.marking != "RED" or bool(p.rule("may_see_red"))
    if r.marking not in LEAVES_OWNER:
        return False
    if r.distribution == "domestic":
        return p.domestic
    if r.distribution == "group":
        return r.sharing_group_id in p.groups
    return r.distribution == "partners"


def visible_filter(p: Principal, table: Any) -> ColumnElement[bool]:
    """SQL condition selecting the rows of a shareable ``table`` (ORM class or Table) that ``p`` may see."""
    c = table.c if hasattr(table, "c") else table
    own = c.owner_org_id == p.org_id
    if not p.rule("may_see_red"):
        own = and_(own, c.marking != "RED")
    reach = [c.distribution == "partners"]
    if p.domestic:
        reach.append(c.distribution == "domestic")
    if p.groups:
        reach.append(and_(c.distribution == "group", c.sharing_group_id.in_(sorted(p.groups))))
    shared = and_(c.owner_org_id != p.org_id, c.marking.in_(LEAVES_OWNER), or_(*reach))
    return or_(own, shared)


def identity_access(p: Principal, person: ShareableRecord) -> str:
    """How identity fields of a visible person reach ``p``: 'full', 'pseudonym' or 'none'."""
    if not can_see(p, person) or not p.rule("may_see_identity"):
        return "none"
    if person.owner_org_id == p.org_id or p.domestic:
        return "full"
    if person.distribution == "group" and person.sharing_group_id in p.identity_groups:
        return "full"
    return "pseudonym"


def pseudonym_for(key: bytes, p: Principal, person: ShareableRecord, person_id: str) -> str:
    """The pseudonym ``p`` sees: per sharing agreement when the person is shared with a group, else per
    receiving organisation."""
    group = person.sharing_group_id if person.distribution == "group" else None
    return pseudonym(key, group or p.org_id, person_id)


def check_may_record(p: Principal, reporting_org_id: str, distribution: str) -> None:
    """Raise Forbidden unless ``p`` may record an incident for that organisation with that distribution."""
    if not p.rule("may_write"):
        raise Forbidden("your role may not record incidents")
    if not may_set_distribution(p, distribution):
        raise Forbidden(f"your role may not share beyond '{p.rule('max_distribution')}' "
                        "without a supervisor's release")
    if reporting_org_id != p.org_id and not p.rule("may_record_for_others"):
        raise Forbidden("you may record incidents only for your own organisation")


def check_may_export(p: Principal) -> None:
    if not p.rule("may_export"):
        raise Forbidden("your role may not export")


def get_visible(session: Session, p: Principal, model: type[T], record_id: str) -> T:
    """The record if it exists and ``p`` may see it; NotFound otherwise, so existence does not leak."""
    row = session.get(model, record_id)
    if row is None or not can_see(p, row):  # type: ignore[arg-type]
        raise NotFound(f"no {model.__tablename__.replace('_', ' ')} with id {record_id}")  # type: ignore[attr-defined]
    return row


def pseudonym(key: bytes, agreement: str, person_id: str) -> str:
    """Keyed, stable pseudonym of a person for one agreement (or one partner): HMAC-SHA256, 80 bits.

    Stable, so a partner can count re-offenders; keyed, so it cannot be reversed by hashing guesses; per
    agreement, so two partners cannot join their data on it.
    """
    digest = hmac.new(key, f"{agreement}\x1f{person_id}".encode(), hashlib.sha256).digest()
    return "P-" + base64.b32encode(digest[:10]).decode().rstrip("=")


def may_set_distribution(p: Principal, distribution: str) -> bool:
    """Whether the role may give a record this distribution on its own (wider needs a release)."""
    if p.rule("may_release"):
        return True
    return DISTRIBUTION_RANK[distribution] <= DISTRIBUTION_RANK[p.rule("max_distribution")]

