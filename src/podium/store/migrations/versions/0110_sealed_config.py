"""config vars sealed at rest

Revision ID: 0110
Revises: 0101
Create Date: 2026-12-06 05:00:00

``deploy_states.config`` and every ``releases.config`` row held config vars as plain JSON,
so a copy of the store (and every old release) kept secrets after they were unset or
rotated. Each value is now a Fernet token written as a JSON string (``SealedJSON`` in
podium/store/crypto.py), sealed with the key outside the store; the schema is unchanged.
"""

from __future__ import annotations

import json

from alembic import op
from sqlalchemy import JSON, column, select, table, update

from podium.store.crypto import keyring_of

revision = '0110'
down_revision = '0101'
branch_labels = None
depends_on = None

SEALED = (("deploy_states", "environment_id", "config"), ("releases", "id", "config"))


def upgrade() -> None:
    connection = op.get_bind()
    for name, key, col in SEALED:
        raw = table(name, column(key), column(col, JSON))
        rows = [(ident, value) for ident, value in connection.execute(select(raw.c[key], raw.c[col]))
                if not isinstance(value, str)]
        if not rows:
            continue
        keyring = keyring_of(connection.dialect)
        for ident, value in rows:
            sealed = keyring.seal(json.dumps(value, separators=(",", ":")).encode())
            connection.execute(update(raw).where(raw.c[key] == ident).values({col: sealed}))


def downgrade() -> None:
    connection = op.get_bind()
    for name, key, col in SEALED:
        raw = table(name, column(key), column(col, JSON))
        rows = [(ident, value) for ident, value in connection.execute(select(raw.c[key], raw.c[col]))
                if isinstance(value, str)]
        if not rows:
            continue
        keyring = keyring_of(connection.dialect)
        for ident, value in rows:
            connection.execute(update(raw).where(raw.c[key] == ident).values({col: json.loads(keyring.open(value))}))
