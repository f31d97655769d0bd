"""deploy: each release's own commit and upload time, restarts per process

Revision ID: 0050
Revises: 0030
Create Date: 2026-11-28 07:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import podium.store.db

revision = '0050'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commit', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('uploaded_at', podium.store.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('restarts', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    # Until now the commit and the upload time were known only per artifact (its first upload).
    op.execute(
        "UPDATE releases SET"
        " \"commit\" = (SELECT artifacts.\"commit\" FROM artifacts WHERE artifacts.id = releases.artifact_id),"
        " uploaded_at = (SELECT artifacts.created_at FROM artifacts WHERE artifacts.id = releases.artifact_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('restarts')
        batch_op.drop_column('uploaded_at')
        batch_op.drop_column('commit')
