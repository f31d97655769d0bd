"""Migration 0070 gives every existing release the cause that made it."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from podium.store.db import alembic_config

NOW = "2026-12-01 10:00:00"
# (version, description, rollback_of, audited verb or None): what earlier Podiums wrote
RELEASES = [
    (1, "Deploy 0123456789ab", None, "deploy"),
    (2, "set GREETING", None, "config"),
    (3, "Scale web=2", None, "scale"),
    (4, "Auto-rollback of v3: rollback to v2", 2, "rollback"),
    (5, "Rollback to v3", 3, "rollback"),
    (6, "rotate PODIUM_TOKEN", None, "config"),
    (7, "Promote staging v1", None, "promote"),
    (8, "Scale web=1", None, None),  # no audit event: told by its description
    (9, "my own words", None, None),
]
EXPECTED = {
    1: "deploy", 2: "config", 3: "scale", 4: "auto_rollback", 5: "rollback", 6: "redeploy", 7: "promote",
    8: "scale", 9: "deploy",
}


def test_existing_releases_get_their_cause(store_url: str) -> None:
    config = alembic_config(store_url)
    before = ScriptDirectory.from_config(config).get_revision("0070").down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            now = {"now": NOW}
            conn.execute(text("INSERT INTO teams (id, name, description, created_at) VALUES (1, 'web', '', :now)"), now)
            conn.execute(text(
                "INSERT INTO services (id, name, owner_id, description, lifecycle, created_at, updated_at)"
                " VALUES (1, 'shop', 1, '', 'production', :now, :now)"
            ), now)
            conn.execute(text("INSERT INTO environments (id, service_id, name) VALUES (1, 1, 'production')"))
            conn.execute(text(
                "INSERT INTO artifacts (id, service_id, digest, size, processes, app_json, created_at, created_by)"
                " VALUES (1, 1, 'sha256:00', 1, '{}', '{}', :now, 'web')"
            ), now)
            for version, description, rollback_of, verb in RELEASES:
                conn.execute(
                    text(
                        "INSERT INTO releases (environment_id, version, artifact_id, config, formation, description,"
                        " created_by, created_at, status, stage, ports, rollback_of, crashes, restarts)"
                        " VALUES (1, :version, 1, '{}', '{}', :description, 'web', :now, 'superseded', 'done',"
                        " '{}', :rollback_of, 0, '{}')"
                    ),
                    {"version": version, "description": description, "now": NOW, "rollback_of": rollback_of},
                )
                if verb is not None:
                    conn.execute(
                        text(
                            "INSERT INTO audit_events (at, team, action, service, target)"
                            " VALUES (:now, 'web', :action, 'shop', :target)"
                        ),
                        {"now": NOW, "action": f"release.{verb}", "target": f"production/v{version}"},
                    )
        command.upgrade(config, "0070")
        with engine.connect() as conn:
            causes = {row.version: row.cause for row in conn.execute(text("SELECT version, cause FROM releases"))}
    finally:
        engine.dispose()
    assert causes == EXPECTED
