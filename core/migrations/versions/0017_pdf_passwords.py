"""pdf_passwords: the password a recipient chose for their encrypted PDFs (issue 16),
sealed under the tenant's keys (the row names the sealed object)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 20:36:06.761658
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pdf_passwords",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "address"),
    )


def downgrade() -> None:
    op.drop_table("pdf_passwords")
