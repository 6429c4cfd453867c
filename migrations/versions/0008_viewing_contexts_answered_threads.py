"""viewing contexts and answered threads

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 17:10:00

``viewing_contexts``: the channel each person last viewed with the bot's DM open (``app_context_changed``).
``answered_threads``: channel threads the bot answered and who asked there, for follow-ups without a mention.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'viewing_contexts',
        sa.Column('slack_user_id', sa.String(length=32), nullable=False),
        sa.Column('channel_id', sa.String(length=32), nullable=True),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('slack_user_id', name=op.f('pk_viewing_contexts')),
    )
    op.create_table(
        'answered_threads',
        sa.Column('channel_id', sa.String(length=32), nullable=False),
        sa.Column('thread_ts', sa.String(length=32), nullable=False),
        sa.Column('slack_user_id', sa.String(length=32), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('channel_id', 'thread_ts', 'slack_user_id', name=op.f('pk_answered_threads')),
    )
    with op.batch_alter_table('answered_threads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answered_threads_answered_at'), ['answered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('answered_threads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answered_threads_answered_at'))
    op.drop_table('answered_threads')
    op.drop_table('viewing_contexts')
