"""experiments: variants (one word everywhere), CUPED and sequential settings

Revision ID: 0080
Revises: 0070
Create Date: 2026-12-06 04:40:00

The API always said ``variants``; the table said ``variations`` (and ``decided_variation``).
Both columns are renamed, keeping their values. ``cuped`` and ``sequential`` choose how an
experiment's results are read; existing experiments keep the fixed-horizon reading (false).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0080'
down_revision = '0070'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.alter_column('variations', new_column_name='variants')
        batch_op.alter_column('decided_variation', new_column_name='decided_variant')
        batch_op.add_column(sa.Column('cuped', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('sequential', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('sequential')
        batch_op.drop_column('cuped')
        batch_op.alter_column('decided_variant', new_column_name='decided_variation')
        batch_op.alter_column('variants', new_column_name='variations')
