"""What a partner sent about a person beyond the record: its pseudonym, or that it was withheld

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A person a partner shares under a pseudonym keeps that pseudonym (``pseudonym``), so that this node can
name the person back to the owner. A person arrested in a shared incident whom the partner did not share
is stored as an unnamed stand-in so counts stay right, and marked ``withheld`` so that it is never
exported as if it were a person of this node.
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


def downgrade() -> None:
    with op.batch_alter_table("stix_provenance") as batch:
        batch.drop_column("withheld")
        batch.drop_column("pseudonym")
