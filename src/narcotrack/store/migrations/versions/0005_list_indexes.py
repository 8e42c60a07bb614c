"""indexes for the incident list and the dashboard, and the store's data version

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Indexes (docs/benchmarks.md, "Web platform under load"): the list's province + period filter with id and
the sharing columns in one covering index, so candidates are filtered by the policy and sorted by id
without reading incident rows (SQLite also counts visible incidents from it); seizures by incident with
drug and mass, so the list's drug filter and the dashboard's sums read an index only; persons by their
sharing columns, for the dashboard's count of visible persons.

``data_version`` holds one row (id 0) whose ``version`` grows when incidents, seizures, arrests, persons or
operations change, so cached figures (narcotrack.store.figures) know when to recompute:

- PostgreSQL: a statement-level trigger notes, once per transaction, that the transaction changed such
  data (a pending row keyed by the transaction); a deferred trigger on that row bumps row 0 at commit.
  Row 0 is therefore locked only while a writer commits, never for the length of an import.
- SQLite (one writer at a time): row triggers bump row 0 on UPDATE and DELETE; inserts are seen by the
  reader as a higher max(rowid) of each table, which costs nothing on the bulk insert paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARING = ["owner_org_id", "marking", "distribution", "sharing_group_id"]
INDEXES = (
    ("ix_incident_list_province", "incident", ["province_code", "occurred_on", "id", *SHARING]),
    ("ix_seizure_incident_drug", "seizure", ["incident_id", "drug", "mass_kg"]),
    ("ix_person_sharing", "person", SHARING),
)
# Tables whose rows the figures count; on SQLite, UPDATEs of seizures and arrests bump the version only
# when a column the figures read changes (the importer marks duplicate seizures in bulk).
WATCHED = {
    "incident": "",
    "seizure": " OF incident_id, drug, mass_kg",
    "arrest": " OF incident_id, person_id",
    "person": "",
    "operation": "",
}
BUMP = "UPDATE data_version SET version = version + 1 WHERE id = 0"


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_table(
        "data_version",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO data_version (id, version, epoch) VALUES (0, 1, lower(hex(randomblob(16))))")
        for table, of_columns in WATCHED.items():
            op.execute(
                f"CREATE TRIGGER nt_dv_{table}_update AFTER UPDATE{of_columns} ON {table} BEGIN {BUMP}; END"
            )
            op.execute(f"CREATE TRIGGER nt_dv_{table}_delete AFTER DELETE ON {table} BEGIN {BUMP}; END")
        return
    op.execute(
        "INSERT INTO data_version (id, version, epoch) "
        "VALUES (0, 1, md5(random()::text || clock_timestamp()::text))"
    )
    op.execute(
        "CREATE FUNCTION nt_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('narcotrack.data_changed', true) IS DISTINCT FROM 'yes' THEN "
        "PERFORM set_config('narcotrack.data_changed', 'yes', true); "
        "INSERT INTO data_version (id, version, epoch) VALUES (-txid_current(), 0, '') "
        "ON CONFLICT (id) DO NOTHING; "
        "END IF; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION nt_data_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "DELETE FROM data_version WHERE id = NEW.id; "
        "INSERT INTO data_version (id, version, epoch) "
        "VALUES (0, 1, md5(random()::text || clock_timestamp()::text)) "
        "ON CONFLICT (id) DO UPDATE SET version = data_version.version + 1; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER nt_data_version_bump AFTER INSERT ON data_version "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0) EXECUTE FUNCTION nt_data_version_bump()"
    )
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER nt_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nt_data_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS nt_dv_{table}_update")
            op.execute(f"DROP TRIGGER IF EXISTS nt_dv_{table}_delete")
    else:
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS nt_data_changed ON {table}")
        op.execute("DROP TRIGGER IF EXISTS nt_data_version_bump ON data_version")
        op.execute("DROP FUNCTION IF EXISTS nt_data_version_bump()")
        op.execute("DROP FUNCTION IF EXISTS nt_data_changed()")
    op.drop_table("data_version")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
