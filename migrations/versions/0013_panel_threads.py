"""panel threads

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 11:00:00

``answered_threads.panel``: the thread is one of Slack's assistant panel, recorded when ``assistant_thread_started``
arrives. In the panel, as in the agent DM, the thread's root belongs to the person: only this says which it is.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('answered_threads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('panel', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('answered_threads', schema=None) as batch_op:
        batch_op.drop_column('panel')
