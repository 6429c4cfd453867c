"""process leases: each process's own lease, and the process that admitted a request

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00

``process_leases``: one row per live `serve` or `chat` process, renewed every few seconds; ``request_records.
process_id``: the process that admitted the record. Once a process's lease lapses, any live process closes the
records it left in flight as interrupted, within seconds instead of the sweep's ANSWER_TIMEOUT + SWEEP_MARGIN.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('process_leases',
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('holder', name=op.f('pk_process_leases'))
    )
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('process_id', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('process_id')
    op.drop_table('process_leases')
