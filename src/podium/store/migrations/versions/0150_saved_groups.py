"""experiments: saved groups, a team's named lists of attribute values for $inGroup / $notInGroup

Revision ID: 0150
Revises: 0130
Create Date: 2026-12-06 07:30:00

A new table: no existing row gains a fact (conditions naming a group matched nobody before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import podium.store.db

revision = '0150'
down_revision = '0130'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'saved_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('attribute', sa.String(length=100), nullable=False),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=False),
        sa.Column('created_at', podium.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', podium.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'key'),
    )
    with op.batch_alter_table('saved_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_groups_team_id'), ['team_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('saved_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_groups_team_id'))
    op.drop_table('saved_groups')
