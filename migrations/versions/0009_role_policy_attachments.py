"""role policy attachments

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 17:00:00

``attachments`` (default on): whether a role may send files (images, PDFs, text files) to Claude with a question.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('role_policies', schema=None) as batch_op:
        batch_op.drop_column('attachments')
