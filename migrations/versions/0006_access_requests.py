"""access requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:00:00

Access requests (a refusal's "Request access" button) and every copy of a request posted to approvers. A pending
request holds ``open_key`` (unique): one pending request per person and role, whatever the process.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'access_requests',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('slack_user_id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('open_key', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('duration_hours', sa.Integer(), nullable=True),
        sa.Column('grant_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_access_requests')),
        sa.UniqueConstraint('open_key', name=op.f('uq_access_requests_open_key')),
    )
    op.create_index('ix_access_requests_status_created_at', 'access_requests', ['status', 'created_at'],
                    unique=False)
    op.create_table(
        'access_request_messages',
        sa.Column('request_id', BigId, nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('ts', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('request_id', 'channel', 'ts', name=op.f('pk_access_request_messages')),
    )


def downgrade() -> None:
    op.drop_table('access_request_messages')
    op.drop_index('ix_access_requests_status_created_at', table_name='access_requests')
    op.drop_table('access_requests')
