"""a pending sign-in counts its code tries on its own row; tries at a secret (SMTP AUTH,
agent keys) counted per key in attempt_counters

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tries", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "attempt_counters",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("attempt_counters")
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_column("tries")
