"""The monthly trend summaries (migration 0006): recomputing the months that changed.

``trend_month_drug`` and ``trend_month_incident`` count incidents, seizures, kilograms and arrests per
month and per the columns that trends group and the sharing policy filters by. Triggers log each month
whose counts may have changed in ``trend_month_dirty``; ``refresh`` recomputes exactly those months from
the base tables, so a summary is never patched in place and cannot drift from what it summarises.

Readers call ``refresh`` in the transaction that then reads the summaries (``current``). It costs one
indexed probe when nothing changed; after a change it recomputes the changed months (tens of milliseconds
each on a million-incident store), and after a bulk import or an upgrade it rebuilds every month. Two
refreshes never run at once: on PostgreSQL the refresher locks the log against writers (who wait only for
the recomputation, not for each other), on SQLite it holds the single write lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from narcotrack.store.schema import (
    Arrest,
    Incident,
    Seizure,
    trend_month_dirty,
    trend_month_drug,
    trend_month_incident,
)

MONTHS_PER_STATEMENT = 12  # months recomputed by one INSERT ... SELECT
NONE: ColumnElement[str] = literal_column("''")  # what a NULL key column is in the summaries


def month_of(dialect: str, column: Any) -> ColumnElement[str]:
    """'YYYY-MM' of a date column, as the summaries and their triggers write it."""
    # literal constants: PostgreSQL matches GROUP BY expressions textually, and two binds never match
    if dialect == "sqlite":
        return func.substr(column, literal_column("1"), literal_column("7"))
    return func.to_char(column, literal_column("'YYYY-MM'"))


def _bind(conn: Connection | Session) -> Any:
    return conn.get_bind() if isinstance(conn, Session) else conn


def _dialect(conn: Connection | Session) -> str:
    return str(_bind(conn).dialect.name)


def pending_months(conn: Connection | Session) -> list[str]:
    """The months logged as changed and not yet recomputed."""
    return sorted(conn.execute(select(trend_month_dirty.c.month).distinct()).scalars())


def refresh(conn: Connection | Session) -> list[str]:
    """Recompute the months logged as changed, in the caller's transaction; returns those months.

    Counts only committed rows of other transactions (and the caller's own), so call it in a transaction
    that has not changed incidents, seizures or arrests itself, and commit soon: writers of those tables
    wait for the commit.
    """
    if conn.execute(select(literal(1)).select_from(trend_month_dirty).limit(1)).first() is None:
        return []
    if _dialect(conn) == "postgresql":
        # Writers hold ROW EXCLUSIVE on the log from their first change until they commit: once this lock
        # is granted, every logged change is committed and visible, and no new one is logged until the end.
        conn.execute(text("LOCK TABLE trend_month_dirty IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # A write first, so that SQLite takes its write lock before anything is read.
        conn.execute(delete(trend_month_dirty).where(false()))
    months = pending_months(conn)
    for i in range(0, len(months), MONTHS_PER_STATEMENT):
        _recompute(conn, months[i : i + MONTHS_PER_STATEMENT])
    conn.execute(delete(trend_month_dirty).where(trend_month_dirty.c.month.in_(months)))
    return months


def rebuild(conn: Connection | Session) -> list[str]:
    """Log every month with incidents as changed and recompute them all (after a repair or a restore)."""
    month = month_of(_dialect(conn), Incident.occurred_on)
    conn.execute(insert(trend_month_dirty).from_select(
        ["month"], select(month).where(Incident.occurred_on.is_not(None)).distinct()))
    return refresh(conn)


def refresh_store(engine: Engine) -> list[str]:
    """``refresh`` in a transaction of its own (after an import, the demo generator or an upgrade)."""
    with engine.begin() as conn:
        return refresh(conn)


@contextmanager
def current(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction has refreshed the summaries: read them through it before it ends."""
    with engine.begin() as conn:
        refresh(conn)
        yield conn


def _window(months: Sequence[str]) -> tuple[dt.date, dt.date]:
    first = dt.date.fromisoformat(months[0] + "-01")
    y, m = (int(p) for p in months[-1].split("-"))
    return first, dt.date(y + m // 12, m % 12 + 1, 1)


def _recompute(conn: Connection | Session, months: Sequence[str]) -> None:
    """Replace the summary rows of ``months`` (sorted) by counts from the base tables."""
    dialect = _dialect(conn)
    month = month_of(dialect, Incident.occurred_on)
    lo, hi = _window(months)
    in_window = [Incident.occurred_on >= lo, Incident.occurred_on < hi, month.in_(months)]
    keys = [
        month,
        func.coalesce(Incident.province_code, NONE),
        func.coalesce(Incident.country, NONE),
        Incident.reporting_org_id,
        Incident.owner_org_id,
        Incident.marking,
        Incident.distribution,
        func.coalesce(Incident.sharing_group_id, NONE),
    ]
    key_names = [c.name for c in trend_month_incident.c][:8]
    arrests = (select(Arrest.incident_id, func.count().label("n")).join(Incident, Incident.id == Arrest.incident_id)
               .where(*in_window).group_by(Arrest.incident_id).subquery("a"))
    persons = func.coalesce(func.sum(arrests.c.n), 0)
    per_drug = (select(Seizure.incident_id, Seizure.drug, func.count().label("n"), func.sum(Seizure.mass_kg).label("kg"))
                .join(Incident, Incident.id == Seizure.incident_id).where(*in_window)
                .group_by(Seizure.incident_id, Seizure.drug).subquery("p"))
    for table in (trend_month_drug, trend_month_incident):
        conn.execute(delete(table).where(table.c.month.in_(months)))
    conn.execute(insert(trend_month_drug).from_select(
        [*key_names, "drug", "incidents", "seizures", "kg", "persons"],
        select(*keys, per_drug.c.drug, func.count(), func.sum(per_drug.c.n), func.sum(per_drug.c.kg), persons)
        .select_from(per_drug).join(Incident, Incident.id == per_drug.c.incident_id)
        .outerjoin(arrests, arrests.c.incident_id == per_drug.c.incident_id)
        .group_by(*keys, per_drug.c.drug)))
    conn.execute(insert(trend_month_incident).from_select(
        [*key_names, "incidents", "persons"],
        select(*keys, func.count(), persons).select_from(Incident)
        .outerjoin(arrests, arrests.c.incident_id == Incident.id).where(*in_window).group_by(*keys)))
