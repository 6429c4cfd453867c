"""usd budgets and reservations

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:00:00

Money in integer micro-dollars (``cost_micros`` replaces the float ``estimated_cost``), the reservation of each
admitted request, cache tokens, per-person USD policy fields, budgets of people, groups and the org, spend
counters per budget scope and period, and the claim rows of budget alerts.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost_micros', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reserved_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('input_estimate', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cache_write_tokens', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cache_read_tokens', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('usage_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('charged_to', sa.JSON(), nullable=True))
        batch_op.create_index('ix_request_records_outcome', ['outcome'], unique=False)
    op.execute("UPDATE request_records SET cost_micros = CAST(ROUND(estimated_cost * 1000000) AS BIGINT)")
    with op.batch_alter_table('request_records', schema=None) as batch_op:  # the defaults of 0 stay
        batch_op.drop_column('estimated_cost')
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_usd_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('monthly_usd_micros', sa.BigInteger(), nullable=True))
    op.create_table(
        'budgets',
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=True),
        sa.Column('daily_micros', sa.BigInteger(), nullable=True),
        sa.Column('monthly_micros', sa.BigInteger(), nullable=True),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('scope', name=op.f('pk_budgets')),
    )
    op.create_table(
        'spend_counters',
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('starts', sa.Date(), nullable=False),
        sa.Column('micros', sa.BigInteger(), nullable=False),
        sa.Column('tokens', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'period', 'starts', name=op.f('pk_spend_counters')),
    )
    op.create_table(
        'budget_alerts',
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('starts', sa.Date(), nullable=False),
        sa.Column('percent', sa.Integer(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'period', 'starts', 'percent', name=op.f('pk_budget_alerts')),
    )


def downgrade() -> None:
    op.drop_table('budget_alerts')
    op.drop_table('spend_counters')
    op.drop_table('budgets')
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.drop_column('monthly_usd_micros')
        batch_op.drop_column('daily_usd_micros')
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimated_cost', sa.Float(), nullable=False, server_default='0'))
    op.execute("UPDATE request_records SET estimated_cost = cost_micros / 1000000.0")
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.alter_column('estimated_cost', server_default=None)
        batch_op.drop_index('ix_request_records_outcome')
        batch_op.drop_column('charged_to')
        batch_op.drop_column('usage_source')
        batch_op.drop_column('cache_read_tokens')
        batch_op.drop_column('cache_write_tokens')
        batch_op.drop_column('input_estimate')
        batch_op.drop_column('reserved_micros')
        batch_op.drop_column('cost_micros')
