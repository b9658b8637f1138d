"""key rotation (issue 5): tenant_keys.retired_at

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_keys") as batch:
        batch.add_column(sa.Column("retired_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenant_keys") as batch:
        batch.drop_column("retired_at")
