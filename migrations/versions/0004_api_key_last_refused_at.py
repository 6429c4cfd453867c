"""api key last refused at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 06:40:00

When Anthropic last refused a key (401/403). A ``failing`` key becomes active again only through a request made
after some quiet time since then, so a key refused on and off does not flap between the two.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_refused_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('last_refused_at')
