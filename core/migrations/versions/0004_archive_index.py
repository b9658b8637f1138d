"""archive index, retention, legal holds (issue 5)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- archive index (search, export) ---------------------------------------------------
    op.create_table(
        "archive_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("meta_object_id", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("has_attachment", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("retain_until", sa.Float(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("shredded_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_archive_entries_tenant_id", "archive_entries", ["tenant_id"])
    op.create_index("ix_archive_entries_message_id", "archive_entries", ["message_id"])
    op.create_index("ix_archive_entries_received_at", "archive_entries", ["received_at"])
    op.create_index("ix_archive_entries_retain_until", "archive_entries", ["retain_until"])
    op.create_index(
        "ix_archive_entries_tenant_received", "archive_entries", ["tenant_id", "received_at"]
    )
    op.create_table(
        "archive_terms",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["archive_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id", "token"),
    )
    op.create_index(
        "ix_archive_terms_lookup",
        "archive_terms",
        ["tenant_id", "token", "received_at", "entry_id"],
    )

    # --- retention and legal holds (colleague 4's block below) ------------------------------
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("archive_retention_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("portal_retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("portal_expired_at", sa.Float(), nullable=True))
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("criteria_hash", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("placed_by", sa.String(length=320), nullable=False),
        sa.Column("placed_at", sa.Float(), nullable=False),
        sa.Column("released_by", sa.String(length=320), nullable=False, server_default=""),
        sa.Column("released_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_legal_holds_tenant_id", "legal_holds", ["tenant_id"])
    op.create_table(
        "legal_hold_items",
        sa.Column("hold_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["hold_id"], ["legal_holds.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["archive_entries.id"]),
        sa.PrimaryKeyConstraint("hold_id", "entry_id"),
    )
    op.create_index("ix_legal_hold_items_tenant_id", "legal_hold_items", ["tenant_id"])
    op.create_index("ix_legal_hold_items_entry_id", "legal_hold_items", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_legal_hold_items_entry_id", table_name="legal_hold_items")
    op.drop_index("ix_legal_hold_items_tenant_id", table_name="legal_hold_items")
    op.drop_table("legal_hold_items")
    op.drop_index("ix_legal_holds_tenant_id", table_name="legal_holds")
    op.drop_table("legal_holds")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("portal_expired_at")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("portal_retention_days")
        batch.drop_column("archive_retention_days")
    # --- retention and legal holds (colleague 4's block above this line, dropped first) ----

    op.drop_index("ix_archive_terms_lookup", table_name="archive_terms")
    op.drop_table("archive_terms")
    for name in (
        "ix_archive_entries_tenant_received",
        "ix_archive_entries_retain_until",
        "ix_archive_entries_received_at",
        "ix_archive_entries_message_id",
        "ix_archive_entries_tenant_id",
    ):
        op.drop_index(name, table_name="archive_entries")
    op.drop_table("archive_entries")
