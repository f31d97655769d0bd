"""people: users, memberships, personal tokens; tokens get a name and a creator; audit names a person

Revision ID: 0090
Revises: 0080
Create Date: 2026-12-06 04:45:00

Existing team tokens are named after their description (or ``token-<id>``) and made by
their own team; existing audit events were all made by team tokens, so their person is
empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from podium.store.db import UTCDateTime

revision = '0090'
down_revision = '0080'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('admin', sa.Boolean(), nullable=False),
        sa.Column('contacts', sa.JSON(), nullable=False),
        sa.Column('oidc_subject', sa.String(length=600), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('oidc_subject'),
    )
    op.create_table(
        'memberships',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'team_id'),
    )
    op.create_index('ix_memberships_team_id', 'memberships', ['team_id'])
    op.create_index('ix_memberships_user_id', 'memberships', ['user_id'])
    op.create_table(
        'personal_tokens',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('teams', sa.JSON(), nullable=True),
        sa.Column('read_only', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_personal_tokens_user_id', 'personal_tokens', ['user_id'])
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=60), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('created_by', sa.String(length=40), nullable=False, server_default=''))
    op.execute(
        "UPDATE tokens SET name = CASE WHEN description <> '' THEN substr(description, 1, 60) "
        "ELSE 'token-' || id END, created_by = (SELECT name FROM teams WHERE teams.id = tokens.team_id)"
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.alter_column('name', server_default=None)
        batch_op.alter_column('created_by', server_default=None)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_audit_events_user', ['user'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_user')
        batch_op.drop_column('session_id')
        batch_op.drop_column('user')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('created_by')
        batch_op.drop_column('name')
    op.drop_index('ix_personal_tokens_user_id', table_name='personal_tokens')
    op.drop_table('personal_tokens')
    op.drop_index('ix_memberships_user_id', table_name='memberships')
    op.drop_index('ix_memberships_team_id', table_name='memberships')
    op.drop_table('memberships')
    op.drop_table('users')
