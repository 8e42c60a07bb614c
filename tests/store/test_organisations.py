"""Organisations and sharing groups in the store, on SQLite and PostgreSQL: create, change with history and
optimistic locking, members, and the policy's view of who sees which group."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.access.policy import Principal, check_is_admin, sharing_group_filter
from narcotrack.domain.org_models import OrganisationIn, OrganisationPatch, SharingGroupIn, SharingGroupPatch
from narcotrack.errors import Conflict, Forbidden, NotFound
from narcotrack.store import organisations as orgs
from narcotrack.store.db import session_scope
from narcotrack.store.repo import history
from narcotrack.store.schema import Organisation, SharingGroupMember
from narcotrack.store.seed import org_id


def _org(**over: object) -> OrganisationIn:
    data: dict[str, object] = {"code": "kh-pp-test", "name_en": "Test Provincial Police", "kind": "police",
                               "country": "Cambodia", "parent": "KH-ADP"}
    return OrganisationIn.model_validate({**data, **over})


def test_create_normalises_code_country_kind_and_derives_domestic(engine: Engine) -> None:
    with session_scope(engine) as s:
        o = orgs.create_organisation(s, _org())
        foreign = orgs.create_organisation(s, _org(code="MM-CCDAC", name_en="CCDAC Myanmar",
                                                   kind="Foreign law-enforcement agency", country="Myanmar",
                                                   parent=None))
        oid = o.id
    with session_scope(engine) as s:
        got = orgs.get_organisation(s, oid)
        assert (got.code, got.country, got.kind, got.domestic, got.version) == ("KH-PP-TEST", "KH", "police", True, 1)
        assert got.parent_id == org_id("KH-ADP")
        assert orgs.org_by_code(s, "mm-ccdac").id == foreign.id and foreign.domestic is False
        assert foreign.kind == "foreign_agency" and foreign.country == "MM"


def test_input_names_the_invalid_field() -> None:
    with pytest.raises(ValidationError) as err:
        OrganisationIn.model_validate({"code": "bad code!", "name_en": "X y", "kind": "bakery", "country": "ZZ"})
    assert {e["loc"][0] for e in err.value.errors()} == {"code", "kind", "country"}
    with pytest.raises(ValidationError) as err:
        _org(code="TH-FAKE", country="TH", domestic=True, parent=None)
    assert [e["loc"] for e in err.value.errors()] == [("domestic",)]
    with pytest.raises(ValidationError) as err:
        SharingGroupIn(name="Mekong", valid_from=dt.date(2025, 6, 1), valid_to=dt.date(2025, 1, 1))
    assert [e["loc"] for e in err.value.errors()] == [("valid_to",)]


def test_duplicate_code_and_unknown_parent_are_refused(engine: Engine) -> None:
    with session_scope(engine) as s, pytest.raises(Conflict):
        orgs.create_organisation(s, _org(code="KH-NACD"))
    with session_scope(engine) as s, pytest.raises(orgs.FieldInvalid) as err:
        orgs.create_organisation(s, _org(parent="KH-NOPE"))
    assert err.value.field == "parent"


def test_update_keeps_history_and_bumps_version(engine: Engine) -> None:
    with session_scope(engine) as s:
        oid = orgs.create_organisation(s, _org()).id
    with session_scope(engine) as s:
        o, diff = orgs.update_organisation(s, oid, OrganisationPatch(name_en="Test Police (renamed)", parent=None),
                                           user_id=None, expected_version=1)
        assert o.version == 2 and set(diff) == {"name_en", "parent_id"}
        _, nothing = orgs.update_organisation(s, oid, OrganisationPatch(name_en="Test Police (renamed)"))
        assert nothing == {} and o.version == 2  # no change, no new version
    with session_scope(engine) as s:
        rows = history(s, "organisation", oid)
        assert [(h.version, h.action) for h in rows] == [(2, "update")]
        assert rows[0].changes["name_en"] == {"from": "Test Provincial Police", "to": "Test Police (renamed)"}
        assert rows[0].changes["parent_id"] == {"from": org_id("KH-ADP"), "to": None}
        assert orgs.get_organisation(s, oid).parent_id is None


def test_stale_version_is_a_conflict_and_changes_nothing(engine: Engine) -> None:
    with session_scope(engine) as s:
        oid = orgs.create_organisation(s, _org()).id
    with session_scope(engine) as s:
        orgs.update_organisation(s, oid, OrganisationPatch(name_km="ស្នងការដ្ឋានសាកល្បង"))
    with session_scope(engine) as s, pytest.raises(Conflict):
        orgs.update_organisation(s, oid, OrganisationPatch(name_en="Lost update", version=1))
    with session_scope(engine) as s:
        assert orgs.get_organisation(s, oid).name_en == "Test Provincial Police"
        assert len(history(s, "organisation", oid)) == 1


def test_domestic_foreign_and_cycles_are_checked_on_update(engine: Engine) -> None:
    with session_scope(engine) as s:
        parent = orgs.create_organisation(s, _org()).id
        orgs.create_organisation(s, _org(code="KH-PP-TEST-1", parent="KH-PP-TEST"))
    with session_scope(engine) as s, pytest.raises(orgs.FieldInvalid) as err:
        orgs.update_organisation(s, parent, OrganisationPatch(country="TH"))  # still domestic: refused
    assert err.value.field == "domestic"
    with session_scope(engine) as s, pytest.raises(orgs.FieldInvalid) as err:
        orgs.update_organisation(s, parent, OrganisationPatch(parent="KH-PP-TEST-1"))
    assert err.value.field == "parent"
    with session_scope(engine) as s:
        o, _ = orgs.update_organisation(s, parent, OrganisationPatch(country="TH", domestic=False))
        assert (o.country, o.domestic) == ("TH", False)


def test_list_filters_and_cursor(engine: Engine) -> None:
    with session_scope(engine) as s:
        foreign = orgs.OrgFilters(domestic=False)
        codes = []
        page = orgs.list_organisations(s, foreign, limit=3)
        while True:
            codes += [o.code for o in page.rows]
            if page.next_cursor is None:
                break
            page = orgs.list_organisations(s, foreign, cursor=page.next_cursor, limit=3)
        assert set(codes) == {"UNODC", "INTERPOL-KH", "TH-ONCB", "TH-NSB", "VN-C04", "VN-BGC", "LA-LCDC",
                              "UNODC-IDS"}
        assert len(codes) == len(set(codes))
        thai = orgs.list_organisations(s, orgs.OrgFilters(country="th", kind="foreign_agency"))
        assert {o.code for o in thai.rows} == {"TH-ONCB", "TH-NSB"}


def _group(s: Session, **over: object) -> str:
    data = SharingGroupIn.model_validate({"name": "Mekong corridor", "agreement": "MoU 2024", "members": ["VN-C04"],
                                          **over})
    return orgs.create_sharing_group(s, data, owner_org_id=org_id("KH-NACD")).id


def test_group_members_history_and_owner(engine: Engine) -> None:
    with session_scope(engine) as s:
        gid = _group(s)
    with session_scope(engine) as s:
        g = orgs.get_sharing_group(s, gid, sharing_group_filter(Principal(org_id("KH-NACD"), "admin", True)))
        assert orgs.member_codes(s, [gid])[gid] == ["KH-NACD", "VN-C04"]  # the owner is a member
        assert orgs.add_member(s, g, "th-oncb", expected_version=1) is True
        assert orgs.add_member(s, g, "TH-ONCB") is False and g.version == 2  # already a member: no new version
        with pytest.raises(orgs.FieldInvalid):
            orgs.remove_member(s, g, "KH-NACD")  # the owner stays
        with pytest.raises(Conflict):
            orgs.remove_member(s, g, "VN-C04", expected_version=1)
        orgs.remove_member(s, g, "VN-C04", expected_version=2)
        with pytest.raises(NotFound):
            orgs.remove_member(s, g, "LA-LCDC")
        g, diff = orgs.update_sharing_group(s, g, SharingGroupPatch(allows_identity=True, owner="TH-ONCB",
                                                                    valid_to=dt.date(2027, 12, 31)))
        assert set(diff) == {"allows_identity", "owner_org_id", "valid_to"} and g.version == 4
    with session_scope(engine) as s:
        h = history(s, "sharing_group", gid)
        assert [(x.version, x.action) for x in h] == [(2, "member_added"), (3, "member_removed"), (4, "update")]
        assert h[0].changes["members"] == {"from": ["KH-NACD", "VN-C04"], "to": ["KH-NACD", "TH-ONCB", "VN-C04"]}
        assert h[2].changes["valid_to"] == {"from": None, "to": "2027-12-31"}
        assert orgs.member_codes(s, [gid])[gid] == ["KH-NACD", "TH-ONCB"]


def test_duplicate_group_name_is_a_conflict(engine: Engine) -> None:
    with session_scope(engine) as s:
        _group(s)
    with session_scope(engine) as s, pytest.raises(Conflict):
        _group(s)


def test_policy_sees_all_groups_as_admin_and_own_groups_otherwise(engine: Engine) -> None:
    with session_scope(engine) as s:
        mekong = _group(s)
        thai = _group(s, name="Thai border", members=["TH-ONCB"])
    admin = Principal(org_id("KH-NACD"), "admin", True)
    liaison = Principal(org_id("TH-ONCB"), "liaison", False)
    lao = Principal(org_id("LA-LCDC"), "liaison", False)
    with session_scope(engine) as s:
        def names(p: Principal) -> set[str]:
            return {g.id for g in orgs.iter_sharing_groups(s, sharing_group_filter(p))}

        assert names(admin) == {mekong, thai}
        assert names(liaison) == {thai}
        assert names(lao) == set()
        with pytest.raises(NotFound):
            orgs.get_sharing_group(s, mekong, sharing_group_filter(liaison))
        assert s.scalar(select(SharingGroupMember.org_id).where(SharingGroupMember.group_id == thai,
                                                                SharingGroupMember.org_id == org_id("TH-ONCB")))
    check_is_admin(admin)
    for role in ("analyst", "officer", "liaison", "viewer"):
        with pytest.raises(Forbidden):
            check_is_admin(Principal(org_id("KH-NACD"), role, True))


def test_groups_of_org_respects_the_filter(engine: Engine) -> None:
    with session_scope(engine) as s:
        _group(s)
        _group(s, name="Thai border", members=["TH-ONCB"])
        nacd = s.scalar(select(Organisation.id).where(Organisation.code == "KH-NACD"))
        assert nacd is not None
        everyone = orgs.groups_of_org(s, nacd, sharing_group_filter(Principal(nacd, "admin", True)))
        assert [g.name for g in everyone] == ["Mekong corridor", "Thai border"]
        seen_by_thai = orgs.groups_of_org(s, nacd, sharing_group_filter(Principal(org_id("TH-ONCB"), "liaison",
                                                                                  False)))
        assert [g.name for g in seen_by_thai] == ["Thai border"]
