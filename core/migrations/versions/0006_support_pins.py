"""support PINs and PIN checks (issue 6)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_pins",
        sa.Column("contact_id", sa.String(length=32), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.Float(), nullable=False),
        sa.Column("locked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["account_contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    op.create_table(
        "support_pin_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.String(length=32), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=320), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["account_contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_support_pin_checks_contact_at", "support_pin_checks", ["contact_id", "at"])
    op.create_index("ix_support_pin_checks_email_hash", "support_pin_checks", ["email_hash"])
    op.create_index("ix_support_pin_checks_at", "support_pin_checks", ["at"])
    op.create_table(
        "support_agents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_support_agents_partner_id", "support_agents", ["partner_id"])


def downgrade() -> None:
    op.drop_table("support_agents")
    op.drop_table("support_pin_checks")
    op.drop_table("support_pins")
