"""Changing a person. Identity fields live in ``person_identity``; their history records which field
changed and when, never the old or new value, so the history does not become a second copy of personal
data that the identity policy does not guard."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from narcotrack.domain.models import PersonIn
from narcotrack.errors import Conflict, InvalidInput, NotFound
from narcotrack.store.records import add_history
from narcotrack.store.repo import person_rows
from narcotrack.store.schema import Person, PersonIdentity

PERSON_FIELDS = frozenset({"sex", "nationality", "birth_year"})
IDENTITY_FIELDS = frozenset({"name_km", "name_latin", "aliases", "date_of_birth", "id_numbers"})


def create_person(session: Session, data: PersonIn, *, owner_org_id: str) -> str:
    person, ident = person_rows(data, owner_org_id, dt.datetime.now(dt.UTC))
    session.add(person)
    session.flush()
    session.add(ident)
    session.flush()
    return str(person.id)


def update_person(session: Session, person_id: str, changes: dict[str, Any], *, user_id: str | None,
                  expected_version: int | None = None) -> list[str]:
    """Apply validated changes; returns the names of the fields that changed."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    unknown = set(changes) - PERSON_FIELDS - IDENTITY_FIELDS
    if unknown:
        raise InvalidInput(f"these person fields cannot be changed here: {', '.join(sorted(unknown))}")
    if expected_version is not None and person.version != expected_version:
        raise Conflict(f"the person changed since version {expected_version}; reload and try again")
    ident = session.get(PersonIdentity, person_id) or PersonIdentity(person_id=person_id)
    if ident not in session:
        session.add(ident)
    diff: dict[str, Any] = {}
    for key, new in changes.items():
        row: Any = ident if key in IDENTITY_FIELDS else person
        old = getattr(row, key)
        if old != new:
            setattr(row, key, new)
            diff[key] = {"changed": True} if key in IDENTITY_FIELDS else {"from": old, "to": new}
    if not (ident.name_km or ident.name_latin):
        raise InvalidInput("a person needs a name in Khmer or Latin script")
    if "date_of_birth" in diff and ident.date_of_birth:
        person.birth_year = ident.date_of_birth.year
    if diff:
        add_history(session, person, "person", diff, user_id)
        person.updated_at = dt.datetime.now(dt.UTC)
        session.flush()
    return sorted(diff)
