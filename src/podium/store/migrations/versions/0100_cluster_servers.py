"""cluster: the servers of a store, and the secrets they share

Revision ID: 0100
Revises: 0090
Create Date: 2026-12-06 04:35:00

Each ``podium server`` process that joins the store gets a row; the web pages' signing
secret is kept once for all of them. Nothing existed before, so nothing is filled.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from podium.store.db import UTCDateTime

revision = '0100'
down_revision = '0090'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cluster_servers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=300), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'cluster_secrets',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('cluster_secrets')
    op.drop_table('cluster_servers')
