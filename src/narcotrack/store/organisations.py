"""Organisations and sharing groups (with their agreements): list, read, create, change, members.

Like every store module these functions decide nothing about access: callers pass the caller's SQL
filter (``narcotrack.access.policy.sharing_group_filter``) where rows must be restricted. Every change
after creation bumps ``version`` and is kept in ``record_history`` (from/to per field), as incidents are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from narcotrack.domain.ids import uuid7
from narcotrack.domain.org_models import (
    HOME_COUNTRY,
    OrganisationIn,
    OrganisationPatch,
    SharingGroupIn,
    SharingGroupPatch,
)
from narcotrack.errors import Conflict, InvalidInput, NotFound
from narcotrack.store.queries import Page, paginate
from narcotrack.store.records import add_history, change_with_history
from narcotrack.store.schema import Organisation, SharingGroup, SharingGroupMember, utcnow

BATCH = 500


class FieldInvalid(InvalidInput):
    """Input that names one field (an unknown parent code, a foreign 'domestic' agency): 422 on that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class OrgFilters:
    country: str | None = None
    kind: str | None = None
    domestic: bool | None = None


def _org_query(f: OrgFilters) -> Select[Any]:
    q = select(Organisation)
    if f.country:
        q = q.where(Organisation.country == f.country.strip().upper())
    if f.kind:
        q = q.where(Organisation.kind == f.kind.strip())
    if f.domestic is not None:
        q = q.where(Organisation.domestic == f.domestic)
    return q


def list_organisations(session: Session, filters: OrgFilters, *, cursor: str | None = None, limit: int = 50) -> Page:
    """One page of organisations (codes and names are not secret: every user may list them)."""
    return paginate(session, _org_query(filters), Organisation.id, cursor=cursor, limit=limit)


def iter_organisations(session: Session, filters: OrgFilters) -> Iterator[Organisation]:
    """Every organisation the filters select, read in keyset batches (for exports)."""
    return _all_pages(lambda cursor: list_organisations(session, filters, cursor=cursor, limit=BATCH))


def _all_pages(fetch: Callable[[str | None], Page]) -> Iterator[Any]:
    """Every row of a keyset-paginated list, one page of BATCH rows at a time."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def get_organisation(session: Session, org_id: str) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"no organisation with id {org_id}")
    return org


def org_by_code(session: Session, code: str, *, field: str = "code") -> Organisation:
    """The organisation with this code; FieldInvalid naming ``field`` when there is none."""
    org = session.scalar(select(Organisation).where(Organisation.code == code.strip().upper()))
    if org is None:
        raise FieldInvalid(field, f"no organisation with code {code!r}")
    return org


def code_map(session: Session, org_ids: Sequence[str | None] | None = None) -> dict[str, str]:
    """Organisation id -> code (of the given ids, or all), in one query."""
    q = select(Organisation.id, Organisation.code)
    if org_ids is not None:
        q = q.where(Organisation.id.in_({i for i in org_ids if i}))
    return {i: c for i, c in session.execute(q)}


def _check_parent(session: Session, org_id: str | None, parent_code: str | None) -> str | None:
    """Id of the parent; refuses an unknown parent and a cycle (an organisation under itself)."""
    if parent_code is None:
        return None
    parent = org_by_code(session, parent_code, field="parent")
    node: str | None = parent.id
    for _ in range(100):
        if node is None:
            return parent.id
        if node == org_id:
            raise FieldInvalid("parent", f"{parent_code} is this organisation or one of its units")
        node = session.scalar(select(Organisation.parent_id).where(Organisation.id == node))
    raise FieldInvalid("parent", "the organisation tree is too deep")


def create_organisation(session: Session, data: OrganisationIn) -> Organisation:
    if session.scalar(select(Organisation.id).where(Organisation.code == data.code)):
        raise Conflict(f"an organisation with code {data.code!r} already exists")
    now = utcnow()
    org = Organisation(id=uuid7(), code=data.code, name_en=data.name_en, name_km=data.name_km, kind=data.kind,
                       country=data.country, domestic=bool(data.domestic),
                       parent_id=_check_parent(session, None, data.parent), created_at=now, updated_at=now,
                       version=1)
    session.add(org)
    _flush(session, f"an organisation with code {data.code!r} already exists")
    return org


def update_organisation(session: Session, org_id: str, patch: OrganisationPatch, *, user_id: str | None = None,
                        expected_version: int | None = None) -> tuple[Organisation, dict[str, Any]]:
    """Apply the fields the patch gives; returns the row and the diff ({} when nothing changed)."""
    org = get_organisation(session, org_id)
    _check_version(org, "organisation", expected_version if expected_version is not None else patch.version)
    changes = patch.changes()
    if "parent" in changes:
        changes["parent_id"] = _check_parent(session, org.id, changes.pop("parent"))
    country = changes.get("country", org.country)
    if changes.get("domestic", org.domestic) and country != HOME_COUNTRY:
        raise FieldInvalid("domestic", f"an organisation in {country} cannot be domestic: "
                                       f"only {HOME_COUNTRY} agencies are")
    diff = _apply(session, org, "organisation", changes, user_id)
    return org, diff


def _group_query(visible: ColumnElement[bool]) -> Select[Any]:
    return select(SharingGroup).where(visible)


def list_sharing_groups(session: Session, visible: ColumnElement[bool], *, cursor: str | None = None,
                        limit: int = 50) -> Page:
    """One page of the sharing groups ``visible`` (the caller's policy filter) selects."""
    return paginate(session, _group_query(visible), SharingGroup.id, cursor=cursor, limit=limit)


def iter_sharing_groups(session: Session, visible: ColumnElement[bool]) -> Iterator[SharingGroup]:
    return _all_pages(lambda cursor: list_sharing_groups(session, visible, cursor=cursor, limit=BATCH))


def get_sharing_group(session: Session, group_id: str, visible: ColumnElement[bool]) -> SharingGroup:
    """The group if it exists and ``visible`` selects it; NotFound otherwise, so existence does not leak."""
    group = session.scalar(_group_query(visible).where(SharingGroup.id == group_id))
    if group is None:
        raise NotFound(f"no sharing group with id {group_id}")
    return group


def member_codes(session: Session, group_ids: Sequence[str]) -> dict[str, list[str]]:
    """Group id -> sorted member organisation codes, for many groups in one query."""
    out: dict[str, list[str]] = {g: [] for g in group_ids}
    if group_ids:
        rows = session.execute(select(SharingGroupMember.group_id, Organisation.code)
                               .join(Organisation, Organisation.id == SharingGroupMember.org_id)
                               .where(SharingGroupMember.group_id.in_(group_ids)).order_by(Organisation.code))
        for gid, code in rows:
            out[gid].append(code)
    return out


def units_of(session: Session, org_id: str) -> list[Organisation]:
    """The organisations directly under this one, by code."""
    return sorted(session.scalars(select(Organisation).where(Organisation.parent_id == org_id)),
                  key=lambda u: u.code)


def member_orgs(session: Session, group_id: str) -> list[Organisation]:
    """The group's member organisations, by code (the caller has checked it may see the group)."""
    return list(session.scalars(
        select(Organisation).join(SharingGroupMember, SharingGroupMember.org_id == Organisation.id)
        .where(SharingGroupMember.group_id == group_id).order_by(Organisation.code)))


def groups_of_org(session: Session, org_id: str, visible: ColumnElement[bool]) -> list[SharingGroup]:
    """The groups ``visible`` selects that the organisation is a member of, by name."""
    q = (select(SharingGroup).join(SharingGroupMember, SharingGroupMember.group_id == SharingGroup.id)
         .where(SharingGroupMember.org_id == org_id, visible).order_by(SharingGroup.name))
    return list(session.scalars(q))


def create_sharing_group(session: Session, data: SharingGroupIn, *, owner_org_id: str) -> SharingGroup:
    """A new group owned by ``data.owner`` (default: ``owner_org_id``), with the owner among its members."""
    if session.scalar(select(SharingGroup.id).where(SharingGroup.name == data.name)):
        raise Conflict(f"a sharing group named {data.name!r} already exists")
    owner = org_by_code(session, data.owner, field="owner").id if data.owner else owner_org_id
    members = {owner} | {org_by_code(session, code, field="members").id for code in data.members}
    now = utcnow()
    group = SharingGroup(id=uuid7(), name=data.name, owner_org_id=owner, agreement=data.agreement,
                         allows_identity=data.allows_identity, valid_from=data.valid_from, valid_to=data.valid_to,
                         created_at=now, updated_at=now, version=1)
    session.add(group)
    _flush(session, f"a sharing group named {data.name!r} already exists")
    session.add_all([SharingGroupMember(group_id=group.id, org_id=m) for m in sorted(members)])
    session.flush()
    return group


def update_sharing_group(session: Session, group: SharingGroup, patch: SharingGroupPatch, *,
                         user_id: str | None = None, expected_version: int | None = None
                         ) -> tuple[SharingGroup, dict[str, Any]]:
    """Apply the fields the patch gives; a new owner becomes a member. Returns the row and the diff."""
    _check_version(group, "sharing group", expected_version if expected_version is not None else patch.version)
    changes = patch.changes()
    if "owner" in changes:
        changes["owner_org_id"] = org_by_code(session, changes.pop("owner"), field="owner").id
    start = changes.get("valid_from", group.valid_from)
    end = changes.get("valid_to", group.valid_to)
    if start and end and end < start:
        raise FieldInvalid("valid_to", "valid_to is before valid_from")
    if "name" in changes and changes["name"] != group.name and session.scalar(
            select(SharingGroup.id).where(SharingGroup.name == changes["name"])):
        raise Conflict(f"a sharing group named {changes['name']!r} already exists")
    diff = _apply(session, group, "sharing_group", changes, user_id)
    if "owner_org_id" in diff and not _is_member(session, group.id, group.owner_org_id):
        session.add(SharingGroupMember(group_id=group.id, org_id=group.owner_org_id))
        session.flush()
    return group, diff


def add_member(session: Session, group: SharingGroup, org_code: str, *, user_id: str | None = None,
               expected_version: int | None = None) -> bool:
    """Make the organisation a member; False (and no new version) when it already is one."""
    _check_version(group, "sharing group", expected_version)
    org = org_by_code(session, org_code, field="org_code")
    if _is_member(session, group.id, org.id):
        return False
    before = member_codes(session, [group.id])[group.id]
    session.add(SharingGroupMember(group_id=group.id, org_id=org.id))
    _member_history(session, group, before, sorted([*before, org.code]), "member_added", user_id)
    return True


def remove_member(session: Session, group: SharingGroup, org_code: str, *, user_id: str | None = None,
                  expected_version: int | None = None) -> None:
    """End the organisation's membership; the owner stays a member while it owns the group."""
    _check_version(group, "sharing group", expected_version)
    org = org_by_code(session, org_code, field="org_code")
    if org.id == group.owner_org_id:
        raise FieldInvalid("org_code", f"{org.code} owns the group; give the group another owner first")
    row = session.get(SharingGroupMember, (group.id, org.id))
    if row is None:
        raise NotFound(f"{org.code} is not a member of this sharing group")
    before = member_codes(session, [group.id])[group.id]
    session.delete(row)
    _member_history(session, group, before, [c for c in before if c != org.code], "member_removed", user_id)


def _is_member(session: Session, group_id: str, org_id: str) -> bool:
    return session.get(SharingGroupMember, (group_id, org_id)) is not None


def _member_history(session: Session, group: SharingGroup, before: list[str], after: list[str], action: str,
                    user_id: str | None) -> None:
    add_history(session, group, "sharing_group", {"members": {"from": before, "to": after}}, user_id,
                action=action)
    group.updated_at = utcnow()
    session.flush()


def _check_version(row: Organisation | SharingGroup, what: str, expected: int | None) -> None:
    if expected is not None and row.version != expected:
        raise Conflict(f"{what} {row.id} changed since version {expected} (now version {row.version}); "
                       "reload and try again")


def _apply(session: Session, row: Organisation | SharingGroup, record_type: str, changes: dict[str, Any],
           user_id: str | None) -> dict[str, Any]:
    diff = change_with_history(session, row, record_type, changes, user_id)
    if diff:
        _flush(session, f"the change collides with another {record_type.replace('_', ' ')}")
    return diff


def _flush(session: Session, conflict: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent insert won the race for the unique code or name
        session.rollback()
        raise Conflict(conflict) from exc
