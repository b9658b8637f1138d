"""the KMS root's derivation secret in the database

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 05:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kms_derivation_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("wrapped_secret", sa.LargeBinary(), nullable=False),
        sa.Column("root_key_id", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("kms_derivation_secrets")
