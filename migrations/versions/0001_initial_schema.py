"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23

Tables for roles, policies (seeded with docs/admin.md), preferences, API keys, request records,
audit log, processed Slack events and scheduler state.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('workspace', sa.String(length=64), nullable=False),
    sa.Column('env_var', sa.String(length=128), nullable=True),
    sa.Column('anthropic_key_id', sa.String(length=128), nullable=True),
    sa.Column('key_hint', sa.String(length=64), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotate_days', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('revoked_by', sa.String(length=64), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reminded_on', sa.Date(), nullable=True),
    sa.Column('last_alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('anthropic_key_id', name=op.f('uq_api_keys_anthropic_key_id')),
    sa.UniqueConstraint('label', name=op.f('uq_api_keys_label'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_workspace_status', ['workspace', 'status'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)

    op.create_table('processed_events',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_processed_events'))
    )
    op.create_table('request_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slack_user_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=True),
    sa.Column('key_label', sa.String(length=64), nullable=True),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('estimated_cost', sa.Float(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('admitted', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('refusal_reason', sa.String(length=32), nullable=True),
    sa.Column('error_type', sa.String(length=64), nullable=True),
    sa.Column('surface', sa.String(length=16), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('thread_ts', sa.String(length=32), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('feedback', sa.String(length=8), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_records'))
    )
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.create_index('ix_request_records_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_request_records_user_admitted_time', ['slack_user_id', 'admitted', 'created_at'],
                              unique=False)

    op.create_table('role_grants',
    sa.Column('slack_user_id', sa.String(length=32), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('granted_by', sa.String(length=64), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slack_user_id', name=op.f('pk_role_grants'))
    )
    op.create_table('role_policies',
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('models', sa.JSON(), nullable=False),
    sa.Column('max_tokens', sa.Integer(), nullable=False),
    sa.Column('rpm_limit', sa.Integer(), nullable=False),
    sa.Column('daily_token_budget', sa.Integer(), nullable=True),
    sa.Column('workspace', sa.String(length=64), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('role', name=op.f('pk_role_policies'))
    )
    _seed_role_policies()
    op.create_table('scheduler_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_state'))
    )
    op.create_table('user_preferences',
    sa.Column('slack_user_id', sa.String(length=32), nullable=False),
    sa.Column('preferred_model', sa.String(length=100), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slack_user_id', name=op.f('pk_user_preferences'))
    )


def downgrade() -> None:
    op.drop_table('user_preferences')
    op.drop_table('scheduler_state')
    op.drop_table('role_policies')
    op.drop_table('role_grants')
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_index('ix_request_records_user_admitted_time')
        batch_op.drop_index('ix_request_records_created_at')

    op.drop_table('request_records')
    op.drop_table('processed_events')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_at')

    op.drop_table('audit_log')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_workspace_status')

    op.drop_table('api_keys')


# docs/admin.md defaults as they stood when this revision was written (a migration never changes).
_SEED = [
    ("viewer", [], 0, 0),
    ("user", ["haiku"], 512, 10),
    ("power", ["haiku", "sonnet", "opus"], 4096, 60),
    ("billing", [], 0, 0),
    ("admin", ["haiku", "sonnet", "opus"], 8192, 200),
    ("owner", ["haiku", "sonnet", "opus"], 8192, 200),
]


def _seed_role_policies() -> None:
    table = sa.table(
        "role_policies",
        sa.column("role", sa.String),
        sa.column("models", sa.JSON),
        sa.column("max_tokens", sa.Integer),
        sa.column("rpm_limit", sa.Integer),
        sa.column("daily_token_budget", sa.Integer),
        sa.column("workspace", sa.String),
    )
    op.bulk_insert(
        table,
        [
            {"role": role, "models": models, "max_tokens": max_tokens, "rpm_limit": rpm,
             "daily_token_budget": None, "workspace": "default"}
            for role, models, max_tokens, rpm in _SEED
        ],
    )
