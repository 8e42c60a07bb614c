"""The sharing policy as a matrix: every role x marking x distribution x kind of organisation.

Expectations are written out here from DESIGN.md and TLP 2.0, independently of the policy module; the
test then checks the SQL filter (on SQLite and PostgreSQL) and the Python predicate against them.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from narcotrack.access.policy import (
    Principal,
    can_see,
    identity_access,
    may_set_distribution,
    principal_for,
    pseudonym,
    visible_filter,
)
from narcotrack.domain.ids import stable_id
from narcotrack.store.db import session_scope
from narcotrack.store.repo import update_incident
from narcotrack.store.schema import Incident, Person, SharingGroup, SharingGroupMember
from narcotrack.store.seed import org_id, place_id

ROLES = ("admin", "analyst", "officer", "liaison", "viewer")
MARKINGS = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
DISTRIBUTIONS = ("owner", "domestic", "group:kh-th", "group:kh-vn", "partners")
# who asks: the owner (NACD), another domestic agency (customs), Thailand (in the KH-TH group, whose
# agreement does not allow identity exchange), Viet Nam (in the KH-VN group, which does) and Laos (in no group)
ORGS = {"owner": "KH-NACD", "domestic": "KH-GDCE", "th": "TH-ONCB", "vn": "VN-C04", "la": "LA-LCDC"}
GROUPS = {"kh-th": ("KH-TH bilateral", False, ["KH-NACD", "TH-ONCB"]),
          "kh-vn": ("KH-VN identity exchange", True, ["KH-NACD", "VN-C04"])}


def expected_visible(asker: str, role: str, marking: str, distribution: str) -> bool:
    if asker == "owner":
        return marking != "RED" or role in {"admin", "analyst", "officer"}
    if marking in {"AMBER+STRICT", "RED"}:
        return False
    return {
        "owner": False,
        "domestic": asker == "domestic",
        "group:kh-th": asker == "th",
        "group:kh-vn": asker == "vn",
        "partners": True,
    }[distribution]


def expected_identity(asker: str, role: str, marking: str, distribution: str) -> str:
    if not expected_visible(asker, role, marking, distribution) or role == "viewer":
        return "none"
    if asker in {"owner", "domestic"} or (asker == "vn" and distribution == "group:kh-vn"):
        return "full"
    return "pseudonym"


@dataclass
class Rec:
    owner_org_id: str
    marking: str
    distribution: str
    sharing_group_id: str | None


def _group_id(key: str) -> str:
    return stable_id("sharing_group", key)


def _setup(engine: Engine) -> dict[tuple[str, str], str]:
    """One incident and one person per marking x distribution, all owned by NACD."""
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    stamps = {"created_at": now, "updated_at": now, "version": 1}
    ids: dict[tuple[str, str], str] = {}
    with engine.begin() as conn:
        for key, (name, identity, members) in GROUPS.items():
            conn.execute(insert(SharingGroup), [{"id": _group_id(key), "name": name, "owner_org_id": org_id("KH-NACD"),
                                                 "agreement": "", "allows_identity": identity, **stamps}])
            conn.execute(insert(SharingGroupMember), [{"group_id": _group_id(key), "org_id": org_id(m)} for m in members])
        inc_rows, person_rows = [], []
        for marking, distribution in itertools.product(MARKINGS, DISTRIBUTIONS):
            dist, _, group = distribution.partition(":")
            rid = stable_id("policy-test", f"{marking}/{distribution}")
            ids[(marking, distribution)] = rid
            share = {"owner_org_id": org_id("KH-NACD"), "marking": marking, "distribution": dist,
                     "sharing_group_id": _group_id(group) if group else None, **stamps}
            inc_rows.append({"id": rid, "occurred_on": dt.date(2025, 1, 1), "place_id": place_id("KH-12"),
                             "province_code": "KH-12", "district_code": None, "country": "KH", "place_text": "",
                             "admin_division_text": "", "place_kind": None, "reporting_org_id": org_id("KH-NACD"),
                             "operation_id": None, "narrative": "", "source": "form", "source_ref": None,
                             "import_batch_id": None, "created_by": None, **share})
            person_rows.append({"id": rid, "sex": "M", "nationality": "KH", "birth_year": 1990, **share})
        conn.execute(insert(Incident), inc_rows)
        conn.execute(insert(Person), person_rows)
    return ids


def _principal(session: Session, asker: str, role: str) -> Principal:
    return principal_for(session, org_id=org_id(ORGS[asker]), role=role)


def test_access_matrix_sql_and_python_agree_with_the_rules(engine: Engine) -> None:
    ids = _setup(engine)
    by_id = {v: k for k, v in ids.items()}
    checked = 0
    with session_scope(engine) as session:
        for asker, role in itertools.product(ORGS, ROLES):
            p = _principal(session, asker, role)
            for table in (Incident, Person):
                seen = set(session.scalars(select(table.id).where(visible_filter(p, table))))
                for (marking, distribution), rid in ids.items():
                    want = expected_visible(asker, role, marking, distribution)
                    assert (rid in seen) == want, (asker, role, marking, distribution, table.__tablename__)
                    row = session.get(table, rid)
                    assert row is not None
                    assert can_see(p, row) == want, (asker, role, marking, distribution)
                    checked += 1
                assert seen <= set(by_id)
            for (marking, distribution), rid in ids.items():
                person = session.get(Person, rid)
                assert person is not None
                assert identity_access(p, person) == expected_identity(asker, role, marking, distribution), (
                    asker, role, marking, distribution)
    assert checked == len(ORGS) * len(ROLES) * len(MARKINGS) * len(DISTRIBUTIONS) * 2


def test_raising_the_marking_hides_the_record_from_partners_at_once(engine: Engine) -> None:
    ids = _setup(engine)
    rid = ids[("GREEN", "partners")]
    with session_scope(engine) as session:
        th = _principal(session, "th", "liaison")
        assert session.scalar(select(Incident.id).where(Incident.id == rid, visible_filter(th, Incident))) == rid
        update_incident(session, rid, {"marking": "RED"})
    with session_scope(engine) as session:
        for asker in ("domestic", "th", "vn", "la"):
            p = _principal(session, asker, "admin")
            assert session.scalar(select(Incident.id).where(Incident.id == rid, visible_filter(p, Incident))) is None


def test_pseudonyms_are_stable_keyed_and_per_agreement() -> None:
    key = b"k" * 32
    a = pseudonym(key, "kh-th", "person-1")
    assert a == pseudonym(key, "kh-th", "person-1")
    assert a != pseudonym(key, "kh-vn", "person-1")
    assert a != pseudonym(key, "kh-th", "person-2")
    assert a != pseudonym(b"x" * 32, "kh-th", "person-1")
    assert a.startswith("P-") and "person" not in a


@pytest.mark.parametrize(("role", "widest"), [("admin", "partners"), ("analyst", "partners"),
                                              ("officer", "domestic"), ("liaison", "group"), ("viewer", "owner")])
def test_roles_may_set_distributions_up_to_their_limit(role: str, widest: str) -> None:
    p = Principal(org_id="o", role=role, domestic=True)
    order = ["owner", "domestic", "group", "partners"]
    for d in order:
        assert may_set_distribution(p, d) == (order.index(d) <= order.index(widest))


@pytest.mark.parametrize(
    ("role", "for_other_org", "distribution", "allowed"),
    [("officer", False, "domestic", True), ("officer", False, "partners", True), ("officer", True, "domestic", False),
     ("analyst", True, "domestic", False), ("admin", True, "partners", True), ("viewer", False, "owner", False)],
)
def test_who_may_record_an_incident(role: str, for_other_org: bool, distribution: str, allowed: bool) -> None:
    from narcotrack.access.policy import check_may_record
    from narcotrack.errors import Forbidden

    p = Principal(org_id="own", role=role, domestic=True)
    try:
        check_may_record(p, "other" if for_other_org else "own", distribution)
    except Forbidden:
        assert not allowed
    else:
        assert allowed
