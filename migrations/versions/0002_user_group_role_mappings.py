"""user group role mappings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:29:36.774947
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('group_members',
    sa.Column('usergroup_id', sa.String(length=32), nullable=False),
    sa.Column('slack_user_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('usergroup_id', 'slack_user_id', name=op.f('pk_group_members'))
    )
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.create_index('ix_group_members_user', ['slack_user_id'], unique=False)

    op.create_table('group_role_mappings',
    sa.Column('usergroup_id', sa.String(length=32), nullable=False),
    sa.Column('handle', sa.String(length=128), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('mapped_by', sa.String(length=64), nullable=False),
    sa.Column('mapped_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('members_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('usergroup_id', name=op.f('pk_group_role_mappings'))
    )



def downgrade() -> None:

    op.drop_table('group_role_mappings')
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.drop_index('ix_group_members_user')

    op.drop_table('group_members')

