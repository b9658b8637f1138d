"""scheduled jobs (the worker's scheduler)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", sa.Float(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("lease_until", sa.Float(), nullable=False, server_default="0"),
        sa.Column("last_started_at", sa.Float(), nullable=True),
        sa.Column("last_finished_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
