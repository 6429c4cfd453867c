"""scheduled prompts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:00:00

``scheduled_prompts``: `/claude schedule` prompts, each run once per occurrence by the scheduler leader as the
person who made it; ``role_policies.schedules``: how many a person of the role keeps (viewer and billing 0, user 2,
power 10, admin and owner 20).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_SCHEDULES = {"user": 2, "power": 10, "admin": 20, "owner": 20}


def upgrade() -> None:
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedules', sa.Integer(), server_default='0', nullable=False))
    policies = sa.table('role_policies', sa.column('role', sa.String), sa.column('schedules', sa.Integer))
    for role, count in DEFAULT_SCHEDULES.items():
        op.execute(policies.update().where(policies.c.role == role).values(schedules=count))
    op.create_table('scheduled_prompts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('slack_user_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('when_text', sa.String(length=128), nullable=False),
    sa.Column('cron', sa.String(length=128), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('paused_reason', sa.String(length=16), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sa.String(length=32), nullable=True),
    sa.Column('refusal_told', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_prompts'))
    )
    with op.batch_alter_table('scheduled_prompts', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_prompts_state_next_run_at', ['state', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_prompts_slack_user_id'), ['slack_user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scheduled_prompts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_prompts_slack_user_id'))
        batch_op.drop_index('ix_scheduled_prompts_state_next_run_at')
    op.drop_table('scheduled_prompts')
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.drop_column('schedules')
