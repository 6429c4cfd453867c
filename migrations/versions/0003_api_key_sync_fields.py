"""api key sync fields

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:50:44.281716

What Anthropic's Admin API says about a key (name, workspace id, status, creator and the creator's email,
when Anthropic made it, when it was last synced), for `keys sync`, rotation reminders and offboarding.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anthropic_name', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('anthropic_workspace_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('anthropic_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('anthropic_creator_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('anthropic_created_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('creator_email', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('synced_at')
        batch_op.drop_column('creator_email')
        batch_op.drop_column('anthropic_created_at')
        batch_op.drop_column('anthropic_creator_id')
        batch_op.drop_column('anthropic_status')
        batch_op.drop_column('anthropic_workspace_id')
        batch_op.drop_column('anthropic_name')
