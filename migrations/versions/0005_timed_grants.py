"""timed grants

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:50:00

Time-bound grants (`grant <user> <role> for=7d`): one row per person above their permanent grant in `role_grants`;
when it expires the person returns to that one.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'timed_grants',
        sa.Column('slack_user_id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('granted_by', sa.String(length=64), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('slack_user_id', name=op.f('pk_timed_grants')),
    )
    op.create_index('ix_timed_grants_expires_at', 'timed_grants', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_timed_grants_expires_at', table_name='timed_grants')
    op.drop_table('timed_grants')
