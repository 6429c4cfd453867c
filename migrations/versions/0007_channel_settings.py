"""channel settings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:50:00

Per-channel settings (docs/channels-and-data.md):
on/off and who switched it off, a default model, a prompt added to the system
prompt there, the roles that may ask there, and who set each.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_settings',
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('off_by', sa.String(length=64), nullable=True),
    sa.Column('model', sa.String(length=100), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=True),
    sa.Column('set_by', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel_id', name=op.f('pk_channel_settings'))
    )


def downgrade() -> None:
    op.drop_table('channel_settings')
