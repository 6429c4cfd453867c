"""agent sessions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:00:00

``request_records.stop_requested_by``: who pressed Slack's stop button on the answer's agent session (the
``agent_session_stopped`` event), written by whichever process received the event; the process streaming the
answer reads it at each write to Slack and stops.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stop_requested_by', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('stop_requested_by')
