"""STIX provenance and partner nodes for cross-border exchange

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``stix_provenance`` maps a STIX id to the record it became (or came from), with the partner and the
object's ``modified``: a pull upserts by STIX id and a re-export reuses the partner's id. ``partner_node``
holds the TAXII API roots of partner nodes, and ``partner_cursor`` how far each collection was pulled, so
a pull cut mid-way resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stix_provenance",
        sa.Column("stix_id", sa.String(length=80), nullable=False),
        sa.Column("record_type", sa.String(length=40), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("source_org_id", ID, nullable=True),
        sa.Column("partner_id", ID, nullable=True),
        sa.Column("modified", sa.String(length=40), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.ForeignKeyConstraint(["source_org_id"], ["organisation.id"],
                                name="fk_stix_provenance_source_org_id_organisation"),
        sa.PrimaryKeyConstraint("stix_id", name="pk_stix_provenance"),
        sa.UniqueConstraint("record_type", "record_id", name="uq_stix_provenance_record"),
    )
    op.create_table(
        "partner_node",
        sa.Column("id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("api_root", sa.String(length=400), nullable=False),
        sa.Column("token", sa.String(length=400), nullable=False),
        sa.Column("distribution", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisation.id"], name="fk_partner_node_org_id_organisation"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_node"),
        sa.UniqueConstraint("name", name="uq_partner_node_name"),
    )
    op.create_index("ix_partner_node_org_id", "partner_node", ["org_id"])
    op.create_table(
        "partner_cursor",
        sa.Column("partner_id", ID, nullable=False),
        sa.Column("collection_id", sa.String(length=120), nullable=False),
        sa.Column("added_after", sa.String(length=40), nullable=True),
        sa.Column("pushed_until", sa.String(length=40), nullable=True),
        sa.Column("objects", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partner_node.id"], ondelete="CASCADE",
                                name="fk_partner_cursor_partner_id_partner_node"),
        sa.PrimaryKeyConstraint("partner_id", "collection_id", name="pk_partner_cursor"),
    )


def downgrade() -> None:
    op.drop_table("partner_cursor")
    op.drop_index("ix_partner_node_org_id", table_name="partner_node")
    op.drop_table("partner_node")
    op.drop_table("stix_provenance")
