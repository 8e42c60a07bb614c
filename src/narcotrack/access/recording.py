"""Recording on behalf of a user: the policy check, the write and its audit event, in one transaction.

The JSON API, the data-entry form and the spreadsheet upload all record through here, so a rule about who
may record what (and the audit trail of it) cannot differ between the ways in.

Sharing wider than the role may set alone (an officer asking for 'partners') is not refused: the incident
is stored at the widest sharing the role may set, and the sharing asked for becomes a pending release
request that a supervisor of the organisation releases or rejects (narcotrack.access.release).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import (
    Principal,
    check_may_change,
    check_may_record,
    may_set_distribution,
    may_set_marking,
    restricts,
)
from narcotrack.access.release import propose
from narcotrack.domain.models import IncidentIn, Sharing
from narcotrack.store.records import RecordType, create_record, parent_of
from narcotrack.store.repo import create_incident, org_id_by_code
from narcotrack.store.schema import Incident
from narcotrack.store.sharing import check_sharing

S = TypeVar("S", bound=Sharing)

FALLBACK_MARKING = "GREEN"  # the least restrictive marking every writing role may set alone


@dataclass(frozen=True)
class Recorded:
    """What recording did: the new record, and the release request for wider sharing if one was made."""

    record_id: str
    release_request_id: str | None = None


def _within_rights(p: Principal, data: S) -> S:
    """The incident as the role may share it alone: distribution and marking capped at the role's limit."""
    distribution, group = data.distribution, data.sharing_group_id
    if not may_set_distribution(p, distribution):
        distribution = str(p.rule("max_distribution"))
        if distribution == "group" and not (data.distribution == "group" and group):
            distribution = "domestic"  # no group was named: the next narrower reach
    if distribution != "group":
        group = None
    marking = data.marking if may_set_marking(p, data.marking) else FALLBACK_MARKING
    return data.model_copy(update={"marking": marking, "distribution": distribution, "sharing_group_id": group})


def record_incident_with_release(session: Session, p: Principal, data: IncidentIn, *, address: str | None = None,
                                 source: str = "form") -> Recorded:
    """Check that ``p`` may record this incident, store it (proposing wider sharing for release), audit it."""
    if p.user_id is None:
        raise ValueError("recording needs a user")
    check_may_record(p, org_id_by_code(session, data.reporting_org), data.distribution)
    stored, capped, group = _capped(session, p, data)
    incident_id = create_incident(session, stored, user_id=p.user_id, source=source)
    record_event(session.connection(), "create", user_id=p.user_id, org_id=p.org_id,
                 record_type="incident", record_id=incident_id, address=address)
    if not capped:
        return Recorded(incident_id)
    return _propose_rest(session, p, Incident, "incident", incident_id, data, group,
                         "asked for when the incident was recorded", address)


def record_incident(session: Session, p: Principal, data: IncidentIn, *, address: str | None = None,
                    source: str = "form") -> str:
    """Like ``record_incident_with_release``, for callers that need only the new incident's id."""
    return record_incident_with_release(session, p, data, address=address, source=source).record_id


def record_with_release(session: Session, p: Principal, rt: RecordType, data: BaseModel, *,
                        address: str | None = None) -> Recorded:
    """The same rules for every other record type: the policy check (through the incident for seizures and
    arrests), the write capped at the role's sharing rights with a release request for the rest, the audit."""
    if p.user_id is None:
        raise ValueError("recording needs a user")
    parent = parent_of(session, rt, data)
    stored, capped, group = data, False, None
    if parent is not None:
        check_may_change(p, parent)
        owner = str(parent.owner_org_id)
    else:
        assert isinstance(data, Sharing), f"{rt.name} input carries no sharing fields"
        field = rt.extra.get("owner_field")
        owner = org_id_by_code(session, getattr(data, field)) if field else p.org_id
        check_may_record(p, owner, data.distribution)
        stored, capped, group = _capped(session, p, data)
    record_id = create_record(session, rt, stored, owner_org_id=owner, user_id=p.user_id)
    record_event(session.connection(), "create", user_id=p.user_id, org_id=p.org_id, record_type=rt.name,
                 record_id=record_id, address=address)
    if not capped or not isinstance(data, Sharing):
        return Recorded(record_id)
    return _propose_rest(session, p, rt.model, rt.name, record_id, data, group,
                         "asked for when the record was created", address)


def _capped(session: Session, p: Principal, data: S) -> tuple[S, bool, str | None]:
    """The record as stored (within the role's rights), whether that is narrower than asked, and then the
    sharing group asked for, checked before anything is written."""
    stored = _within_rights(p, data)
    if stored.sharing_fields() == data.sharing_fields():
        return stored, False, None
    return stored, True, check_sharing(session, data.marking, data.distribution, data.sharing_group_id)


def _propose_rest(session: Session, p: Principal, model: Any, record_type: str, record_id: str, data: Sharing,
                  group: str | None, reason: str, address: str | None) -> Recorded:
    """Propose for release the sharing asked for beyond what was stored."""
    row = session.get(model, record_id)
    # RED asked for 'partners' reaches no one more than RED stored 'domestic': nothing to release then
    if row is None or restricts(row, data.marking, data.distribution, group):
        return Recorded(record_id)
    request_id = propose(session, p, record_type, record_id, data.marking, data.distribution, group, reason,
                         address=address)
    return Recorded(record_id, request_id)
