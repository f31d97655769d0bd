"""The add-ons' pure parts, without a server: retention, names, sealing, checksums, the data dir's ACL."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from podium.addons.backups import Kept, backup_name, prunable, sha256_of, verify
from podium.addons.crypto import Sealer
from podium.addons.postgres import Endpoint, ExternalServer, let_postgres_through
from podium.addons.service import app_url, database_name, plan_named
from podium.errors import Conflict, Invalid, PodiumError

DAY = timedelta(days=1)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def kept(backup_id: int, addon_id: int, kind: str, days_old: float) -> Kept:
    return Kept(backup_id, addon_id, kind, NOW - days_old * DAY)


def test_retention_keeps_the_recent_the_final_and_each_add_ons_newest() -> None:
    backups = [
        kept(1, 1, "scheduled", 10), kept(2, 1, "manual", 8), kept(3, 1, "safety", 3), kept(4, 1, "scheduled", 1),
        kept(5, 2, "scheduled", 30), kept(6, 2, "final", 20),  # a destroyed add-on
        kept(7, 3, "scheduled", 40),  # an add-on whose backups stopped: its newest stays
    ]
    assert prunable(backups, NOW, 7 * DAY) == [1, 2, 5]
    assert prunable(backups, NOW, 0.5 * DAY) == [1, 2, 3, 5]
    assert prunable([], NOW, DAY) == []
    exactly = [kept(1, 1, "manual", 7), kept(2, 1, "manual", 0)]
    assert prunable(exactly, NOW, 7 * DAY) == []  # older than the retention, not as old


def test_names_fit_postgresql_and_sort_by_time() -> None:
    longest = "s" * 39 + "x"
    name = database_name(longest, "production")
    assert len(f"{name}_999999999") <= 63  # logins add a generation to the database's name
    assert name.startswith(f"pd_{longest}_prod_")
    assert database_name("a-b", "staging").startswith("pd_a_b_stg_")
    assert database_name("cart", "staging") != database_name("cart", "staging")
    earlier = backup_name(NOW, "manual", "aaaaaa")
    assert earlier == "20260615T120000Z-manual-aaaaaa.dump"
    assert earlier < backup_name(NOW + timedelta(seconds=1), "final", "000000")


def test_plans_and_urls() -> None:
    assert plan_named("medium").connection_limit == 60
    with pytest.raises(Invalid, match="unknown plan 'x"):
        plan_named("x" * 100)
    endpoint = Endpoint("db.internal", 5433, "postgres", "pw", (("sslmode", "require"),))
    assert app_url(endpoint, "pd_a_stg_1234_1", "p-w_d", "pd_a_stg_1234") == (
        "postgresql://pd_a_stg_1234_1:p-w_d@db.internal:5433/pd_a_stg_1234?sslmode=require"
    )
    assert "pw" not in endpoint.conninfo("x", with_password=False)
    server = ExternalServer("postgresql+psycopg://root:s%40cret@db:6000/postgres?sslmode=disable")
    assert server.superuser() == Endpoint("db", 6000, "root", "s@cret", (("sslmode", "disable"),))
    with pytest.raises(Invalid):
        ExternalServer("mysql://root@db/")


def test_sealed_secrets_open_only_with_their_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "addons.key"
    sealer = Sealer(key_file)
    sealed = sealer.seal("postgresql://u:secret@h/db")
    assert "secret" not in sealed
    assert sealer.open(sealed) == "postgresql://u:secret@h/db"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert Sealer(key_file).open(sealed) == "postgresql://u:secret@h/db"  # the key file is read, not remade
    with pytest.raises(PodiumError, match="does not open with the current key"):
        Sealer(tmp_path / "other.key").open(sealed)
    given = Fernet.generate_key().decode()
    assert Sealer(tmp_path / "unused.key", given).open(Sealer(tmp_path / "x", given).seal("s")) == "s"
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(Invalid, match="not a Fernet key"):
        Sealer(tmp_path / "y", "short").seal("s")


def test_a_backup_whose_bytes_changed_is_refused(tmp_path: Path) -> None:
    dump = tmp_path / "b.dump"
    dump.write_bytes(b"PGDMP" + bytes(range(256)) * 10)
    digest = sha256_of(dump)
    verify(dump, digest, 1)
    dump.write_bytes(b"PGDMP")
    with pytest.raises(Conflict, match="backup 1 is damaged"):
        verify(dump, digest, 1)
    with pytest.raises(Conflict, match="missing its file"):
        verify(tmp_path / "gone.dump", digest, 2)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to let the postgres user in")
def test_the_postgres_user_is_let_through_a_private_data_dir_and_nobody_else() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pd-acl-"))
    try:
        (data_dir / "postgres").mkdir()
        (data_dir / "secret").write_text("s")
        data_dir.chmod(0o700)
        let_postgres_through(data_dir / "postgres")
        let_postgres_through(data_dir / "postgres")  # twice changes nothing

        def as_user(user: str, *argv: str) -> int:
            return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True, check=False).returncode

        assert as_user("postgres", "test", "-d", str(data_dir / "postgres")) == 0
        assert as_user("postgres", "ls", str(data_dir)) != 0  # through, not around
        assert data_dir.stat().st_mode & 0o007 == 0
        nobody = pwd.getpwnam("nobody").pw_name
        assert as_user(nobody, "test", "-d", str(data_dir / "postgres")) != 0
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
