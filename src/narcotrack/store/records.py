"""Records of every kind handled the same way (netbox-style): one description per record type, and one
set of functions that list, read, create, change and export any of them.

A ``RecordType`` is data: its table, its input model, the columns it shows, which generic filter maps
to which column, and which fields may be changed. The API, the pages and the exports are generated from
it, so a new record type is one entry in ``record_types`` rather than a new stack of routes.

Visibility is always a SQL condition passed in by the caller (``visible``, built by the sharing policy):
shareable records are filtered on their own sharing columns, seizures and arrests through the incident
they belong to. The store never decides who may see what.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import Conflict, InvalidInput, NotFound
from narcotrack.store.queries import Page, Visible, org_codes, paginate
from narcotrack.store.schema import Organisation, RecordHistory, Shareable

Build = Callable[[Session, Any, str], list[Any]]


@dataclass(frozen=True)
class RecordType:
    """How one kind of record is listed, shown, created and changed."""

    name: str  # the table name; also the record type in the audit log and the history
    slug: str  # URL segment: /api/v1/<slug>, /<slug>
    label: str  # plural, for people
    model: type[Any]
    columns: tuple[str, ...]  # shown in lists, details and exports (after the id)
    create_model: type[BaseModel] | None = None
    build: Build | None = None  # rows to insert for a validated input (the record first)
    editable: frozenset[str] = frozenset()
    date_column: str | None = None  # what the date_from / date_to filters compare
    place_column: str | None = None  # a province code column, for the place filter
    drug_column: str | None = None
    agency_column: str | None = None  # an organisation id column, for the agency filter
    operation_column: str | None = None
    search_columns: tuple[str, ...] = ()
    parent: type[Any] | None = None  # seizures and arrests: seen and changed through their incident
    parent_key: str | None = None
    admin_only_pages: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shareable(self) -> bool:
        return issubclass(self.model, Shareable)

    def column(self, name: str) -> Any:
        return getattr(self.model, name)


@dataclass
class RecordFilters:
    """The generic filters of every list; each record type says which of them apply to it."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    place: str | None = None
    drug: list[str] = field(default_factory=list)
    agency: str | None = None
    operation: str | None = None
    marking: list[str] = field(default_factory=list)
    q: str | None = None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, [], "")}


def visibility(rt: RecordType, visible: Visible) -> ColumnElement[bool]:
    """SQL condition for the rows of ``rt`` the caller may see."""
    if rt.parent is not None and rt.parent_key:
        return rt.column(rt.parent_key).in_(select(rt.parent.id).where(visible(rt.parent)))
    if rt.shareable:
        return visible(rt.model)
    return rt.model.id.is_not(None)  # reference data: every logged-in user may read it


def conditions(session: Session, rt: RecordType, f: RecordFilters) -> list[ColumnElement[bool]]:
    """The filters as SQL; a filter that means nothing for this record type is an error, not ignored."""
    conds: list[ColumnElement[bool]] = []
    mapping = {"date_from": rt.date_column, "date_to": rt.date_column, "place": rt.place_column,
               "drug": rt.drug_column, "agency": rt.agency_column, "operation": rt.operation_column,
               "marking": "marking" if rt.shareable else None, "q": rt.search_columns or None}
    for name in f.given():
        if not mapping[name]:
            raise InvalidInput(f"the filter '{name}' does not apply to {rt.label}")
    if f.date_from:
        conds.append(rt.column(rt.date_column or "") >= f.date_from)
    if f.date_to:
        conds.append(rt.column(rt.date_column or "") <= f.date_to)
    if f.place:
        conds.append(rt.column(rt.place_column or "") == f.place.strip())
    if f.drug:
        drugs = vocabularies().drugs
        codes = [drugs.resolve(d) for d in f.drug]
        if None in codes:
            raise InvalidInput(f"unknown drug {f.drug[codes.index(None)]!r}")
        conds.append(rt.column(rt.drug_column or "").in_(codes))
    if f.agency:
        org = session.scalar(select(Organisation.id).where(Organisation.code == f.agency))
        if org is None:
            raise InvalidInput(f"unknown agency {f.agency!r}")
        conds.append(rt.column(rt.agency_column or "") == org)
    if f.operation:
        conds.append(rt.column(rt.operation_column or "") == f.operation)
    if f.marking:
        conds.append(rt.model.marking.in_(f.marking))
    if f.q:
        conds.append(text_matches([rt.column(c) for c in rt.search_columns], f.q))
    return conds


def list_records(session: Session, rt: RecordType, visible: Visible, filters: RecordFilters, *,
                 cursor: str | None = None, limit: int = 50) -> Page:
    """One page of the records the caller may see, newest first, filtered in SQL."""
    query = select(rt.model).where(visibility(rt, visible), *conditions(session, rt, filters))
    return paginate(session, query, rt.model.id, cursor=cursor, limit=limit)


def get_record(session: Session, rt: RecordType, visible: Visible, record_id: str) -> Any:
    """The record if it exists and the caller may see it; NotFound otherwise (existence does not leak)."""
    row = session.scalar(select(rt.model).where(rt.model.id == record_id, visibility(rt, visible)))
    if row is None:
        raise NotFound(f"no {rt.label.rstrip('s')} with id {record_id}")
    return row


def parent_of(session: Session, rt: RecordType, data_or_row: Any) -> Any:
    """The incident a seizure or arrest belongs to (for the policy to judge), or None."""
    if rt.parent is None or not rt.parent_key:
        return None
    parent = session.get(rt.parent, getattr(data_or_row, rt.parent_key))
    if parent is None:
        raise NotFound(f"no {rt.parent.__tablename__} with id {getattr(data_or_row, rt.parent_key)}")
    return parent


def create_record(session: Session, rt: RecordType, data: BaseModel, *, owner_org_id: str,
                  user_id: str | None) -> str:
    """Insert the rows ``rt.build`` makes from validated input; returns the new record's id."""
    if rt.build is None:
        raise InvalidInput(f"{rt.label} cannot be created here")
    rows = rt.build(session, data, owner_org_id)  # in insert order: what a row points to comes first
    for row in rows:
        session.add(row)
        session.flush()
    record = next(row for row in rows if isinstance(row, rt.model))
    if user_id is not None and hasattr(record, "created_by"):
        record.created_by = user_id
    return str(record.id)


def update_record(session: Session, rt: RecordType, row: Any, changes: dict[str, Any], *,
                  user_id: str | None, expected_version: int | None = None) -> dict[str, Any]:
    """Apply validated changes, bump the version and keep old and new values in the record's history."""
    unknown = set(changes) - rt.editable
    if unknown:
        raise InvalidInput(f"these fields of {rt.label} cannot be changed here: {', '.join(sorted(unknown))}")
    if expected_version is not None and row.version != expected_version:
        raise Conflict(f"the record changed since version {expected_version}; reload it and try again")
    diff = change_with_history(session, row, rt.name, changes, user_id)
    start, end = getattr(row, "start_date", None), getattr(row, "end_date", None)
    if start and end and end < start:
        raise InvalidInput("end_date is before start_date")
    if diff:
        if hook := rt.extra.get("after_update"):
            hook(row)  # derived columns, e.g. a seizure's kg after its quantity changed
        session.flush()
    return diff


def text_matches(columns: Sequence[Any], text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match on any of ``columns`` (the list's ``q`` filter and search)."""
    pattern = f"%{text.strip().lower()}%"
    return or_(*(func.lower(c).like(pattern) for c in columns))


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def change_with_history(session: Session, row: Any, record_type: str, changes: dict[str, Any],
                        user_id: str | None) -> dict[str, Any]:
    """Set the fields that differ and, when any did, bump the version and keep the change in the record's
    history; returns ``{field: {"from": old, "to": new}}``. Flushing (and its errors) is the caller's."""
    diff: dict[str, Any] = {}
    for key, new in changes.items():
        old = getattr(row, key)
        if old != new:
            diff[key] = {"from": jsonable(old), "to": jsonable(new)}
            setattr(row, key, new)
    if diff:
        add_history(session, row, record_type, diff, user_id)
    return diff


def add_history(session: Session, row: Any, record_type: str, changes: dict[str, Any], user_id: str | None, *,
                action: str = "update") -> None:
    """Bump the row's version and add the history entry of that version: one format for every table."""
    row.version += 1
    session.add(RecordHistory(record_type=record_type, record_id=row.id, version=row.version, user_id=user_id,
                              action=action, changes=changes))


def out_key(column: str) -> str:
    """Organisation id columns are shown as organisation codes (``provider_org_id`` -> ``provider_org``)."""
    return column[:-3] if column.endswith("org_id") else column


def as_dict(rt: RecordType, row: Any, codes: dict[str, str]) -> dict[str, Any]:
    """A record as plain values, organisation ids replaced by codes."""
    out: dict[str, Any] = {"id": row.id}
    for c in rt.columns:
        value = getattr(row, c)
        out[out_key(c)] = codes.get(value, value) if c.endswith("org_id") and value else value
    if hasattr(row, "version"):
        out["version"] = row.version
    return out


def export_rows(session: Session, rt: RecordType, visible: Visible, filters: RecordFilters, *,
                max_rows: int = 1_000_000, batch: int = 500) -> Iterator[list[Any]]:
    """Every visible record the filters select, as rows under ``export_header(rt)``, read in batches."""
    codes = org_codes(session)
    cursor, n = None, 0
    while True:
        page = list_records(session, rt, visible, filters, cursor=cursor, limit=batch)
        for row in page.rows:
            n += 1
            if n > max_rows:
                raise InvalidInput(f"more than {max_rows:,} rows: narrow the filters")
            yield list(as_dict(rt, row, codes).values())
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def export_header(rt: RecordType) -> list[str]:
    return ["id", *(out_key(c) for c in rt.columns), *(["version"] if hasattr(rt.model, "version") else [])]


def related(session: Session, rt: RecordType, rows: Sequence[Any]) -> dict[str, dict[str, str]]:
    """Values from other tables shown with each record (e.g. an operation's agencies), one query each."""
    ids = [r.id for r in rows]
    return {name: fetch(session, ids) for name, fetch in rt.extra.get("related", {}).items()} if ids else {}


def by_ids(session: Session, rt: RecordType, ids: Sequence[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {r.id: r for r in session.scalars(select(rt.model).where(rt.model.id.in_(ids)))}
