"""Changing how a record is shared, on any shareable table, with the change kept in the record's history.

Every table, incidents included, is changed through ``records.change_with_history``, the write path (and
history format) of every edit. Who may make the change is decided by narcotrack.access (release.py); this
module only writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from narcotrack.errors import InvalidInput, NotFound
from narcotrack.store.records import change_with_history
from narcotrack.store.schema import (
    DISTRIBUTIONS,
    MARKINGS,
    CommunityCampaign,
    DrugUseIndicator,
    Incident,
    IntelReport,
    Operation,
    Person,
    SharingGroup,
    TrainingEvent,
)

MODELS: dict[str, Any] = {
    "incident": Incident,
    "person": Person,
    "operation": Operation,
    "intel_report": IntelReport,
    "training_event": TrainingEvent,
    "community_campaign": CommunityCampaign,
    "drug_use_indicator": DrugUseIndicator,
}


def model_for(record_type: str) -> Any:
    """The ORM class of a shareable table; InvalidInput for any other name."""
    try:
        return MODELS[record_type]
    except KeyError:
        raise InvalidInput(f"records of type {record_type!r} are not shared; use one of "
                           f"{', '.join(MODELS)}") from None


def get_record(session: Session, record_type: str, record_id: str, *, lock: bool = False) -> Any:
    """The record, read afresh (and locked for update when ``lock``, so two changes cannot interleave)."""
    row = session.get(model_for(record_type), record_id, populate_existing=lock,
                      with_for_update=True if lock else None)
    if row is None:
        raise NotFound(f"no {record_type.replace('_', ' ')} with id {record_id}")
    return row


def check_sharing(session: Session, marking: str, distribution: str, group_id: str | None) -> str | None:
    """Validate a sharing triple; returns the group id to store (none unless the distribution is 'group')."""
    if marking not in MARKINGS:
        raise InvalidInput(f"unknown marking {marking!r}; use one of {', '.join(MARKINGS)}")
    if distribution not in DISTRIBUTIONS:
        raise InvalidInput(f"unknown distribution {distribution!r}; use one of {', '.join(DISTRIBUTIONS)}")
    if distribution != "group":
        return None
    if not group_id:
        raise InvalidInput("distribution 'group' needs a sharing group")
    if session.get(SharingGroup, group_id) is None:
        raise InvalidInput(f"no sharing group with id {group_id}")
    return group_id


def set_sharing(session: Session, table: str, record_id: str, marking: str, distribution: str,
                group_id: str | None, user_id: str | None) -> dict[str, Any]:
    """Set marking, distribution and sharing group of one record; bumps its version and writes its history.

    Returns the changes as ``{field: {"from": old, "to": new}}`` (empty when nothing changed).
    """
    group_id = check_sharing(session, marking, distribution, group_id)
    row = get_record(session, table, record_id, lock=True)
    new = {"marking": marking, "distribution": distribution, "sharing_group_id": group_id}
    diff = change_with_history(session, row, table, new, user_id)
    if diff:
        session.flush()
    return diff
