"""Text search across records, within what the caller may see (the conditions come from the policy).

Matching is a case-insensitive substring on a few text columns per record type; persons match by name
only where their identity reaches the caller in full, so a search can never confirm a name that the
caller sees only under a pseudonym.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from narcotrack.errors import InvalidInput
from narcotrack.store.queries import Visible
from narcotrack.store.record_types import RECORD_TYPES
from narcotrack.store.records import text_matches, visibility
from narcotrack.store.schema import Incident, Person, PersonIdentity

MIN_LENGTH = 2


@dataclass(frozen=True)
class Hit:
    record_type: str  # the URL segment of the record's page: incidents, persons, operations...
    id: str
    label: str


def search(session: Session, visible: Visible, identity_visible: ColumnElement[bool], text: str, *,
           limit: int = 50) -> list[Hit]:
    """Up to ``limit`` hits per record type, newest first."""
    text = text.strip()
    if len(text) < MIN_LENGTH:
        raise InvalidInput(f"search for at least {MIN_LENGTH} characters")
    hits: list[Hit] = []
    incidents = session.execute(
        select(Incident.id, Incident.occurred_on, Incident.place_text)
        .where(visible(Incident), text_matches([Incident.place_text, Incident.narrative, Incident.source_ref], text))
        .order_by(Incident.id.desc()).limit(limit))
    hits += [Hit("incidents", i, f"{d or ''} {place}".strip()) for i, d, place in incidents]
    persons = session.execute(
        select(Person.id, PersonIdentity.name_latin, PersonIdentity.name_km)
        .join(PersonIdentity, PersonIdentity.person_id == Person.id)
        .where(identity_visible, text_matches([PersonIdentity.name_latin, PersonIdentity.name_km], text))
        .order_by(Person.id.desc()).limit(limit))
    hits += [Hit("persons", i, " / ".join(n for n in (latin, km) if n)) for i, latin, km in persons]
    for rt in RECORD_TYPES.values():
        if rt.parent is not None or not rt.search_columns:
            continue
        label_col = rt.column(rt.search_columns[0])
        rows = session.execute(select(rt.model.id, label_col)
                               .where(visibility(rt, visible), text_matches([rt.column(c) for c in rt.search_columns], text))
                               .order_by(rt.model.id.desc()).limit(limit))
        hits += [Hit(rt.slug, i, str(label)) for i, label in rows]
    return hits
