"""deploy: why each release was made (its cause), kept as a fact instead of read from its description

Revision ID: 0070
Revises: 0061
Create Date: 2026-12-06 04:40:00

Existing releases get the cause the audit log recorded for them (``release.<verb>``, whose
target is ``<env>/v<N>``); without an audit event, their description tells it. A release
Podium made by itself is recognised, here and only here, by the sentence the deploy
watcher used to write ("Auto-rollback of v…"); a config release that rotated the app
token by "rotate PODIUM_TOKEN".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0070'
down_revision = '0061'
branch_labels = None
depends_on = None

AUDITED = """
    SELECT substr(audit_events.action, 9) FROM audit_events
    JOIN environments ON environments.id = releases.environment_id
    JOIN services ON services.id = environments.service_id
    WHERE audit_events.action IN
          ('release.deploy', 'release.config', 'release.rollback', 'release.promote', 'release.scale')
      AND audit_events.service = services.name
      AND audit_events.target = environments.name || '/v' || CAST(releases.version AS VARCHAR(12))
    ORDER BY audit_events.id DESC LIMIT 1
"""


def upgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cause', sa.String(length=20), server_default='deploy', nullable=False))
    op.execute(f"UPDATE releases SET cause = ({AUDITED}) WHERE EXISTS ({AUDITED})")
    op.execute(
        "UPDATE releases SET cause = 'rollback' WHERE rollback_of IS NOT NULL AND cause = 'deploy'"
    )
    op.execute("UPDATE releases SET cause = 'promote' WHERE cause = 'deploy' AND description LIKE 'Promote %'")
    op.execute("UPDATE releases SET cause = 'scale' WHERE cause = 'deploy' AND description LIKE 'Scale %'")
    op.execute(
        "UPDATE releases SET cause = 'auto_rollback'"
        " WHERE rollback_of IS NOT NULL AND description LIKE 'Auto-rollback of v%'"
    )
    op.execute("UPDATE releases SET cause = 'redeploy' WHERE cause = 'config' AND description = 'rotate PODIUM_TOKEN'")


def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('cause')
