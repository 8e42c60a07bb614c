"""monthly trend summaries, kept current by the months their triggers log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

``trend_month_drug`` and ``trend_month_incident`` hold counts per month x province x country x agency x
sharing columns (x drug): a monthly trend by drug x province reads them instead of joining a million
seizures to their incidents (docs/benchmarks.md, "Analytics"). They are derived data, so they are never
changed in place: triggers log the months whose counts may have changed in ``trend_month_dirty`` and
``narcotrack.store.summary.refresh`` recomputes those months from the base tables before they are read.

- SQLite (one writer at a time): row triggers log a month unless it is logged already.
- PostgreSQL: statement triggers with transition tables log each month once per transaction (the row
  carries the transaction id; no unique key, so two writers of one month never wait for each other);
  bulk imports (COPY, then INSERT ... SELECT) fire them once per batch.

Every month with incidents is logged here, so the first refresh (``narcotrack init`` runs one) builds the
summaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
# The incident columns a summary row is keyed by: a change of any of them moves the incident's counts.
INCIDENT_KEYS = ("occurred_on", "province_code", "country", "reporting_org_id", "owner_org_id", "marking",
                 "distribution", "sharing_group_id")
SUMMARY_INDEXES = {
    "trend_month_drug": ("month", "drug", "province_code", "country", "reporting_org_id", "owner_org_id",
                         "marking", "distribution", "sharing_group_id", "incidents", "seizures", "kg", "persons"),
    "trend_month_incident": ("month", "province_code", "country", "reporting_org_id", "owner_org_id", "marking",
                             "distribution", "sharing_group_id", "incidents", "persons"),
}
# Columns of seizures and arrests the summaries count.
COUNTED = {"seizure": ("incident_id", "drug", "mass_kg"), "arrest": ("incident_id", "person_id")}


def _keys() -> list[sa.Column[str]]:
    return [
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("province_code", sa.String(length=12), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("reporting_org_id", ID, nullable=False),
        sa.Column("owner_org_id", ID, nullable=False),
        sa.Column("marking", sa.String(length=16), nullable=False),
        sa.Column("distribution", sa.String(length=16), nullable=False),
        sa.Column("sharing_group_id", ID, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "trend_month_incident",
        *_keys(),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
    )
    op.create_table(
        "trend_month_drug",
        *_keys(),
        sa.Column("drug", sa.String(length=40), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("seizures", sa.Integer(), nullable=False),
        sa.Column("kg", sa.Float(), nullable=True),
        sa.Column("persons", sa.Integer(), nullable=False),
    )
    for table, columns in SUMMARY_INDEXES.items():  # covering, in the order of the commonest grouping
        op.create_index(f"ix_{table}_month", table, list(columns))
    op.create_table(
        "trend_month_dirty",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_trend_month_dirty_month", "trend_month_dirty", ["month"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
        op.execute("INSERT INTO trend_month_dirty (month) SELECT DISTINCT substr(occurred_on, 1, 7) "
                   "FROM incident WHERE occurred_on IS NOT NULL")
    else:
        _postgresql_triggers()
        op.execute("INSERT INTO trend_month_dirty (month) SELECT DISTINCT to_char(occurred_on, 'YYYY-MM') "
                   "FROM incident WHERE occurred_on IS NOT NULL")


# -- SQLite ----------------------------------------------------------------------------------------------
def _log_sqlite(month: str) -> str:
    return (f"INSERT INTO trend_month_dirty (month) SELECT m FROM (SELECT {month} AS m) "
            "WHERE m IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trend_month_dirty WHERE month = m);")


def _month_of_incident(ref: str) -> str:
    return f"(SELECT substr(occurred_on, 1, 7) FROM incident WHERE id = {ref})"


def _sqlite_triggers() -> None:
    new, old = _log_sqlite("substr(NEW.occurred_on, 1, 7)"), _log_sqlite("substr(OLD.occurred_on, 1, 7)")
    op.execute(f"CREATE TRIGGER nt_tm_incident_insert AFTER INSERT ON incident BEGIN {new} END")
    op.execute(f"CREATE TRIGGER nt_tm_incident_update AFTER UPDATE OF {', '.join(INCIDENT_KEYS)} ON incident "
               f"BEGIN {old} {new} END")
    op.execute(f"CREATE TRIGGER nt_tm_incident_delete AFTER DELETE ON incident BEGIN {old} END")
    for table, columns in COUNTED.items():
        new = _log_sqlite(_month_of_incident("NEW.incident_id"))
        old = _log_sqlite(_month_of_incident("OLD.incident_id"))
        op.execute(f"CREATE TRIGGER nt_tm_{table}_insert AFTER INSERT ON {table} BEGIN {new} END")
        op.execute(f"CREATE TRIGGER nt_tm_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
                   f"BEGIN {old} {new} END")
        op.execute(f"CREATE TRIGGER nt_tm_{table}_delete AFTER DELETE ON {table} BEGIN {old} END")


# -- PostgreSQL ------------------------------------------------------------------------------------------
def _log_pg(months: str) -> str:
    """Log each month of ``months`` (a query of one column ``m``) once per transaction."""
    return ("INSERT INTO trend_month_dirty (month, txid) SELECT DISTINCT x.m, txid_current() "
            f"FROM ({months}) x WHERE x.m IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trend_month_dirty d "
            "WHERE d.month = x.m AND d.txid = txid_current());")


def _changed(columns: Sequence[str]) -> str:
    return f"({', '.join('n.' + c for c in columns)}) IS DISTINCT FROM ({', '.join('o.' + c for c in columns)})"


def _pg_function(name: str, body: str) -> None:
    op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$")


def _pg_trigger(table: str, event: str, function: str) -> None:
    tables = {"INSERT": "NEW TABLE AS nt_new", "DELETE": "OLD TABLE AS nt_old",
              "UPDATE": "OLD TABLE AS nt_old NEW TABLE AS nt_new"}[event]
    op.execute(f"CREATE TRIGGER nt_tm_{table}_{event.lower()} AFTER {event} ON {table} REFERENCING {tables} "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")


def _postgresql_triggers() -> None:
    month = "to_char({}.occurred_on, 'YYYY-MM')"
    _pg_function("nt_tm_incident_insert", _log_pg(f"SELECT {month.format('n')} AS m FROM nt_new n"))
    _pg_function("nt_tm_incident_delete", _log_pg(f"SELECT {month.format('o')} AS m FROM nt_old o"))
    moved = f"FROM nt_new n JOIN nt_old o ON o.id = n.id WHERE {_changed(INCIDENT_KEYS)}"
    _pg_function("nt_tm_incident_update", _log_pg(
        f"SELECT {month.format('n')} AS m {moved} UNION SELECT {month.format('o')} AS m {moved}"))
    for event in ("INSERT", "UPDATE", "DELETE"):
        _pg_trigger("incident", event, f"nt_tm_incident_{event.lower()}")
    for table, columns in COUNTED.items():
        via = "JOIN incident i ON i.id = {}.incident_id"
        _pg_function(f"nt_tm_{table}_insert", _log_pg(
            f"SELECT {month.format('i')} AS m FROM nt_new n {via.format('n')}"))
        _pg_function(f"nt_tm_{table}_delete", _log_pg(
            f"SELECT {month.format('i')} AS m FROM nt_old o {via.format('o')}"))
        moved = f"FROM nt_new n JOIN nt_old o ON o.id = n.id {{}} WHERE {_changed(columns)}"
        _pg_function(f"nt_tm_{table}_update", _log_pg(
            f"SELECT {month.format('i')} AS m {moved.format(via.format('n'))} "
            f"UNION SELECT {month.format('i')} AS m {moved.format(via.format('o'))}"))
        for event in ("INSERT", "UPDATE", "DELETE"):
            _pg_trigger(table, event, f"nt_tm_{table}_{event.lower()}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("incident", *COUNTED):
        for event in ("insert", "update", "delete"):
            if sqlite:
                op.execute(f"DROP TRIGGER IF EXISTS nt_tm_{table}_{event}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS nt_tm_{table}_{event} ON {table}")
                op.execute(f"DROP FUNCTION IF EXISTS nt_tm_{table}_{event}()")
    for table in ("trend_month_dirty", "trend_month_drug", "trend_month_incident"):
        op.drop_index(f"ix_{table}_month", table_name=table)
        op.drop_table(table)
