"""What a partner sent about a person beyond the record; the status of TAXII uploads

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A person a partner shares under a pseudonym keeps that pseudonym (``pseudonym``), so that this node can
name the person back to the owner. A person arrested in a shared incident whom the partner did not share
is stored as an unnamed stand-in so counts stay right, and marked ``withheld`` so that it is never
exported as if it were a person of this node. ``taxii_status`` keeps the outcome of each TAXII upload
(POST to a collection) for the partner to read back; indexes on (updated_at, id) let feeds page by the
time records were added or changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stix_provenance") as batch:
        batch.add_column(sa.Column("pseudonym", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("withheld", sa.Boolean(), nullable=False, server_default=sa.false()))
    for table in ("incident", "person", "operation"):  # feeds page by (updated_at, id)
        op.create_index(f"ix_{table}_feed", table, ["updated_at", "id"])
    op.create_table(
        "taxii_status",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_taxii_status_user_id_app_user"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxii_status")),
    )


def downgrade() -> None:
    op.drop_table("taxii_status")
    for table in ("incident", "person", "operation"):
        op.drop_index(f"ix_{table}_feed", table_name=table)
    with op.batch_alter_table("stix_provenance") as batch:
        batch.drop_column("withheld")
        batch.drop_column("pseudonym")
