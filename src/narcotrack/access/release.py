"""The four-eyes release of wider sharing: one person proposes, a supervisor of the same organisation releases.

Sharing a record more widely (a wider distribution, a less restrictive marking, another sharing group)
is a proposal until someone else with the release right decides on it; restricting sharing applies at
once, because it can only take information away from people. Who may do what is decided in
narcotrack.access.policy; the write goes through narcotrack.store.sharing, so the record's version and
history change exactly as with any other edit. Every step is an audit event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import (
    Principal,
    can_see,
    check_may_propose,
    check_may_release,
    check_may_withdraw,
    may_decide,
    may_withdraw,
    release_request_filter,
    restricts,
)
from narcotrack.domain.ids import uuid7
from narcotrack.errors import Conflict, Forbidden, InvalidInput, NotFound
from narcotrack.store.organisations import code_map
from narcotrack.store.schema import ReleaseRequest, SharingGroup, User, utcnow
from narcotrack.store.sharing import check_sharing, get_record, set_sharing

MAX_TEXT = 2000


def _sharing(row: Any) -> dict[str, Any]:
    return {"marking": row.marking, "distribution": row.distribution, "sharing_group_id": row.sharing_group_id}


def _visible_record(session: Session, p: Principal, record_type: str, record_id: str, *, lock: bool) -> Any:
    row = get_record(session, record_type, record_id, lock=lock)
    if not can_see(p, row):  # the same answer as for a record that does not exist
        raise NotFound(f"no {record_type.replace('_', ' ')} with id {record_id}")
    return row


def _sharing_change(session: Session, p: Principal, record_type: str, record_id: str, marking: str,
                    distribution: str, sharing_group_id: str | None, *, lock: bool) -> tuple[Any, str | None]:
    """The record and the group to store, once ``p`` may change its sharing and the change changes something."""
    record = _visible_record(session, p, record_type, record_id, lock=lock)
    check_may_propose(p, record)
    group = check_sharing(session, marking, distribution, sharing_group_id)
    if _sharing(record) == {"marking": marking, "distribution": distribution, "sharing_group_id": group}:
        raise InvalidInput("the record is already shared that way")
    return record, group


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"the {what} may be at most {MAX_TEXT} characters long")
    return value


def propose(session: Session, p: Principal, record_type: str, record_id: str, marking: str, distribution: str,
            sharing_group_id: str | None, reason: str, *, address: str | None = None) -> str:
    """Propose wider sharing of one of the organisation's records; returns the pending request's id."""
    if p.user_id is None:
        raise Forbidden("a proposal needs a person to answer for it")
    record, group = _sharing_change(session, p, record_type, record_id, marking, distribution, sharing_group_id,
                                    lock=False)
    current = _sharing(record)
    if restricts(record, marking, distribution, group):
        raise InvalidInput("this change only restricts sharing: apply it at once (restrict), no release needed")
    waiting = session.scalar(select(ReleaseRequest.id).where(
        ReleaseRequest.record_type == record_type, ReleaseRequest.record_id == record_id,
        ReleaseRequest.status == "pending"))
    if waiting is not None:
        raise Conflict(f"this record already has a pending release request ({waiting}); withdraw it first")
    req = ReleaseRequest(
        id=uuid7(), record_type=record_type, record_id=record_id, owner_org_id=record.owner_org_id,
        marking=marking, distribution=distribution, sharing_group_id=group,
        from_marking=current["marking"], from_distribution=current["distribution"],
        from_sharing_group_id=current["sharing_group_id"], reason=_text(reason, "reason"),
        proposed_by=p.user_id, proposed_at=utcnow(), status="pending", decision_note="",
    )
    session.add(req)
    session.flush()
    record_event(session.connection(), "release_proposed", user_id=p.user_id, org_id=p.org_id,
                 record_type=record_type, record_id=record_id, address=address,
                 detail={"request": req.id, "from": current, "to": _sharing(req), "reason": req.reason})
    return req.id


def _pending_request(session: Session, request_id: str) -> ReleaseRequest:
    """The request, read afresh and locked against a concurrent decision; NotFound when there is none."""
    req = session.get(ReleaseRequest, request_id, populate_existing=True, with_for_update=True)
    if req is None:
        raise NotFound(f"no release request with id {request_id}")
    return req


def _decide(req: ReleaseRequest, status: str, p: Principal, note: str) -> None:
    if req.status != "pending":
        raise Conflict(f"this request is already {req.status}")
    req.status = status
    req.decided_by = p.user_id
    req.decided_at = utcnow()
    req.decision_note = _text(note, "note")


def release(session: Session, p: Principal, request_id: str, note: str = "", *,
            address: str | None = None) -> ReleaseRequest:
    """Apply a pending proposal (four eyes: not by its proposer); audited as 'share'."""
    req = session.get(ReleaseRequest, request_id)
    if req is None:
        raise NotFound(f"no release request with id {request_id}")
    check_may_release(p, req)
    # lock the record before the request, in the same order as restrict(), so the two cannot deadlock
    record = get_record(session, req.record_type, req.record_id, lock=True)
    req = _pending_request(session, request_id)
    if req.status != "pending":
        raise Conflict(f"this request is already {req.status}")
    before = {"marking": req.from_marking, "distribution": req.from_distribution,
              "sharing_group_id": req.from_sharing_group_id}
    if _sharing(record) != before:
        raise Conflict("the record's sharing changed since the proposal; reject this request and propose again")
    changes = set_sharing(session, req.record_type, req.record_id, req.marking, req.distribution,
                          req.sharing_group_id, p.user_id)
    _decide(req, "released", p, note)
    session.flush()
    record_event(session.connection(), "share", user_id=p.user_id, org_id=p.org_id,
                 record_type=req.record_type, record_id=req.record_id, address=address,
                 detail={"request": req.id, "proposed_by": req.proposed_by, "changes": changes,
                         "note": req.decision_note})
    return req


def reject(session: Session, p: Principal, request_id: str, note: str = "", *,
           address: str | None = None) -> ReleaseRequest:
    """Turn a proposal down; the record stays as it is. Same rights as releasing."""
    req = _pending_request(session, request_id)
    check_may_release(p, req)
    _decide(req, "rejected", p, note)
    session.flush()
    record_event(session.connection(), "release_rejected", user_id=p.user_id, org_id=p.org_id,
                 record_type=req.record_type, record_id=req.record_id, address=address,
                 detail={"request": req.id, "proposed_by": req.proposed_by, "note": req.decision_note})
    return req


def withdraw(session: Session, p: Principal, request_id: str, note: str = "", *,
             address: str | None = None) -> ReleaseRequest:
    """The proposer takes a pending proposal back."""
    req = _pending_request(session, request_id)
    check_may_withdraw(p, req)
    _decide(req, "withdrawn", p, note)
    session.flush()
    record_event(session.connection(), "release_withdrawn", user_id=p.user_id, org_id=p.org_id,
                 record_type=req.record_type, record_id=req.record_id, address=address,
                 detail={"request": req.id, "note": req.decision_note})
    return req


def restrict(session: Session, p: Principal, record_type: str, record_id: str, marking: str, distribution: str,
             sharing_group_id: str | None, reason: str = "", *, address: str | None = None) -> dict[str, Any]:
    """Narrow a record's sharing at once (no release needed); pending proposals for it are withdrawn.

    Returns the changes made, ``{field: {"from": old, "to": new}}``; audited as 'share'.
    """
    if p.user_id is None:
        raise Forbidden("a sharing change needs a person to answer for it")
    record, group = _sharing_change(session, p, record_type, record_id, marking, distribution, sharing_group_id,
                                    lock=True)
    if not restricts(record, marking, distribution, group):
        raise Forbidden("this change widens sharing: propose it for a supervisor's release")
    reason = _text(reason, "reason")
    changes = set_sharing(session, record_type, record_id, marking, distribution, group, p.user_id)
    superseded = list(session.scalars(select(ReleaseRequest).where(
        ReleaseRequest.record_type == record_type, ReleaseRequest.record_id == record_id,
        ReleaseRequest.status == "pending").with_for_update()))
    for req in superseded:
        _decide(req, "withdrawn", p, "superseded by a restriction of the record's sharing")
    session.flush()
    record_event(session.connection(), "share", user_id=p.user_id, org_id=p.org_id, record_type=record_type,
                 record_id=record_id, address=address,
                 detail={"restricted": True, "changes": changes, "reason": reason,
                         "withdrawn_requests": [r.id for r in superseded]})
    return changes


def pending_for(session: Session, p: Principal) -> list[ReleaseRequest]:
    """Pending proposals ``p`` may decide on: their organisation's, not their own; none without the right."""
    if not p.rule("may_release") or p.user_id is None:
        return []
    q = (select(ReleaseRequest)
         .where(release_request_filter(p, ReleaseRequest), ReleaseRequest.status == "pending",
                ReleaseRequest.proposed_by != p.user_id)
         .order_by(ReleaseRequest.proposed_at, ReleaseRequest.id))
    return list(session.scalars(q))


def requests_for(session: Session, p: Principal, *, status: str | None = None, mine: bool = False,
                 limit: int = 100) -> list[ReleaseRequest]:
    """Requests of ``p``'s organisation that ``p`` may see, pending first, then newest first."""
    q = select(ReleaseRequest).where(release_request_filter(p, ReleaseRequest))
    if status is not None:
        q = q.where(ReleaseRequest.status == status)
    if mine:
        q = q.where(ReleaseRequest.proposed_by == p.user_id)
    q = q.order_by(case((ReleaseRequest.status == "pending", 0), else_=1), ReleaseRequest.proposed_at.desc(),
                   ReleaseRequest.id.desc()).limit(limit)
    return list(session.scalars(q))


def describe(session: Session, p: Principal, rows: list[ReleaseRequest]) -> list[dict[str, Any]]:
    """Plain dicts for pages and the API: user names and organisation codes instead of ids, and what ``p``
    may do with each request."""
    users = {u for r in rows for u in (r.proposed_by, r.decided_by) if u}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(users))).all()) if users else {}
    codes = code_map(session, [r.owner_org_id for r in rows]) if rows else {}
    groups = {g for r in rows for g in (r.sharing_group_id, r.from_sharing_group_id) if g}
    group_names = dict(session.execute(select(SharingGroup.id, SharingGroup.name)
                                       .where(SharingGroup.id.in_(groups))).all()) if groups else {}

    def sharing(marking: str, distribution: str, group: str | None) -> dict[str, Any]:
        return {"marking": marking, "distribution": distribution, "sharing_group_id": group,
                "sharing_group": group_names.get(group) if group else None}

    return [{
        "id": r.id, "record_type": r.record_type, "record_id": r.record_id,
        "owner_org": codes.get(r.owner_org_id, r.owner_org_id), "status": r.status,
        "from": sharing(r.from_marking, r.from_distribution, r.from_sharing_group_id),
        "to": sharing(r.marking, r.distribution, r.sharing_group_id),
        "reason": r.reason, "proposed_by": names.get(r.proposed_by, r.proposed_by),
        "proposed_at": r.proposed_at.isoformat() if r.proposed_at else None,
        "decided_by": names.get(r.decided_by, r.decided_by) if r.decided_by else None,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "decision_note": r.decision_note,
        "may_decide": may_decide(p, r, r.status),
        "may_withdraw": may_withdraw(p, r, r.status),
    } for r in rows]
