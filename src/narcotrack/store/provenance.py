"""Where a record received from a partner came from: its STIX id, the partner node, the owner and when.

Pulls and imports write ``stix_provenance``; pages show it so that a reader knows a record is a partner's
copy, whose it is and how fresh it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.store.schema import Organisation, PartnerNode, StixProvenance


@dataclass(frozen=True)
class Provenance:
    stix_id: str
    partner: str | None  # the partner node it was pulled from; None for a bundle file or an inbox push
    owner_code: str | None
    modified: str  # the owner's STIX 'modified' of the copy held
    first_seen: dt.datetime
    last_seen: dt.datetime


def provenance_of(session: Session, record_type: str, record_id: str) -> Provenance | None:
    """The provenance of one record, or None for a record made on this node."""
    row = session.execute(
        select(StixProvenance, PartnerNode.name, Organisation.code)
        .outerjoin(PartnerNode, PartnerNode.id == StixProvenance.partner_id)
        .outerjoin(Organisation, Organisation.id == StixProvenance.source_org_id)
        .where(StixProvenance.record_type == record_type, StixProvenance.record_id == record_id)
    ).first()
    if row is None:
        return None
    prov, partner, owner = row
    return Provenance(prov.stix_id, partner, owner, prov.modified, prov.first_seen, prov.last_seen)
