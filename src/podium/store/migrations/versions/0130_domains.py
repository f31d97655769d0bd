"""domains: custom domains of service environments, with the state of their certificates

Revision ID: 0130
Revises: 0115
Create Date: 2026-12-06 07:40:00

A new table: no existing row gains a fact.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from podium.store.db import UTCDateTime

revision = '0130'
down_revision = '0115'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'domains',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=253), nullable=False),
        sa.Column('environment_id', sa.Integer(), nullable=False),
        sa.Column('tls', sa.String(length=20), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domains_environment_id'), ['environment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domains_environment_id'))
    op.drop_table('domains')
