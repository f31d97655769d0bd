"""Add-on verbs: create, destroy, rotate credentials, back up, restore; and the platform's care.

A product team asks for a database; the platform runs it. Every verb is authorised like
a config change (the owning team, a team with a ``config`` grant, or the platform team)
and recorded in the audit log. ``DATABASE_URL`` reaches the app through
``DeployService.set_config``, so a change makes and rolls out a new release when
something is live. In the background the platform backs each database up daily, prunes
old backups, samples each database's size for billing, and probes the server: when it is
down, the incidents page the platform team, not the product teams.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session

from podium.addons import backups as files
from podium.addons.crypto import Sealer
from podium.addons.models import Addon, AddonBackup, AddonState, AddonStorageSample, BackupKind
from podium.addons.postgres import (
    DatabaseServer,
    EmbeddedCluster,
    Endpoint,
    ExternalServer,
    add_login,
    create_database,
    database_size,
    drop_database,
    end_sessions,
    name_taken,
    retire_login,
)
from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Right, Service
from podium.catalog.rules import ID_MAX
from podium.catalog.service import authorize, get_environment, get_service
from podium.config import Settings
from podium.deploy.models import Release
from podium.deploy.service import DeployService
from podium.errors import Conflict, Invalid, NotFound
from podium.health.incidents import IncidentService
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)

KINDS = ("postgres",)
URL_VAR = "DATABASE_URL"
ENV_CODES = {"staging": "stg", "production": "prod"}
GB = 1_000_000_000


@dataclass(frozen=True)
class Plan:
    """What an add-on is sized and priced for. Storage is not capped: ``info`` shows use against it."""

    name: str
    connection_limit: int
    storage_bytes: int
    description: str


PLANS = {
    "small": Plan("small", 20, 1 * GB, "20 connections, sized for 1 GB"),
    "medium": Plan("medium", 60, 10 * GB, "60 connections, sized for 10 GB"),
}


def plan_named(name: str) -> Plan:
    if name not in PLANS:
        raise Invalid(f"unknown plan {name[:40]!r}: use one of {', '.join(PLANS)}")
    return PLANS[name]


@dataclass(frozen=True)
class AddonInfo:
    """An add-on as the API and CLI show it; ``url`` only when asked for by someone allowed to see it."""

    id: int
    service: str
    env: str
    kind: str
    plan: str
    state: str
    server: str
    server_kind: str
    database: str
    role: str
    connection_limit: int
    storage_quota_bytes: int
    size_bytes: int | None
    size_sampled_at: datetime | None
    rotation_pending: bool
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    destroyed_at: datetime | None
    url: str | None = None


@dataclass(frozen=True)
class BackupInfo:
    id: int
    addon_id: int
    service: str
    env: str
    kind: str
    size: int
    sha256: str
    seconds: float
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Change:
    """What a verb did to an add-on, and the release it rolled out (None when nothing was live)."""

    addon: AddonInfo
    release: Release | None
    backup: BackupInfo | None = None  # destroy: the final backup


@dataclass(frozen=True)
class Credentials:
    """The login an add-on's URL uses, as stored."""

    database: str
    owner: str
    login: str
    generation: int
    url_sealed: str

    @classmethod
    def of(cls, addon: Addon) -> Credentials:
        return cls(addon.database, addon.owner_role, addon.login_role, addon.login_generation, addon.url_sealed)


@dataclass(frozen=True)
class Restored:
    backup: BackupInfo
    safety: BackupInfo
    seconds: float


def database_name(service: str, env: str) -> str:
    """``pd_<service>_<env>_<4 hex>``: readable on the server, never reused, at most 53 characters."""
    return f"pd_{service.replace('-', '_')}_{ENV_CODES.get(env, env[:4])}_{secrets.token_hex(2)}"


def app_url(endpoint: Endpoint, login: str, password: str, database: str) -> str:
    query = f"?{urlencode(endpoint.options)}" if endpoint.options else ""
    return f"postgresql://{quote(login, safe='')}:{quote(password, safe='')}@{endpoint.host}:{endpoint.port}/" \
           f"{quote(database, safe='')}{query}"


def _check_id(backup_id: int) -> int:
    if not 0 < backup_id <= ID_MAX:
        raise NotFound(f"backup {backup_id} not found")
    return backup_id


class AddonService:
    """Database add-ons on one database server, for the service environments of one store."""

    def __init__(self, settings: Settings, store: Store, deploys: DeployService, incidents: IncidentService) -> None:
        self.settings = settings
        self.store = store
        self.deploys = deploys
        self.incidents = incidents
        data_dir = settings.data_dir.absolute()
        self.server: DatabaseServer = (
            ExternalServer(settings.addons_postgres_url) if settings.addons_postgres_url
            else EmbeddedCluster(data_dir / "postgres", deploys.runtime, deploys.ensure_runtime,
                                 settings.addons_postgres_port)
        )
        self.sealer = Sealer(data_dir / "addons.key", settings.addons_key)
        self.backup_root = (settings.addons_backup_dir or data_dir / "backups").absolute()
        self._locks: dict[int, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._rotations: dict[int, threading.Event] = {}

    # Lookups ---------------------------------------------------------------------------

    def lock(self, addon_id: int) -> threading.RLock:
        """One operation at a time on an add-on's database (backup, restore, rotate, destroy)."""
        with self._locks_guard:
            return self._locks.setdefault(addon_id, threading.RLock())

    @staticmethod
    def _place(session: Session, service: str, env: str) -> tuple[Service, Environment]:
        svc = get_service(session, service)
        return svc, get_environment(session, svc, env)

    @staticmethod
    def _current(session: Session, environment: Environment) -> Addon:
        """The environment's active add-on; NotFound when it never had one, Conflict when it was destroyed."""
        latest = session.scalars(
            select(Addon).where(Addon.environment_id == environment.id).order_by(Addon.id.desc()).limit(1)
        ).first()
        where = f"{environment.service.name}/{environment.name}"
        if latest is None:
            raise NotFound(f"{where} has no database add-on: podium addons create postgres "
                           f"--service {environment.service.name} --env {environment.name}")
        if latest.state == AddonState.DESTROYED:
            raise Conflict(f"the database add-on of {where} was destroyed at "
                           f"{latest.destroyed_at:%Y-%m-%d %H:%M} UTC; create a new one first")
        return latest

    def _info(self, session: Session, addon: Addon, url: bool = False) -> AddonInfo:
        environment = session.get(Environment, addon.environment_id)
        assert environment is not None
        sample = session.scalars(
            select(AddonStorageSample).where(AddonStorageSample.addon_id == addon.id)
            .order_by(AddonStorageSample.at.desc()).limit(1)
        ).first()
        plan = PLANS.get(addon.plan, PLANS["small"])
        return AddonInfo(
            id=addon.id, service=environment.service.name, env=environment.name, kind=addon.kind,
            plan=addon.plan, state=addon.state, server=addon.server, server_kind=self.server.label,
            database=addon.database, role=addon.login_role, connection_limit=plan.connection_limit,
            storage_quota_bytes=plan.storage_bytes, size_bytes=sample.bytes if sample else None,
            size_sampled_at=sample.at if sample else None, rotation_pending=addon.retiring_role is not None,
            created_at=addon.created_at, created_by=addon.created_by, rotated_at=addon.rotated_at,
            destroyed_at=addon.destroyed_at, url=self.sealer.open(addon.url_sealed) if url else None,
        )

    @staticmethod
    def _backup_info(backup: AddonBackup) -> BackupInfo:
        return BackupInfo(
            id=backup.id, addon_id=backup.addon_id, service=backup.service, env=backup.environment,
            kind=backup.kind, size=backup.size, sha256=backup.sha256, seconds=round(backup.seconds, 3),
            created_at=backup.created_at, created_by=backup.created_by,
        )

    def list_addons(self, service: str, include_destroyed: bool = False) -> list[AddonInfo]:
        """A service's add-ons, oldest first; destroyed ones only when asked for."""
        with self.store.session() as session:
            svc = get_service(session, service)
            stmt = (select(Addon).join(Environment, Environment.id == Addon.environment_id)
                    .where(Environment.service_id == svc.id).order_by(Addon.id))
            if not include_destroyed:
                stmt = stmt.where(Addon.state == AddonState.ACTIVE)
            return [self._info(session, addon) for addon in session.scalars(stmt)]

    def info(self, actor: Actor, service: str, env: str, show_url: bool = False) -> AddonInfo:
        """The environment's add-on; its URL (a secret) only for those who may change the config."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            if show_url:
                authorize(session, actor, svc, Right.CONFIG)
            return self._info(session, self._current(session, environment), url=show_url)

    # Creating and destroying -------------------------------------------------------------

    def create(self, actor: Actor, service: str, env: str, kind: str = "postgres", plan: str = "small") -> Change:
        """A database and its roles, ``DATABASE_URL`` set on the environment (rolled out if something is live)."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            if kind not in KINDS:
                raise Invalid(f"unknown add-on kind {kind[:40]!r}: use {', '.join(KINDS)}")
            chosen = plan_named(plan)
            active = session.scalar(select(Addon).where(Addon.active_environment_id == environment.id))
            if active is not None:
                raise Conflict(f"{service}/{env} has a database add-on already ({active.database})")
            environment_id = environment.id
        if URL_VAR in self.deploys.get_config(service, env):
            raise Conflict(f"{URL_VAR} is set in {service}/{env} already: unset it first "
                           f"(podium config unset {URL_VAR} --service {service} --env {env})")
        endpoint = self.server.ensure_running()
        database = database_name(service, env)
        while name_taken(endpoint, database):  # a leftover on a shared server: never touch what is not ours
            database = database_name(service, env)
        login, password = f"{database}_1", secrets.token_urlsafe(24)
        url = app_url(endpoint, login, password, database)
        create_database(endpoint, database, database, login, password, chosen.connection_limit)
        try:
            with self.store.session() as session:
                addon = Addon(
                    environment_id=environment_id, active_environment_id=environment_id, kind=kind,
                    plan=chosen.name, server=f"{endpoint.host}:{endpoint.port}", database=database,
                    owner_role=database, login_role=login, url_sealed=self.sealer.seal(url), created_by=actor.team,
                )
                session.add(addon)
                session.flush()
                addon_id = addon.id
        except IntegrityError:  # another request gave the environment an add-on since the check above
            self._drop(endpoint, database, [login, database])
            raise Conflict(f"{service}/{env} has a database add-on already") from None
        try:
            release = self.deploys.set_config(actor, service, env, {URL_VAR: url}, [])
        except BaseException:  # e.g. a deploy holds the environment: nothing stays behind
            with self.store.session() as session:
                session.execute(delete(Addon).where(Addon.id == addon_id))
            self._drop(endpoint, database, [login, database])
            raise
        with endpoint.connect() as conn:  # the first size sample: billing counts storage from here
            size = database_size(conn, database) or 0
        with self.store.session() as session:
            made = session.get(Addon, addon_id)
            assert made is not None
            session.add(AddonStorageSample(addon_id=addon_id, at=made.created_at, bytes=size))
            audit.record(session, actor, "addon.create", service=service, target=env,
                         after={"kind": kind, "plan": chosen.name, "database": database,
                                "release": f"v{release.version}" if release else None})
            return Change(self._info(session, made), release)

    def _drop(self, endpoint: Endpoint, database: str, roles: list[str]) -> None:
        with endpoint.connect() as conn:
            drop_database(conn, database, roles)

    def destroy(self, actor: Actor, service: str, env: str, confirm: str | None) -> Change:
        """Keep a final backup, unset ``DATABASE_URL``, then drop the database and its roles."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            if confirm != service:
                raise Invalid(f"destroying the database of {service}/{env} deletes its data: "
                              f"confirm with the service's name (--confirm {service})")
            addon_id = self._current(session, environment).id
        with self.lock(addon_id):
            final = self.take_backup(addon_id, BackupKind.FINAL, actor.team)
            release = None
            if _login_of(self.deploys.get_config(service, env).get(URL_VAR)) in self._logins(addon_id):
                release = self.deploys.set_config(actor, service, env, {}, [URL_VAR])  # one the team set stays
            info = self._remove(addon_id, actor, final)
        return Change(info, release, final)

    def _logins(self, addon_id: int) -> set[str]:
        with self.store.session() as session:
            addon = session.get(Addon, addon_id)
            assert addon is not None
            return {role for role in (addon.login_role, addon.retiring_role) if role}

    def _remove(self, addon_id: int, actor: Actor, final: BackupInfo | None) -> AddonInfo:
        """Drop the database and roles, and mark the add-on destroyed (its last size sample: 0 bytes)."""
        with self.store.session() as session:
            addon = session.get(Addon, addon_id)
            assert addon is not None
            roles = [r for r in (addon.login_role, addon.retiring_role, addon.owner_role) if r]
            database = addon.database
        self._drop(self.server.ensure_running(), database, roles)
        with self.store.session() as session:
            addon = session.get(Addon, addon_id)
            assert addon is not None
            addon.state, addon.active_environment_id, addon.destroyed_at = AddonState.DESTROYED, None, utcnow()
            addon.retiring_role = None
            session.add(AddonStorageSample(addon_id=addon_id, at=addon.destroyed_at, bytes=0))
            info = self._info(session, addon)
            audit.record(session, actor, "addon.destroy", service=info.service, target=info.env,
                         before={"database": database}, after={"final_backup": final.id if final else None})
            return info

    def teardown_service(self, actor: Actor, service: str) -> None:
        """Before a service is deleted: a final backup of each of its databases, then drop them."""
        with self.store.session() as session:
            svc = get_service(session, service)
            ids = list(session.scalars(
                select(Addon.id).join(Environment, Environment.id == Addon.environment_id)
                .where(Environment.service_id == svc.id, Addon.state == AddonState.ACTIVE)
            ))
        for addon_id in ids:
            with self.lock(addon_id):
                self._remove(addon_id, actor, self.take_backup(addon_id, BackupKind.FINAL, actor.team))

    # Credentials -------------------------------------------------------------------------

    def rotate(self, actor: Actor, service: str, env: str) -> Change:
        """A new login and password in a new release; the old login is dropped once that release is live."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            addon = self._current(session, environment)
            if addon.retiring_role is not None:
                raise Conflict(f"the previous rotation of {service}/{env} is not finished: its release is "
                               "not live yet (podium releases shows why)")
            addon_id, before = addon.id, Credentials.of(addon)
        with self.lock(addon_id):
            endpoint = self.server.ensure_running()
            generation, password = before.generation + 1, secrets.token_urlsafe(24)
            login = f"{before.database}_{generation}"
            url = app_url(endpoint, login, password, before.database)
            with endpoint.connect() as conn:
                add_login(conn, before.owner, login, password)
            self._set_credentials(addon_id, Credentials(before.database, before.owner, login, generation,
                                                        self.sealer.seal(url)), retiring=before.login)
            try:
                release = self.deploys.set_config(actor, service, env, {URL_VAR: url}, [])
            except BaseException:  # the old credentials stay the only ones
                self._set_credentials(addon_id, before, retiring=None)
                with endpoint.connect() as conn:
                    retire_login(conn, login)
                raise
            with self.store.session() as session:
                row = session.get(Addon, addon_id)
                assert row is not None
                row.rotated_at = utcnow()
                audit.record(session, actor, "addon.rotate", service=service, target=env,
                             before={"role": before.login},
                             after={"role": login, "release": f"v{release.version}" if release else None})
                info = self._info(session, row)
        self._rotations.setdefault(addon_id, threading.Event()).clear()
        if release is None:
            self.settle_rotation(addon_id)
        else:
            threading.Thread(target=self._settle_after, args=(addon_id, release.id), daemon=True,
                             name=f"addon-rotation-{addon_id}").start()
        return Change(info, release)

    def _set_credentials(self, addon_id: int, credentials: Credentials, retiring: str | None) -> None:
        with self.store.session() as session:
            row = session.get(Addon, addon_id)
            assert row is not None
            row.login_role, row.login_generation = credentials.login, credentials.generation
            row.url_sealed, row.retiring_role = credentials.url_sealed, retiring

    def _settle_after(self, addon_id: int, release_id: int) -> None:
        for _ in self.deploys.progress.follow(release_id):
            pass
        try:
            self.settle_rotation(addon_id)
        except Exception:  # the periodic jobs try again
            log.exception("add-on %s: could not retire the old login", addon_id)

    def settle_rotation(self, addon_id: int) -> bool:
        """Drop the login a rotation replaced once no live release uses it; whether it is gone now."""
        with self.store.session() as session:
            addon = session.get(Addon, addon_id)
            if addon is None or addon.retiring_role is None:
                return True
            environment = session.get(Environment, addon.environment_id)
            assert environment is not None
            service, env, old = environment.service.name, environment.name, addon.retiring_role
        live = self.deploys.live_release(service, env)
        in_use = live is not None and _login_of(live.config.get(URL_VAR)) == old
        if in_use:
            return False
        with self.lock(addon_id), self.server.ensure_running().connect() as conn:
            retire_login(conn, old)
        with self.store.session() as session:
            addon = session.get(Addon, addon_id)
            assert addon is not None
            if addon.retiring_role == old:
                addon.retiring_role = None
        self._rotations.setdefault(addon_id, threading.Event()).set()
        return True

    def wait_rotation(self, service: str, env: str, timeout: float) -> bool:
        """Wait until the environment's last rotation retired the old login; whether it did in time."""
        with self.store.session() as session:
            _, environment = self._place(session, service, env)
            addon = self._current(session, environment)
            if addon.retiring_role is None:
                return True
            addon_id = addon.id
        return self._rotations.setdefault(addon_id, threading.Event()).wait(timeout)

    # Backups -----------------------------------------------------------------------------

    def backup(self, actor: Actor, service: str, env: str) -> BackupInfo:
        """``pg_dump -Fc`` of the environment's database, kept with its size and SHA-256."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            addon_id = self._current(session, environment).id
        made = self.take_backup(addon_id, BackupKind.MANUAL, actor.team)
        with self.store.session() as session:
            audit.record(session, actor, "addon.backup", service=service, target=env,
                         after={"backup": made.id, "size": made.size, "sha256": made.sha256})
        return made

    def take_backup(self, addon_id: int, kind: BackupKind, by: str) -> BackupInfo:
        with self.lock(addon_id):
            with self.store.session() as session:
                addon = session.get(Addon, addon_id)
                assert addon is not None
                environment = session.get(Environment, addon.environment_id)
                assert environment is not None
                service, env, database = environment.service.name, environment.name, addon.database
            folder = self.backup_root / service / env
            name = files.backup_name(utcnow(), kind, secrets.token_hex(3))
            dumped = files.dump(self.server.ensure_running(), database, folder, name)
            try:
                with self.store.session() as session:
                    row = AddonBackup(
                        addon_id=addon_id, service=service, environment=env, kind=kind.value, path=str(dumped.path),
                        size=dumped.size, sha256=dumped.sha256, seconds=dumped.seconds, created_by=by,
                    )
                    session.add(row)
                    session.flush()
                    return self._backup_info(row)
            except BaseException:
                dumped.path.unlink(missing_ok=True)
                raise

    def list_backups(self, service: str, env: str) -> list[BackupInfo]:
        """Every backup of the environment's add-ons, destroyed ones' included, newest first."""
        with self.store.session() as session:
            _, environment = self._place(session, service, env)
            rows = session.scalars(
                select(AddonBackup).join(Addon, Addon.id == AddonBackup.addon_id)
                .where(Addon.environment_id == environment.id)
                .order_by(AddonBackup.created_at.desc(), AddonBackup.id.desc())
            )
            return [self._backup_info(row) for row in rows]

    def restore(self, actor: Actor, service: str, env: str, backup_id: int) -> Restored:
        """Put a backup of this service back into the environment's database, after a safety backup."""
        with self.store.session() as session:
            svc, environment = self._place(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            addon = self._current(session, environment)
            backup = session.get(AddonBackup, _check_id(backup_id))
            if backup is None:
                raise NotFound(f"backup {backup_id} not found")
            if backup.service != service:
                raise Invalid(f"backup {backup_id} is of service {backup.service!r}: "
                              f"only a backup of {service!r} restores into it")
            addon_id, database, owner = addon.id, addon.database, addon.owner_role
            chosen = self._backup_info(backup)
            path, sha256 = Path(backup.path), backup.sha256
        files.verify(path, sha256, backup_id)
        with self.lock(addon_id):
            safety = self.take_backup(addon_id, BackupKind.SAFETY, actor.team)
            endpoint = self.server.ensure_running()
            with endpoint.connect() as conn:
                end_sessions(conn, database)
            seconds = files.restore(endpoint, database, owner, path)
        with self.store.session() as session:
            audit.record(session, actor, "addon.restore", service=service, target=env,
                         after={"backup": backup_id, "safety_backup": safety.id})
        return Restored(chosen, safety, round(seconds, 3))

    def active(self) -> list[tuple[int, str, str, str]]:
        """(id, service, env, database) of every active add-on."""
        with self.store.session() as session:
            rows = session.execute(
                select(Addon.id, Service.name, Environment.name, Addon.database)
                .join(Environment, Environment.id == Addon.environment_id)
                .join(Service, Service.id == Environment.service_id)
                .where(Addon.state == AddonState.ACTIVE).order_by(Addon.id)
            )
            return [(int(i), str(s), str(e), str(d)) for i, s, e, d in rows]


def _login_of(url: str | None) -> str | None:
    """The user name in a database URL, or None."""
    if not url:
        return None
    try:
        return make_url(url).username
    except ArgumentError:  # not a URL at all: it names no login of ours
        return None
