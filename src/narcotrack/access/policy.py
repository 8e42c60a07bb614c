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
from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from narcotrack.errors import Forbidden, InvalidInput, NotFound
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


def check_may_record(p: Principal, reporting_org_id: str, distribution: str | None = None) -> None:
    """Raise Forbidden unless ``p`` may record an incident for that organisation.

    Any known distribution may be asked for: one wider than the role may set alone is stored at the role's
    limit and proposed for a supervisor's release (narcotrack.access.recording), not refused.
    """
    if distribution is not None and distribution not in DISTRIBUTION_RANK:
        raise InvalidInput(f"unknown distribution {distribution!r}")
    if not p.rule("may_write"):
        raise Forbidden("your role may not record incidents")
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



def check_may_change(p: Principal, r: ShareableRecord) -> None:
    """Raise unless ``p`` may change record ``r``: NotFound when it may not even see it (no leak of
    existence), Forbidden when it sees it but the role may not write or the record is another
    organisation's. Sharing fields are not changed this way: widening needs a release, narrowing is
    ``restrict`` (narcotrack.access.release)."""
    if not can_see(p, r):
        raise NotFound("no such record")
    if not p.rule("may_write"):
        raise Forbidden("your role may not change records")
    if r.owner_org_id != p.org_id and not p.rule("may_record_for_others"):
        raise Forbidden("only the organisation that owns this record may change it")


def name_search_allowed(p: Principal) -> bool:
    """Whether a search may match persons by name: only for roles that may see identity, and then only
    persons whose identity reaches ``p`` in full (a pseudonymised partner must not learn a name by
    searching for it)."""
    return bool(p.rule("may_see_identity"))


def is_admin(p: Principal) -> bool:
    return p.role == "admin"


def check_is_admin(p: Principal) -> None:
    """Raise Forbidden unless ``p`` is an administrator. Accounts, the audit log, organisations and sharing
    groups are theirs alone: changing an agreement or a membership changes what every user of every member
    organisation may see. Reading is wider: every user may list organisations (codes and names are not
    secret) and sees the sharing groups of ``sharing_group_filter``."""
    if not is_admin(p):
        raise Forbidden("only administrators may do this")


def sharing_group_filter(p: Principal) -> ColumnElement[bool]:
    """SQL condition on ``sharing_group`` rows ``p`` may see: all for admins, else the groups (and so the
    agreements and member lists) of which ``p``'s organisation is a member."""
    from sqlalchemy import true  # imported here: additions to this module go at its end

    if p.role == "admin":
        return true()
    member_of = select(SharingGroupMember.group_id).where(SharingGroupMember.org_id == p.org_id)
    return SharingGroup.id.in_(member_of)


# Four-eyes release (narcotrack.access.release): one person proposes wider sharing, another releases it.

MARKING_RANK = {"CLEAR": 0, "GREEN": 1, "AMBER": 2, "AMBER+STRICT": 3, "RED": 4}


def may_set_marking(p: Principal, marking: str) -> bool:
    """TLP:CLEAR lets recipients disclose to anyone, so setting it alone needs the right to reach partners."""
    return marking != "CLEAR" or may_set_distribution(p, "partners")


def restricts(current: ShareableRecord, marking: str, distribution: str, sharing_group_id: str | None) -> bool:
    """Whether the new sharing reaches nobody the current one does not reach (so it needs no release)."""
    if MARKING_RANK[marking] < MARKING_RANK[current.marking]:
        return False
    if marking not in LEAVES_OWNER or distribution == "owner" or current.distribution == "partners":
        return True
    return distribution == current.distribution and (
        distribution != "group" or sharing_group_id == current.sharing_group_id)


def check_may_propose(p: Principal, record: ShareableRecord) -> None:
    """Raise Forbidden unless ``p`` may propose (or, when it restricts, make) a sharing change of ``record``."""
    if not p.rule("may_write"):
        raise Forbidden("your role may not change how records are shared")
    if record.owner_org_id != p.org_id:
        raise Forbidden("only the owner organisation may change how its records are shared")


class ReleaseRequestLike(Protocol):
    @property
    def owner_org_id(self) -> str: ...
    @property
    def proposed_by(self) -> str: ...


def check_may_release(p: Principal, request: ReleaseRequestLike) -> None:
    """Raise Forbidden unless ``p`` may release (or reject) the proposal: a supervisor of the owner
    organisation who is not the proposer (four eyes, whatever the proposer's own role)."""
    if not p.rule("may_release"):
        raise Forbidden("your role may not release records for sharing")
    if request.owner_org_id != p.org_id:
        raise Forbidden("only a supervisor of the record's owner organisation may decide on its sharing")
    if p.user_id is None or request.proposed_by == p.user_id:
        raise Forbidden("four eyes: someone other than the proposer must release or reject a proposal")


def check_may_withdraw(p: Principal, request: ReleaseRequestLike) -> None:
    if p.user_id is None or request.proposed_by != p.user_id:
        raise Forbidden("only the proposer may withdraw a proposal")


def release_request_filter(p: Principal, table: Any) -> ColumnElement[bool]:
    """SQL condition selecting the release requests ``p`` may see: their own organisation's, for roles
    that may write; those touching RED records only for roles that may see RED."""
    c = table.c if hasattr(table, "c") else table
    if not p.rule("may_write"):
        return false()
    cond = c.owner_org_id == p.org_id
    if not p.rule("may_see_red"):
        cond = and_(cond, c.marking != "RED", c.from_marking != "RED")
    return cond


def full_identity_filter(p: Principal, table: Any) -> ColumnElement[bool]:
    """SQL condition for the persons whose identity reaches ``p`` in full (``identity_access`` == 'full'),
    so that a search by name can never match a person ``p`` sees only under a pseudonym."""
    from sqlalchemy import false

    if not p.rule("may_see_identity"):
        return false()
    c = table.c if hasattr(table, "c") else table
    visible = visible_filter(p, table)
    if p.domestic:
        return visible
    in_group = (and_(c.distribution == "group", c.sharing_group_id.in_(sorted(p.identity_groups)))
                if p.identity_groups else false())
    return and_(visible, or_(c.owner_org_id == p.org_id, in_group))


def check_may_see_persons(p: Principal) -> None:
    """The persons pages are for roles that may see identity (others get counts, never a list of people)."""
    if not p.rule("may_see_identity"):
        raise Forbidden("your role may not see persons")


def may_decide(p: Principal, request: ReleaseRequestLike, status: str) -> bool:
    """Whether ``p`` may release or reject this request now (pages show the buttons only then)."""
    return status == "pending" and _permits(check_may_release, p, request)


def may_withdraw(p: Principal, request: ReleaseRequestLike, status: str) -> bool:
    return status == "pending" and _permits(check_may_withdraw, p, request)


def _permits(check: Any, *args: Any) -> bool:
    """A ``check_may_*`` as a yes/no answer, so the predicate and the check cannot disagree."""
    try:
        check(*args)
    except Forbidden:
        return False
    return True


def check_may_import(p: Principal) -> None:
    """A spreadsheet upload records incidents, so it needs the right to write."""
    if not p.rule("may_write"):
        raise Forbidden("your role may not record incidents, so it may not import them")


def recording_refusal(p: Principal, org_id: str, marking: str, distribution: str) -> tuple[str, str] | None:
    """Why ``p`` may not record an imported incident as given, as (the field at fault, the reason), or None.

    The entry form stores sharing wider than the role may set alone at the role's limit and proposes the
    rest for release; an upload cannot ask a supervisor once per row, so such rows are refused instead.
    """
    try:
        check_may_record(p, org_id, distribution)
    except Forbidden as exc:
        return ("reporting_org_id", str(exc))
    if not may_set_distribution(p, distribution):
        widest = p.rule("max_distribution")
        return ("distribution", f"your role may share only up to '{widest}' on its own: import at "
                f"'{widest}' and ask a supervisor to release wider sharing")
    if not may_set_marking(p, marking):
        return ("marking", "your role may not mark records CLEAR on its own: import as GREEN "
                "and ask a supervisor to release it")
    return None


def may_read_upload_report(p: Principal, uploader_id: str | None) -> bool:
    """An upload's issue list holds values from the uploader's file: for the uploader and admins only."""
    return (p.user_id is not None and uploader_id == p.user_id) or is_admin(p)
