"""WeCom group broadcasts (客户群群发): group rows in broadcasts, chat_type on tasks

A broadcast recipient row may be a WeCom customer group (no customer; its chat id is
the row's address), and a group-send task records whether it goes to customers or to
groups.

Revision ID: wecom_groupsend_0001
Revises: broadcasts_0001, wecom_groups_0001
"""
from alembic import op
import sqlalchemy as sa


revision = 'wecom_groupsend_0001'
down_revision = ('broadcasts_0001', 'wecom_groups_0001')
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.alter_column(
            'customer_id',
            existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
            nullable=True,
        )
    with op.batch_alter_table('wecom_group_send_tasks', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('chat_type', sa.String(length=8), server_default='single', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('wecom_group_send_tasks', schema=None) as batch_op:
        batch_op.drop_column('chat_type')
    op.execute('DELETE FROM broadcast_recipients WHERE customer_id IS NULL')
    with op.batch_alter_table('broadcast_recipients', schema=None) as batch_op:
        batch_op.alter_column(
            'customer_id',
            existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
            nullable=False,
        )
