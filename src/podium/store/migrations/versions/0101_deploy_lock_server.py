"""deploy lock: the server that runs the rollout holding it

Revision ID: 0101
Revises: 0100
Create Date: 2026-12-06 04:36:00

A lock taken before this revision was taken by a server that did not record itself:
it stays NULL, which the leader reads as "a server that is gone" once no rollout of
this store can still be running it (every server of this version records itself).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0101'
down_revision = '0100'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deploy_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_server', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deploy_states', schema=None) as batch_op:
        batch_op.drop_column('lock_server')
