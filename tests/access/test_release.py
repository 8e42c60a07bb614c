"""The four-eyes release: an officer proposes sharing with partners, a supervisor of the same organisation
releases it; restricting applies at once. Every step is in the record's history and the audit chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.access import release as rel
from narcotrack.access.audit import verify_chain
from narcotrack.access.policy import Principal, principal_for, restricts, visible_filter
from narcotrack.access.recording import record_incident, record_incident_with_release
from narcotrack.domain.models import IncidentIn, OperationIn, SeizureIn
from narcotrack.errors import Conflict, Forbidden, InvalidInput, NotFound
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_operation, history, org_id_by_code, update_incident
from narcotrack.store.schema import AuditEvent, Incident, Operation, ReleaseRequest, User
from narcotrack.web.app import create_app
from tests.web.helpers import login, make_user

ORG = "KH-PP-01"  # Banteay Meanchey provincial police
USERS = [("sokha", ORG, "officer"), ("dara", ORG, "analyst"), ("vanna", ORG, "analyst"),
         ("bopha", ORG, "viewer"), ("nacd", "KH-NACD", "analyst"), ("somchai", "TH-ONCB", "liaison")]

As = Callable[[Session, str], Principal]


@pytest.fixture
def as_user(engine: Engine) -> As:
    for name, org, role in USERS:
        make_user(engine, name, org, role)

    def principal(session: Session, username: str) -> Principal:
        user = session.scalars(select(User).where(User.username == username)).one()
        return principal_for(session, org_id=user.org_id, role=user.role, user_id=user.id)

    return principal


def _incident(**sharing: str) -> IncidentIn:
    return IncidentIn(occurred_on=dt.date(2025, 6, 1), province="Banteay Meanchey", district="Poipet",
                      reporting_org=ORG, seizures=[SeizureIn(drug="yaba", quantity=20_000, unit="tablets")],
                      **sharing)


def _visible(session: Session, p: Principal, incident_id: str) -> bool:
    q = select(Incident.id).where(Incident.id == incident_id, visible_filter(p, Incident))
    return session.scalar(q) == incident_id


def _actions(session: Session, record_id: str) -> list[str]:
    q = select(AuditEvent.action).where(AuditEvent.record_id == record_id).order_by(AuditEvent.id)
    return list(session.scalars(q))


def test_officer_asking_for_partners_is_released_by_a_supervisor(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(marking="GREEN", distribution="partners"))
    assert done.release_request_id is not None
    with session_scope(engine) as s:
        incident = s.get(Incident, done.record_id)
        assert incident is not None and (incident.marking, incident.distribution) == ("GREEN", "domestic")
        req = s.get(ReleaseRequest, done.release_request_id)
        assert req is not None and req.status == "pending" and req.record_id == done.record_id
        assert (req.from_distribution, req.distribution) == ("domestic", "partners")
        assert not _visible(s, as_user(s, "somchai"), done.record_id)  # Thailand: not yet
        assert _visible(s, as_user(s, "nacd"), done.record_id)  # domestic agencies: already
        assert [r.id for r in rel.pending_for(s, as_user(s, "dara"))] == [req.id]
        assert rel.pending_for(s, as_user(s, "sokha")) == []  # not for the proposer to decide
        assert rel.pending_for(s, as_user(s, "nacd")) == []  # nor for another organisation
    with session_scope(engine) as s:
        rel.release(s, as_user(s, "dara"), done.release_request_id, "checked with the province")
    with session_scope(engine) as s:
        incident = s.get(Incident, done.record_id)
        assert incident is not None and (incident.distribution, incident.version) == ("partners", 2)
        assert _visible(s, as_user(s, "somchai"), done.record_id)
        req = s.get(ReleaseRequest, done.release_request_id)
        dara = as_user(s, "dara")
        assert req is not None and (req.status, req.decided_by) == ("released", dara.user_id)
        [change] = history(s, "incident", done.record_id)
        assert change.changes == {"distribution": {"from": "domestic", "to": "partners"}}
        assert change.user_id == dara.user_id
        assert _actions(s, done.record_id) == ["create", "release_proposed", "share"]
        assert verify_chain(s.connection()).ok


def test_record_incident_keeps_returning_the_id(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        incident_id = record_incident(s, as_user(s, "sokha"), _incident(distribution="partners"))
        assert s.scalar(select(ReleaseRequest.record_id)) == incident_id


def test_within_the_role_nothing_is_proposed(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        officer = record_incident_with_release(s, as_user(s, "sokha"), _incident(distribution="domestic"))
        analyst = record_incident_with_release(s, as_user(s, "dara"), _incident(distribution="partners"))
        red = record_incident_with_release(s, as_user(s, "sokha"), _incident(marking="RED", distribution="partners"))
        assert officer.release_request_id is analyst.release_request_id is red.release_request_id is None
        stored = s.get(Incident, red.record_id)
        assert stored is not None and (stored.marking, stored.distribution) == ("RED", "domestic")
        assert s.scalar(select(ReleaseRequest.id)) is None


def test_clear_is_a_release_too(engine: Engine, as_user: As) -> None:
    """TLP:CLEAR lets anyone disclose the record, so an officer's CLEAR is stored GREEN and proposed."""
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(marking="CLEAR", distribution="domestic"))
        incident = s.get(Incident, done.record_id)
        req = s.get(ReleaseRequest, done.release_request_id or "")
        assert incident is not None and incident.marking == "GREEN"
        assert req is not None and (req.from_marking, req.marking) == ("GREEN", "CLEAR")


def test_four_eyes_even_for_a_supervisor(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        incident_id = record_incident(s, as_user(s, "dara"), _incident(distribution="domestic"))
        request_id = rel.propose(s, as_user(s, "dara"), "incident", incident_id, "AMBER", "partners", None,
                                 "joint operation with ONCB")
    for who in ("dara", "sokha", "bopha", "nacd", "somchai"):  # proposer, no right, no right, other org x2
        with session_scope(engine) as s, pytest.raises(Forbidden):
            rel.release(s, as_user(s, who), request_id)
        with session_scope(engine) as s, pytest.raises(Forbidden):
            rel.reject(s, as_user(s, who), request_id)
    with session_scope(engine) as s:
        assert s.scalar(select(Incident.distribution).where(Incident.id == incident_id)) == "domestic"
        rel.release(s, as_user(s, "vanna"), request_id)
    with session_scope(engine) as s, pytest.raises(Conflict):
        rel.reject(s, as_user(s, "vanna"), request_id)  # decided already


def test_reject_leaves_the_record_unchanged(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(distribution="partners"))
        request_id = done.release_request_id or ""
    with session_scope(engine) as s:
        rel.reject(s, as_user(s, "dara"), request_id, "names of informants in the narrative")
    with session_scope(engine) as s:
        incident = s.get(Incident, done.record_id)
        assert incident is not None and (incident.distribution, incident.version) == ("domestic", 1)
        assert history(s, "incident", done.record_id) == []
        req = s.get(ReleaseRequest, request_id)
        assert req is not None and (req.status, req.decision_note) == ("rejected", "names of informants in the narrative")
        assert not _visible(s, as_user(s, "somchai"), done.record_id)
        assert _actions(s, done.record_id)[-1] == "release_rejected"
    with session_scope(engine) as s, pytest.raises(Conflict):
        rel.release(s, as_user(s, "vanna"), request_id)


def test_only_the_proposer_withdraws(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(distribution="partners"))
        request_id = done.release_request_id or ""
    with session_scope(engine) as s, pytest.raises(Forbidden):
        rel.withdraw(s, as_user(s, "dara"), request_id)
    with session_scope(engine) as s:
        assert rel.withdraw(s, as_user(s, "sokha"), request_id).status == "withdrawn"
    with session_scope(engine) as s, pytest.raises(Conflict):
        rel.release(s, as_user(s, "dara"), request_id)


def test_propose_checks_its_input(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        incident_id = record_incident(s, as_user(s, "sokha"), _incident(marking="AMBER", distribution="domestic"))
        sokha = as_user(s, "sokha")
        with pytest.raises(InvalidInput):  # a restriction needs no proposal
            rel.propose(s, sokha, "incident", incident_id, "RED", "domestic", None, "")
        with pytest.raises(InvalidInput):
            rel.propose(s, sokha, "incident", incident_id, "AMBER", "domestic", None, "")  # no change
        with pytest.raises(InvalidInput):
            rel.propose(s, sokha, "incident", incident_id, "AMBER", "group", "no-such-group", "")
        with pytest.raises(InvalidInput):
            rel.propose(s, sokha, "seizure", incident_id, "AMBER", "partners", None, "")
        with pytest.raises(NotFound):
            rel.propose(s, sokha, "incident", "no-such-id", "AMBER", "partners", None, "")
        with pytest.raises(Forbidden):
            rel.propose(s, as_user(s, "nacd"), "incident", incident_id, "AMBER", "partners", None, "")
        with pytest.raises(Forbidden):
            rel.propose(s, as_user(s, "bopha"), "incident", incident_id, "AMBER", "partners", None, "")
        rel.propose(s, sokha, "incident", incident_id, "AMBER", "partners", None, "")
        with pytest.raises(Conflict):  # one pending proposal per record
            rel.propose(s, sokha, "incident", incident_id, "GREEN", "partners", None, "")


def test_release_refuses_when_the_record_changed_since(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(distribution="partners"))
        update_incident(s, done.record_id, {"distribution": "owner"})
    with session_scope(engine) as s, pytest.raises(Conflict):
        rel.release(s, as_user(s, "dara"), done.release_request_id or "")
    with session_scope(engine) as s:
        assert s.scalar(select(Incident.distribution).where(Incident.id == done.record_id)) == "owner"


def test_restrict_hides_the_record_from_partners_at_once(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        incident_id = record_incident(s, as_user(s, "dara"), _incident(marking="GREEN", distribution="partners"))
        request_id = rel.propose(s, as_user(s, "dara"), "incident", incident_id, "CLEAR", "partners", None, "")
    thai = TestClient(create_app(engine))
    login(thai, "somchai")

    def seen() -> tuple[bool, bool]:
        listed = [i["id"] for i in thai.get("/api/v1/incidents", params={"limit": 500}).json()["items"]]
        export = thai.get("/api/v1/incidents/export.csv")
        assert export.status_code == 200
        return incident_id in listed, incident_id in export.text

    assert seen() == (True, True)
    with session_scope(engine) as s:
        with pytest.raises(Forbidden):  # widening is never a restriction
            rel.restrict(s, as_user(s, "sokha"), "incident", incident_id, "CLEAR", "partners", None)
        with pytest.raises(Forbidden):  # and only the owner organisation restricts
            rel.restrict(s, as_user(s, "nacd"), "incident", incident_id, "RED", "partners", None)
        changes = rel.restrict(s, as_user(s, "sokha"), "incident", incident_id, "RED", "partners", None,
                               "suspect named in the narrative")
    assert changes == {"marking": {"from": "GREEN", "to": "RED"}}
    assert seen() == (False, False)
    with session_scope(engine) as s:
        req = s.get(ReleaseRequest, request_id)
        assert req is not None and req.status == "withdrawn"  # superseded: it must not undo the restriction
        [change] = history(s, "incident", incident_id)
        assert (change.version, change.changes) == (2, changes)
        assert _actions(s, incident_id) == ["create", "release_proposed", "share"]
        detail = s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "share"))
        assert detail is not None and detail["restricted"] is True and detail["withdrawn_requests"] == [request_id]
        assert verify_chain(s.connection()).ok


def test_other_shareable_tables_change_through_the_same_steps(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        op_id = create_operation(s, OperationIn(name="Mekong Dawn", kind="bilateral", lead_org=ORG,
                                                participants=["TH-ONCB"], start_date=dt.date(2025, 3, 1),
                                                marking="AMBER", distribution="owner"))
        request_id = rel.propose(s, as_user(s, "sokha"), "operation", op_id, "AMBER", "partners", None, "joint")
    with session_scope(engine) as s:
        assert s.scalar(select(Operation.id).where(visible_filter(as_user(s, "somchai"), Operation))) is None
        rel.release(s, as_user(s, "vanna"), request_id)
    with session_scope(engine) as s:
        op = s.get(Operation, op_id)
        assert op is not None and (op.distribution, op.version) == ("partners", 2)
        assert s.scalar(select(Operation.id).where(visible_filter(as_user(s, "somchai"), Operation))) == op_id
        [change] = history(s, "operation", op_id)
        assert change.changes == {"distribution": {"from": "owner", "to": "partners"}}
        rel.restrict(s, as_user(s, "sokha"), "operation", op_id, "AMBER+STRICT", "partners", None)
    with session_scope(engine) as s:
        assert s.scalar(select(Operation.id).where(visible_filter(as_user(s, "somchai"), Operation))) is None
        assert [h.version for h in history(s, "operation", op_id)] == [2, 3]


def test_requests_are_seen_by_their_organisation_only(engine: Engine, as_user: As) -> None:
    with session_scope(engine) as s:
        done = record_incident_with_release(s, as_user(s, "sokha"), _incident(distribution="partners"))
        org_id = org_id_by_code(s, ORG)
        for who, n in (("sokha", 1), ("dara", 1), ("bopha", 0), ("nacd", 0), ("somchai", 0)):
            rows = rel.requests_for(s, as_user(s, who))
            assert len(rows) == n, who
            assert all(r.owner_org_id == org_id for r in rows)
        [row] = rel.describe(s, as_user(s, "dara"), rel.requests_for(s, as_user(s, "dara")))
        assert (row["proposed_by"], row["owner_org"], row["may_decide"], row["may_withdraw"]) == (
            "sokha", ORG, True, False)
        assert row["record_id"] == done.record_id and row["to"]["distribution"] == "partners"


@pytest.mark.parametrize(("current", "new", "narrower"), [
    (("AMBER", "partners", None), ("RED", "partners", None), True),
    (("AMBER", "partners", None), ("AMBER", "owner", None), True),
    (("AMBER", "partners", None), ("AMBER", "group", "g1"), True),
    (("GREEN", "domestic", None), ("AMBER", "domestic", None), True),
    (("AMBER", "group", "g1"), ("AMBER", "group", "g2"), False),
    (("AMBER", "domestic", None), ("AMBER", "group", "g1"), False),
    (("AMBER", "domestic", None), ("GREEN", "owner", None), False),
    (("RED", "owner", None), ("AMBER+STRICT", "owner", None), False),
    (("AMBER+STRICT", "domestic", None), ("RED", "partners", None), True),
    (("AMBER", "owner", None), ("AMBER", "domestic", None), False),
])
def test_what_counts_as_a_restriction(current: tuple[str, str, str | None], new: tuple[str, str, str | None],
                                      narrower: bool) -> None:
    row = Incident(owner_org_id="o", marking=current[0], distribution=current[1], sharing_group_id=current[2])
    assert restricts(row, *new) is narrower
