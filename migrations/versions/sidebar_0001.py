"""sidebar: the material library (images, links, files, texts) for the WeCom chat sidebar

Revision ID: sidebar_0001
Revises: console_0001
Create Date: 2026-11-24 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

import conversations.db  # noqa: F401  (custom column types)

revision = 'sidebar_0001'
down_revision = 'console_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('materials',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('image_url', sa.String(length=1000), nullable=False),
    sa.Column('media_sha256', sa.String(length=64), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', conversations.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['staff_users.id'], name=op.f('fk_materials_owner_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_materials'))
    )
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_materials_owner_id'), ['owner_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_materials_owner_id'))
    op.drop_table('materials')
