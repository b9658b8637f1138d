"""partners console, trials, add-in tokens, setup checks

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:43:16.669246
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


_FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    # a partner's key-encryption key lives beside tenants' keys under the partner's id
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("tenant_keys_tenant_id_fkey", "tenant_keys", type_="foreignkey")
    else:
        with op.batch_alter_table("tenant_keys", naming_convention=_FK_NAMES) as batch_op:
            batch_op.drop_constraint("fk_tenant_keys_tenant_id_tenants", type_="foreignkey")
    op.create_table(
        "partner_api_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_api_keys_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "partner_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("last_signin_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "email"),
    )
    with op.batch_alter_table("partner_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_users_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_partner_users_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "addin_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("addin_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_addin_tokens_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "setup_checks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("started_by", sa.String(length=320), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("setup_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_setup_checks_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "setup_check_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["setup_checks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("setup_check_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_setup_check_steps_check_id"), ["check_id"], unique=False
        )

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_id", sa.String(length=32), nullable=True))
        batch_op.alter_column("tenant_id", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.create_index(batch_op.f("ix_brands_partner_id"), ["partner_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_brands_partner_id", "partners", ["partner_id"], ["id"], ondelete="CASCADE"
        )

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nfr_max_users", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("nfr_max_messages", sa.Integer(), nullable=True))

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trial_ends_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("trial_reminders", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("addin_on_send", sa.String(length=8), server_default="offer", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_keys", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "tenant_keys_tenant_id_fkey", "tenants", ["tenant_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("addin_on_send")
        batch_op.drop_column("trial_reminders")
        batch_op.drop_column("trial_ends_on")

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("nfr_max_messages")
        batch_op.drop_column("nfr_max_users")

    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_constraint("fk_brands_partner_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_brands_partner_id"))
        batch_op.alter_column("tenant_id", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("partner_id")

    with op.batch_alter_table("setup_check_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_check_steps_check_id"))

    op.drop_table("setup_check_steps")
    with op.batch_alter_table("setup_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_checks_tenant_id"))

    op.drop_table("setup_checks")
    with op.batch_alter_table("addin_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_addin_tokens_tenant_id"))

    op.drop_table("addin_tokens")
    with op.batch_alter_table("partner_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_users_partner_id"))
        batch_op.drop_index(batch_op.f("ix_partner_users_email"))

    op.drop_table("partner_users")
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_api_keys_partner_id"))

    op.drop_table("partner_api_keys")
