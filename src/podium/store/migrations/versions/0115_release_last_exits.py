"""deploy: how each process of a release last ended when it crashed ("oom", "exit 1", "signal 9")

Revision ID: 0115
Revises: 0110
Create Date: 2026-12-06 05:25:00

Existing releases get an empty record: how their past crashes ended was never known.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0115'
down_revision = '0110'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_exits', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('last_exits')
