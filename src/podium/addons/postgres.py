"""The PostgreSQL server add-ons live on, and the SQL that gives each add-on its database.

Two servers answer the same ``DatabaseServer`` protocol:

- ``ExternalServer``: an existing server named by ``PODIUM_ADDONS_POSTGRES_URL``, a
  superuser's URL. Podium only creates and drops databases and roles on it.
- ``EmbeddedCluster``, the default: a cluster Podium initialises in ``<data dir>/postgres``
  with the machine's PostgreSQL binaries and runs as the runtime's platform process
  ``podium-postgres`` (locally, under supervisord), which restarts it if it dies and keeps
  it running while Podium itself restarts. PostgreSQL refuses to run as root, so when Podium is root the
  cluster's files belong to the ``postgres`` system user and the server runs as that user.
  It listens on 127.0.0.1 only, and every login needs a password (SCRAM).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from podium.errors import Invalid, PodiumError
from podium.osutil import grant_search, may_search, write_private
from podium.runtime import RuntimeFailure
from podium.runtime.interface import PlatformProcess, Runtime
from podium.runtime.ports import free_port

GROUP = "podium-postgres"
PROCESS = "postgres"
SYSTEM_USER = "postgres"
CONNECT_TIMEOUT = 5
START_TIMEOUT = 60.0
POLL_INTERVAL = 0.1
STOP_WAIT_SECONDS = 30  # a fast shutdown (all sessions end, then a checkpoint) fits well within this


def pg_bin_dirs() -> list[Path]:
    """The machine's PostgreSQL binary directories, newest major version first."""
    found = Path("/usr/lib/postgresql").glob("*/bin")
    return sorted(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)


def pg_binary(name: str) -> str:
    """The path of a PostgreSQL program (``initdb``, ``pg_dump``…): the newest installed one."""
    for directory in pg_bin_dirs():
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise PodiumError(f"PostgreSQL's {name} is not installed on this machine (apt install postgresql)")
    return found


@dataclass(frozen=True)
class Endpoint:
    """How to reach a server as one role: what psycopg, pg_dump and apps are given."""

    host: str
    port: int
    user: str
    password: str
    options: tuple[tuple[str, str], ...] = ()  # e.g. sslmode from the server's URL

    def conninfo(self, dbname: str, *, with_password: bool = True) -> str:
        """A libpq connection string; without the password for command lines (it goes in PGPASSWORD)."""
        extra = dict(self.options)
        if with_password:
            extra["password"] = self.password
        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname,
                             connect_timeout=CONNECT_TIMEOUT, **extra)

    @contextmanager
    def connect(self, dbname: str = "postgres") -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A connection in autocommit mode (CREATE DATABASE refuses to run in a transaction).

        The server not answering is ``DatabaseUnavailable``; a statement it refuses inside
        the block is ``DatabaseRefused``: both 502, both with the server's first line.
        """
        try:
            conn = psycopg.connect(self.conninfo(dbname), autocommit=True)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot reach the database server at {self.host}:{self.port}: "
                                      f"{_first_line(exc)}") from None
        try:
            with conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the database server at {self.host}:{self.port} went away: "
                                      f"{_first_line(exc)}") from None
        except psycopg.Error as exc:
            raise DatabaseRefused(f"the database server refused: {_first_line(exc)}") from None


class DatabaseUnavailable(RuntimeFailure):
    """The database server does not answer (HTTP 502)."""


class DatabaseRefused(RuntimeFailure):
    """The database server answered but refused a statement, e.g. a role without rights (HTTP 502)."""


class DatabaseServer(Protocol):
    """Where add-on databases live."""

    @property
    def label(self) -> str:
        """``embedded`` or ``external``: what ``podium addons info`` shows."""
        ...

    def exists(self) -> bool:
        """Whether there is a server to look after yet (the embedded cluster is made on first use)."""
        ...

    def ensure_running(self) -> Endpoint:
        """Make sure the server answers (initialising and starting it if needed); the superuser's endpoint."""
        ...

    def superuser(self) -> Endpoint:
        """The superuser's endpoint, without starting anything."""
        ...


class ExternalServer:
    """An existing PostgreSQL server, reached with a superuser's URL."""

    label = "external"

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise Invalid("PODIUM_ADDONS_POSTGRES_URL is not a URL like postgresql://USER:PASSWORD@HOST:PORT/")\
                from None
        if not parsed.drivername.startswith("postgres"):
            raise Invalid("PODIUM_ADDONS_POSTGRES_URL must be a postgresql:// URL")
        options = tuple(sorted((str(k), str(v)) for k, v in parsed.query.items() if isinstance(v, str)))
        self._endpoint = Endpoint(
            host=parsed.host or "localhost", port=parsed.port or 5432, user=parsed.username or "postgres",
            password=parsed.password if isinstance(parsed.password, str) else "", options=options,
        )

    def exists(self) -> bool:
        return True

    def ensure_running(self) -> Endpoint:
        with self._endpoint.connect():
            pass
        return self._endpoint

    def superuser(self) -> Endpoint:
        return self._endpoint


class EmbeddedCluster:
    """A cluster in ``root`` (``<data dir>/postgres``), run by the runtime as a platform process.

    ``root`` holds ``data/`` (the cluster, the ``postgres`` user's when Podium is root),
    ``sock/`` (its unix socket), ``logs/``, the superuser's password and the port chosen
    on first start (``port``), so the URLs handed to apps stay valid across restarts.
    """

    label = "embedded"

    def __init__(
        self, root: Path, runtime: Runtime, ensure_runtime: Callable[[], None], port: int | None = None
    ) -> None:
        self.root = root.absolute()
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log_file = self.root / "logs" / "postgres.log"
        self.password_file = self.root / "superuser.password"
        self.port_file = self.root / "port"
        self.runtime = runtime
        self.ensure_runtime = ensure_runtime
        self.fixed_port = port
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def superuser(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port(), SYSTEM_USER, self.password_file.read_text().strip())

    def port(self) -> int:
        """The port from settings, else the one chosen on first start and remembered in ``root/port``."""
        if self.fixed_port is not None:
            return self.fixed_port
        try:
            return int(self.port_file.read_text())
        except FileNotFoundError:
            chosen = free_port()
            self.root.mkdir(parents=True, exist_ok=True)
            write_private(self.port_file, f"{chosen}\n", mode=0o644)
            return chosen

    def ensure_running(self) -> Endpoint:
        """Initialise the cluster on first use, have the runtime run it, and wait until it answers."""
        with self._lock:
            new = not self.exists()
            if new:
                self._initialise()
            self.ensure_runtime()
            self.runtime.run_platform(self.process())
            endpoint = self.superuser()
            self._wait_ready(endpoint)
            if new:
                harden(endpoint)
            return endpoint

    # Initialising ----------------------------------------------------------------------

    def _initialise(self) -> None:
        """``initdb`` as the ``postgres`` user (when root) with a generated superuser password."""
        as_root = os.geteuid() == 0
        shutil.rmtree(self.data, ignore_errors=True)  # an initdb that was interrupted leaves a partial one
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        for folder in (self.data, self.sockets):
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)
        self.log_file.parent.mkdir(exist_ok=True)
        if as_root:
            let_postgres_through(self.root)
            for folder in (self.data, self.sockets):
                shutil.chown(folder, SYSTEM_USER, SYSTEM_USER)
        password = _new_password()
        pwfile = self.root / ".initdb-password"
        write_private(pwfile, password + "\n")
        if as_root:
            shutil.chown(pwfile, SYSTEM_USER, SYSTEM_USER)
        try:
            done = subprocess.run(
                _as_system_user([
                    pg_binary("initdb"), "-D", str(self.data), "-U", SYSTEM_USER, f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                    "--locale=C.UTF-8",
                ]),
                capture_output=True, text=True, check=False, timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeFailure(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")
        write_private(self.password_file, password + "\n")

    # Running ---------------------------------------------------------------------------

    def process(self) -> PlatformProcess:
        """The ``postgres`` process: on 127.0.0.1 and its own socket directory only."""
        command = [
            pg_binary("postgres"), "-D", str(self.data), "-p", str(self.port()), "-k", str(self.sockets),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_permissions=0700",
        ]
        if os.geteuid() == 0:  # setpriv execs, so supervisord's signals reach postgres itself
            command = ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups", *command]
        return PlatformProcess(
            name=GROUP, process_name=PROCESS, command=shlex.join(command), directory=self.root,
            environment={"LANG": "C.UTF-8"}, log_file=self.log_file, stop_wait_seconds=STOP_WAIT_SECONDS,
        )

    def _wait_ready(self, endpoint: Endpoint) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with endpoint.connect():
                    return
            except DatabaseUnavailable as exc:
                status = self.runtime.platform_status(GROUP)
                states = [status.state] if status is not None else ["not running"]
                if "FATAL" in states or time.monotonic() >= deadline:
                    raise DatabaseUnavailable(
                        f"the embedded PostgreSQL did not start ({', '.join(states)}): {exc.detail}; "
                        f"see {self.log_file}"
                    ) from None
            time.sleep(POLL_INTERVAL)


# Provisioning ------------------------------------------------------------------------------


def create_database(
    endpoint: Endpoint, database: str, owner: str, login: str, password: str, connection_limit: int
) -> None:
    """A database owned by ``owner`` (no login), reachable only through its own roles.

    ``login`` logs in with ``password`` and acts as ``owner`` in every session, so what
    the app creates belongs to ``owner`` and survives a change of login. If a step is
    refused, what the steps before it made is dropped again, and nothing else.
    """
    made: list[str] = []
    try:
        with endpoint.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
            made.append(owner)
            add_login(conn, owner, login, password)
            made.insert(0, login)
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} CONNECTION LIMIT {}").format(
                sql.Identifier(database), sql.Identifier(owner), sql.Literal(connection_limit)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    except DatabaseRefused:
        with endpoint.connect() as conn:
            drop_database(conn, database if len(made) == 2 else None, made)
        raise


def name_taken(endpoint: Endpoint, name: str) -> bool:
    """Whether a database or a role of that name exists on the server already."""
    with endpoint.connect() as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s UNION ALL SELECT 1 FROM pg_roles WHERE rolname LIKE %s",
            [name, name.replace("_", r"\_") + "%"],
        ).fetchone()
    return found is not None


def add_login(conn: psycopg.Connection[tuple[object, ...]], owner: str, login: str, password: str) -> None:
    """A role that logs in with ``password`` and then acts as ``owner``."""
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
        sql.Identifier(login), sql.Literal(password), sql.Identifier(owner)))
    conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(sql.Identifier(login), sql.Literal(owner)))


def retire_login(conn: psycopg.Connection[tuple[object, ...]], login: str) -> None:
    """End the login's sessions and drop it: from now on its password opens nothing."""
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [login])
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def drop_database(conn: psycopg.Connection[tuple[object, ...]], database: str | None, roles: list[str]) -> None:
    """Drop the database (ending its sessions) and then its roles; what is gone already is skipped."""
    if database is not None:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    for role in roles:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def end_sessions(conn: psycopg.Connection[tuple[object, ...]], database: str) -> None:
    """End every other session on ``database``: a restore must not wait behind an app's locks."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database],
    )


def database_size(conn: psycopg.Connection[tuple[object, ...]], database: str) -> int | None:
    """``pg_database_size`` in bytes, or None when the database is not there."""
    row = conn.execute(
        "SELECT pg_database_size(datname) FROM pg_database WHERE datname = %s", [database]
    ).fetchone()
    return int(str(row[0])) if row is not None else None


def harden(endpoint: Endpoint) -> None:
    """Close the cluster's own databases to roles that were not given them (embedded cluster only)."""
    with endpoint.connect() as conn:
        for name in ("postgres", "template1"):
            conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(name)))


# Files and users --------------------------------------------------------------------------


def _new_password() -> str:
    return secrets.token_urlsafe(32)


def _as_system_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_USER, "--", *argv] if os.geteuid() == 0 else argv


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def let_postgres_through(root: Path) -> None:
    """Let the ``postgres`` user reach ``root`` through the data dir, and nothing more.

    A data dir private to root (mode 0700) would keep the server out of its own files.
    The data dir gets a POSIX ACL granting that one user search (x) rights, so it can
    pass through without listing or reading anything else; where ACLs are not supported
    the data dir gets o+x instead. Directories above the data dir are not Podium's to
    change: if one of them keeps ``postgres`` out, the error says which.
    """
    uid = pwd.getpwnam(SYSTEM_USER).pw_uid
    data_dir = root.parent
    for folder in (*reversed(data_dir.parents), data_dir):
        if may_search(folder, uid):
            continue
        if folder != data_dir:
            raise Invalid(
                f"the postgres user cannot reach {root}: let it through {folder} "
                f"(setfacl -m u:postgres:x {folder}) or set PODIUM_ADDONS_POSTGRES_URL"
            )
        grant_search(folder, uid)
