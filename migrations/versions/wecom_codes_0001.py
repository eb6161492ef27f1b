"""wecom channel QR codes (渠道活码): code definitions and their add/lost log

Revision ID: wecom_codes_0001
Revises: wecom_0001
Create Date: 2026-11-23 11:48:14.965005
"""

from alembic import op
import sqlalchemy as sa

import conversations.db  # noqa: F401  (custom column types)


revision = "wecom_codes_0001"
down_revision = "wecom_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_contact_codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("code_type", sa.String(length=8), nullable=False),
        sa.Column("rota_mode", sa.String(length=16), nullable=False),
        sa.Column("skip_verify", sa.Boolean(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("backup_userid", sa.String(length=64), nullable=False),
        sa.Column("tag_ids", sa.JSON(), nullable=False),
        sa.Column("welcome_text", sa.Text(), nullable=False),
        sa.Column("welcome_attachments", sa.JSON(), nullable=False),
        sa.Column("config_id", sa.String(length=64), nullable=True),
        sa.Column("qr_code", sa.String(length=500), nullable=False),
        sa.Column("current_users", sa.JSON(), nullable=False),
        sa.Column("last_userid", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", conversations.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", conversations.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_wecom_contact_codes_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff_users.id"],
            name=op.f("fk_wecom_contact_codes_created_by_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_contact_codes")),
        sa.UniqueConstraint(
            "account_id", "state", name=op.f("uq_wecom_contact_codes_account_id_state")
        ),
    )
    with op.batch_alter_table("wecom_contact_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wecom_contact_codes_config_id"), ["config_id"], unique=False
        )

    op.create_table(
        "wecom_contact_code_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("occurred_at", conversations.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_wecom_contact_code_events_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["wecom_contact_codes.id"],
            name=op.f("fk_wecom_contact_code_events_code_id_wecom_contact_codes"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_wecom_contact_code_events_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_contact_code_events")),
        sa.UniqueConstraint(
            "code_id",
            "kind",
            "external_userid",
            "userid",
            "occurred_at",
            name="uq_wecom_code_event_once",
        ),
    )
    with op.batch_alter_table("wecom_contact_code_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wecom_contact_code_events_code_id"), ["code_id"], unique=False
        )
        batch_op.create_index(
            "ix_wecom_contact_code_events_contact",
            ["account_id", "external_userid", "userid"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_wecom_contact_code_events_occurred_at"), ["occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("wecom_contact_code_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_contact_code_events_occurred_at"))
        batch_op.drop_index("ix_wecom_contact_code_events_contact")
        batch_op.drop_index(batch_op.f("ix_wecom_contact_code_events_code_id"))

    op.drop_table("wecom_contact_code_events")
    with op.batch_alter_table("wecom_contact_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_contact_codes_config_id"))

    op.drop_table("wecom_contact_codes")
