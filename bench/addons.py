"""Database add-on benchmark: backing up and restoring a ~100 MB database, beside bare pg_dump/pg_restore.

Run it with ``.venv/bin/python bench/addons.py [--mb 100] [--rounds 3] [--json PATH]``.
It builds a Podium core on a fresh data dir under /tmp with the default embedded
PostgreSQL cluster, creates an add-on and fills its database with ``generate_series``
until ``pg_database_size`` reaches ``--mb`` megabytes: a table of md5 text (which
compresses about as well as real data does) with a primary key.

Then, ``--rounds`` times, alternating:

1. ``podium addons backup``'s verb (``pg_dump -Fc`` into the backup folder, SHA-256,
   the store row) beside the baseline: the same ``pg_dump -Fc`` run by hand;
2. ``podium addons restore``'s verb (checksum check, a safety backup of what is there,
   ending the database's sessions, ``pg_restore --clean --if-exists --single-transaction``)
   beside the baseline: the same ``pg_restore`` run by hand.

It prints the medians and each ratio to its baseline; a restore costs about one backup
more than its baseline by design, since it first keeps a safety backup. It exits
non-zero when a step fails. Everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg

from podium.addons.postgres import pg_binary
from podium.catalog.auth import Actor
from podium.config import Settings
from podium.core import Podium
from podium.runtime.ports import free_port

ADMIN = Actor(team="platform", team_id=0, token_id=None)
MB = 1_000_000
FILL_CHUNK = 100_000  # rows per INSERT
T = TypeVar("T")


def fill(url: str, target: int) -> tuple[int, int]:
    """Insert rows until the database is ``target`` bytes; (rows, bytes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, a text, b text, at timestamptz)")
        count = 0
        while True:
            conn.execute(
                "INSERT INTO items SELECT g, md5(g::text), md5((g * 7)::text) || md5((g * 13)::text), "
                "timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(%s, %s) g",
                [count + 1, count + FILL_CHUNK],
            )
            count += FILL_CHUNK
            [(size,)] = conn.execute("SELECT pg_database_size(current_database())").fetchall()
            if int(size) >= target:
                conn.execute("VACUUM ANALYZE items")
                return count, int(size)


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """How long ``call()`` took, and what it returned."""
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=100, help="Size of the database to fill, in MB.")
    parser.add_argument("--rounds", type=int, default=3, help="Backups and restores of each kind.")
    parser.add_argument("--json", type=Path, help="Write every sample here.")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-"))
    scratch = Path(tempfile.mkdtemp(prefix="pd-bench-dumps-"))
    settings = Settings(data_dir=data_dir, port=free_port(), router_port=free_port(), addons_backup_interval=0)
    core = Podium(settings)
    core.start()
    try:
        core.catalog.create_team(ADMIN, "bench")
        core.catalog.create_service(ADMIN, "shop", "bench")
        started = time.perf_counter()
        addon = core.addons.create(ADMIN, "shop", "staging").addon
        provision = time.perf_counter() - started
        url = core.deploys.get_config("shop", "staging")["DATABASE_URL"]
        rows, size = fill(url, args.mb * MB)
        endpoint = core.addons.server.superuser()
        environment = {**os.environ, "PGPASSWORD": endpoint.password}
        conninfo = endpoint.conninfo(addon.database, with_password=False)
        plain = scratch / "plain.dump"

        samples: dict[str, list[float]] = {"backup": [], "pg_dump": [], "restore": [], "restore_pg_restore_part": [],
                                           "pg_restore": []}
        dump = [pg_binary("pg_dump"), "-Fc", "-f", str(plain), "-d", conninfo]
        restore = [pg_binary("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                   "-d", conninfo, str(plain)]
        backup_id, backup_size = 0, 0
        for _ in range(args.rounds):
            samples["pg_dump"].append(timed(lambda: subprocess.run(dump, env=environment, check=True))[0])
            seconds, made = timed(lambda: core.addons.backup(ADMIN, "shop", "staging"))
            samples["backup"].append(seconds)
            backup_id, backup_size = made.id, made.size
        for _ in range(args.rounds):
            samples["pg_restore"].append(timed(lambda: subprocess.run(restore, env=environment, check=True))[0])
            seconds, done = timed(lambda: core.addons.restore(ADMIN, "shop", "staging", backup_id))
            samples["restore"].append(seconds)
            samples["restore_pg_restore_part"].append(done.seconds)
        with psycopg.connect(url) as conn:
            [(restored_rows,)] = conn.execute("SELECT count(*) FROM items").fetchall()
        if restored_rows != rows:
            print(f"the restored table has {restored_rows} rows, not {rows}", file=sys.stderr)
            return 1
    finally:
        core.close()
        core.runtime.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"database: {rows:,} rows, {size / MB:.1f} MB (pg_database_size); dump {backup_size / MB:.1f} MB; "
          f"add-on provisioned in {provision:.2f} s (initdb and first start included)")
    print(f"{'':44}{'podium':>10}{'baseline':>12}{'ratio':>9}   (median of {args.rounds})")
    print(f"{'backup (podium addons backup / pg_dump -Fc)':44}{median['backup']:>9.2f}s{median['pg_dump']:>11.2f}s"
          f"{median['backup'] / median['pg_dump']:>8.2f}x")
    print(f"{'restore (podium addons restore / pg_restore)':44}{median['restore']:>9.2f}s"
          f"{median['pg_restore']:>11.2f}s{median['restore'] / median['pg_restore']:>8.2f}x")
    print(f"{'  of which pg_restore itself':44}{median['restore_pg_restore_part']:>9.2f}s"
          f"{median['pg_restore']:>11.2f}s{median['restore_pg_restore_part'] / median['pg_restore']:>8.2f}x")
    print("  (a restore first verifies the checksum and takes a safety backup: about one backup more)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "bytes": size, "dump_bytes": backup_size,
                                         "provision_seconds": provision, "samples": samples}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
