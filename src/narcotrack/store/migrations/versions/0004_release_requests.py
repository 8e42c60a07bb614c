"""release requests (four-eyes sharing: one proposes, another releases)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:34:21.322853
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "release_request",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("record_type", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("owner_org_id", sa.String(length=36), nullable=False),
        sa.Column("marking", sa.String(length=16), nullable=False),
        sa.Column("distribution", sa.String(length=16), nullable=False),
        sa.Column("sharing_group_id", sa.String(length=36), nullable=True),
        sa.Column("from_marking", sa.String(length=16), nullable=False),
        sa.Column("from_distribution", sa.String(length=16), nullable=False),
        sa.Column("from_sharing_group_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(length=36), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "distribution <> 'group' OR sharing_group_id IS NOT NULL",
            name=op.f("ck_release_request_group_needs_id"),
        ),
        sa.CheckConstraint(
            "distribution IN ('owner', 'domestic', 'group', 'partners')",
            name=op.f("ck_release_request_distribution"),
        ),
        sa.CheckConstraint(
            "from_distribution IN ('owner', 'domestic', 'group', 'partners')",
            name=op.f("ck_release_request_from_distribution"),
        ),
        sa.CheckConstraint(
            "from_marking IN ('CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED')",
            name=op.f("ck_release_request_from_marking"),
        ),
        sa.CheckConstraint(
            "marking IN ('CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED')",
            name=op.f("ck_release_request_marking"),
        ),
        sa.CheckConstraint(
            "record_type IN ('incident', 'person', 'operation', 'intel_report', 'training_event', "
            "'community_campaign', 'drug_use_indicator')",
            name=op.f("ck_release_request_record_type"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'released', 'rejected', 'withdrawn')",
            name=op.f("ck_release_request_status"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["app_user.id"], name=op.f("fk_release_request_decided_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisation.id"], name=op.f("fk_release_request_owner_org_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["app_user.id"], name=op.f("fk_release_request_proposed_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_request")),
    )
    with op.batch_alter_table("release_request", schema=None) as batch_op:
        batch_op.create_index("ix_release_request_org_status", ["owner_org_id", "status"], unique=False)
        batch_op.create_index("ix_release_request_proposed_by", ["proposed_by"], unique=False)
        batch_op.create_index("ix_release_request_record", ["record_type", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_request", schema=None) as batch_op:
        batch_op.drop_index("ix_release_request_record")
        batch_op.drop_index("ix_release_request_proposed_by")
        batch_op.drop_index("ix_release_request_org_status")

    op.drop_table("release_request")
