"""experiment events: covering indexes for results

Revision ID: 0061
Revises: 0060
Create Date: 2026-12-03 14:06:00

The exposure and metric indexes also hold ``at`` and ``variant`` / ``value``, so results
read each user's first exposure and metric events from the index alone: on SQLite with 10
million events, results take about half as long, another metric a fifth (bench/experiments.py).
"""

from __future__ import annotations

from alembic import op

revision = '0061'
down_revision = '0060'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiment_events', schema=None) as batch_op:
        batch_op.drop_index('ix_experiment_events_metrics')
        batch_op.drop_index('ix_experiment_events_exposures')
        batch_op.create_index(
            'ix_experiment_events_exposures', ['environment_id', 'experiment', 'user_id', 'at', 'variant'], unique=False
        )
        batch_op.create_index(
            'ix_experiment_events_metrics', ['environment_id', 'name', 'user_id', 'at', 'value'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('experiment_events', schema=None) as batch_op:
        batch_op.drop_index('ix_experiment_events_metrics')
        batch_op.drop_index('ix_experiment_events_exposures')
        batch_op.create_index(
            'ix_experiment_events_exposures', ['environment_id', 'experiment', 'user_id'], unique=False
        )
        batch_op.create_index('ix_experiment_events_metrics', ['environment_id', 'name', 'user_id'], unique=False)
