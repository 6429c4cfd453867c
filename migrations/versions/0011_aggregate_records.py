"""request records that stand for several requests

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:00:00

``requests``: how many requests a record stands for. 1 for every record but the aggregate the record writer writes
for the requests it refused, and only counted, while the database was away and its memory bound was reached.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requests', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('requests')
