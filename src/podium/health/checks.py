"""Check verbs: the ``web`` check every deployed app gets, extra checks, and what to probe.

A service environment whose live release runs web processes gets a ``web`` check by
itself (``ensure_web_checks``), probing app.json's ``healthchecks.web`` path or ``/``
until a person pins a path. Extra HTTP or TCP checks are added per environment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.artifacts.appjson import AppJson
from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Right, Service
from podium.catalog.rules import check_name, check_text, is_name
from podium.catalog.service import authorize, get_environment, get_service
from podium.config import Settings
from podium.deploy.models import Artifact, DeployState, Release
from podium.errors import Conflict, Invalid, NotFound
from podium.health.models import Check, CheckKind, CheckState
from podium.health.probe import Counters, ProbeTarget, probed
from podium.health.status import EnvStatuses, environment_statuses
from podium.runtime.naming import hostnames
from podium.store.db import Store

WEB = "web"
PATH_RE = re.compile(r"/[\x21-\x7e]{0,499}")  # printable ASCII, no spaces: what a URL path may hold
HOST_RE = re.compile(r"[A-Za-z0-9._-]{1,200}|\[[0-9A-Fa-f:.]{2,100}\]")
JSON_FIELD_RE = re.compile(r"[^=.\s]+(\.[^=.\s]+)*=.*")
LIMITS: dict[str, tuple[float, float]] = {
    "interval": (0.1, 86_400.0),
    "timeout": (0.1, 300.0),
    "down_after": (1, 100),
    "up_after": (1, 100),
    "expect_status": (100, 599),
}
SETTABLE = frozenset(
    {"path", "tcp", "interval", "timeout", "down_after", "up_after", "expect_status", "body_contains",
     "json_field", "enabled"}
)
CLEARABLE = frozenset({"expect_status", "body_contains", "json_field"})


@dataclass(frozen=True)
class CheckInfo:
    """A check as the API and CLI show it."""

    id: int
    service: str
    env: str
    name: str
    kind: str
    path: str
    path_pinned: bool
    host: str | None
    port: int | None
    interval: float
    timeout: float
    down_after: int
    up_after: int
    expect_status: int | None
    body_contains: str | None
    json_field: str | None
    enabled: bool
    state: str
    consecutive_ok: int
    consecutive_fail: int
    last_checked_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, check: Check, service: str, env: str) -> CheckInfo:
        return cls(
            id=check.id, service=service, env=env, name=check.name, kind=check.kind, path=check.path,
            path_pinned=check.path_pinned, host=check.host, port=check.port, interval=check.interval,
            timeout=check.timeout, down_after=check.down_after, up_after=check.up_after,
            expect_status=check.expect_status, body_contains=check.body_contains, json_field=check.json_field,
            enabled=check.enabled, state=check.state, consecutive_ok=check.consecutive_ok,
            consecutive_fail=check.consecutive_fail, last_checked_at=check.last_checked_at,
            last_error=check.last_error,
        )

    @property
    def target(self) -> str:
        """``GET /health`` or ``TCP 127.0.0.1:5432``."""
        return probed(self.kind, self.path, self.host, self.port)


Checks = list[CheckInfo]  # aliases: inside the service class, ``list`` names its verb
Targets = list[tuple[ProbeTarget, Counters]]


# Validation ----------------------------------------------------------------------------


def check_number(field: str, value: Any) -> Any:
    """A finite number within the field's limits (an int for the counts and the status)."""
    low, high = LIMITS[field]
    integral = field in ("down_after", "up_after", "expect_status")
    if isinstance(value, bool) or not isinstance(value, int | float) or (integral and not float(value).is_integer()):
        raise Invalid(f"{field} must be {'a whole number' if integral else 'a number'}")
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"{field} must be between {low:g} and {high:g}")
    return int(value) if integral else float(value)


def check_path(path: str) -> str:
    if not PATH_RE.fullmatch(path):
        raise Invalid(f"invalid path {path[:60]!r}: start with / and use printable characters, no spaces")
    return path


def parse_tcp(target: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as a host and a port."""
    host, _, port = target.strip().rpartition(":")
    if not HOST_RE.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"invalid TCP target {target[:60]!r}: use host:port, e.g. 127.0.0.1:5432")
    return host.strip("[]"), int(port)


def check_json_field(spec: str) -> str:
    if len(spec) > 200 or not JSON_FIELD_RE.fullmatch(spec):
        raise Invalid(f"invalid json_field {spec[:60]!r}: use field=value or a.b=value")
    return check_text("json_field", spec, 200)


def apply_changes(check: Check, changes: dict[str, Any]) -> None:
    """Validate ``changes`` (SETTABLE names; None clears a CLEARABLE one) and set them on ``check``."""
    unknown = set(changes) - SETTABLE
    if unknown:
        raise Invalid(f"unknown check settings: {', '.join(sorted(unknown))}")
    tcp = check.kind == CheckKind.TCP
    for field, value in changes.items():
        if value is None and field not in CLEARABLE:
            raise Invalid(f"{field} cannot be empty")
        if field in ("path", "body_contains", "json_field", "expect_status") and tcp:
            raise Invalid(f"{field} applies to HTTP checks; {check.name!r} is a TCP check")
        if field == "tcp" and not tcp:
            raise Invalid(f"tcp applies to TCP checks; {check.name!r} is an HTTP check")
        if field == "path":
            check.path, check.path_pinned = check_path(value), True
        elif field == "tcp":
            check.host, check.port = parse_tcp(str(value))
        elif field == "enabled":
            check.enabled = bool(value)
        elif field == "body_contains":
            check.body_contains = None if value is None else check_text("body_contains", str(value), 500) or None
        elif field == "json_field":
            check.json_field = None if value is None else check_json_field(str(value))
        elif value is None:  # expect_status
            check.expect_status = None
        else:
            setattr(check, field, check_number(field, value))


def snapshot(check: Check) -> dict[str, Any]:
    """What the audit log records of a check."""
    keys = ("kind", "path", "host", "port", "interval", "timeout", "down_after", "up_after", "expect_status",
            "body_contains", "json_field", "enabled")
    return {key: getattr(check, key) for key in keys}


def web_path(app_json: dict[str, Any]) -> str:
    """The path app.json's ``healthchecks.web`` probes, else ``/``."""
    try:
        check = AppJson.model_validate(app_json).web_healthcheck()
    except ValueError:  # stored before a stricter reader; probe the root instead
        return "/"
    return check.path if check is not None else "/"


# The service ---------------------------------------------------------------------------


class CheckService:
    """Check verbs over one store; ``targets`` tells the checker what to probe."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.store = store
        self.settings = settings
        self.router_url = settings.router_url
        self._seen: dict[int, int] = {}  # environment id → the live release its web check was last fitted to
        # Bumped by every change made here, so the checker reloads its checks only when needed.
        self.generation = 0

    def list(self, service: str, env: str | None = None) -> Checks:
        """A service's checks (of one environment, or all), web first."""
        with self.store.session() as session:
            svc = get_service(session, service)
            environments = [get_environment(session, svc, env)] if env is not None else list(svc.environments)
            names = {e.id: e.name for e in environments}
            rows = session.scalars(select(Check).where(Check.environment_id.in_(names)))
            found = [CheckInfo.of(c, svc.name, names[c.environment_id]) for c in rows]
            return sorted(found, key=lambda c: (c.env != "production", c.env, c.name != WEB, c.name))

    def environment_statuses(self, now: datetime) -> EnvStatuses:
        """Per service name, each environment's releases and health at ``now``, staging first."""
        with self.store.session() as session:
            return environment_statuses(session, now)

    def add(self, actor: Actor, service: str, env: str, name: str, settings: dict[str, Any]) -> CheckInfo:
        """Add an HTTP check (``path``, through the router) or a TCP one (``tcp='host:port'``)."""
        with self.store.session() as session:
            svc, environment = self._target(session, actor, service, env)
            check_name("check", name)
            if name == WEB:
                raise Conflict(f"{WEB!r} is the check every deployed app has: change it with podium checks set")
            if self._find(session, environment.id, name) is not None:
                raise Conflict(f"check {name!r} exists already in {svc.name}/{env}")
            kind = CheckKind.TCP if settings.get("tcp") is not None else CheckKind.HTTP
            check = Check(
                environment_id=environment.id, name=name, kind=kind, path="/", path_pinned=True,
                interval=self.settings.check_interval, timeout=self.settings.check_timeout,
                down_after=self.settings.check_down_after, up_after=self.settings.check_up_after,
                enabled=True, state=CheckState.UNKNOWN, consecutive_ok=0, consecutive_fail=0,
            )
            apply_changes(check, {k: v for k, v in settings.items() if v is not None or k in CLEARABLE})
            session.add(check)
            session.flush()
            audit.record(session, actor, "check.add", service=svc.name, target=f"{env}/{name}",
                         after=snapshot(check))
            info = CheckInfo.of(check, svc.name, env)
        self.generation += 1
        return info

    def update(self, actor: Actor, service: str, env: str, name: str, changes: dict[str, Any]) -> CheckInfo:
        """Change a check's settings; the ``web`` check is created first if no release made it yet."""
        with self.store.session() as session:
            svc, environment = self._target(session, actor, service, env)
            check = self._find(session, environment.id, name)
            if check is None and name == WEB:
                check = self._new_web_check(session, environment.id, "/")
            if check is None:
                raise NotFound(f"check {name[:60]!r} not found in {svc.name}/{env}")
            before = snapshot(check)
            apply_changes(check, changes)
            audit.record(session, actor, "check.update", service=svc.name, target=f"{env}/{check.name}",
                         before=before, after=snapshot(check))
            info = CheckInfo.of(check, svc.name, env)
        self.generation += 1
        return info

    def remove(self, actor: Actor, service: str, env: str, name: str) -> None:
        """Remove an extra check with its results; the ``web`` check can only be disabled."""
        with self.store.session() as session:
            svc, environment = self._target(session, actor, service, env)
            if name == WEB:
                raise Invalid(f"the {WEB!r} check cannot be removed: podium checks set --disable stops it")
            check = self._find(session, environment.id, name)
            if check is None:
                raise NotFound(f"check {name[:60]!r} not found in {svc.name}/{env}")
            audit.record(session, actor, "check.remove", service=svc.name, target=f"{env}/{name}",
                         before=snapshot(check))
            session.delete(check)
        self.generation += 1

    @staticmethod
    def _find(session: Session, environment_id: int, name: str) -> Check | None:
        # Text that is not a name names no check: do not hand it to the store (NUL and PostgreSQL).
        if not is_name(name):
            return None
        return session.scalar(select(Check).where(Check.environment_id == environment_id, Check.name == name))

    def _target(self, session: Session, actor: Actor, service: str, env: str) -> tuple[Service, Environment]:
        svc = get_service(session, service)
        authorize(session, actor, svc, Right.CONFIG)
        return svc, get_environment(session, svc, env)

    def _new_web_check(self, session: Session, environment_id: int, path: str) -> Check:
        check = Check(
            environment_id=environment_id, name=WEB, kind=CheckKind.HTTP, path=path, path_pinned=False,
            interval=self.settings.check_interval, timeout=self.settings.check_timeout,
            down_after=self.settings.check_down_after, up_after=self.settings.check_up_after,
            enabled=True, state=CheckState.UNKNOWN, consecutive_ok=0, consecutive_fail=0,
        )
        session.add(check)
        session.flush()
        return check

    # For the checker --------------------------------------------------------------------

    def ensure_web_checks(self) -> bool:
        """Give each environment whose live release runs web processes a ``web`` check, and fit
        an unpinned check's path to the live release's app.json. Only new releases are read.

        Returns whether any environment's live release changed since the last call.
        """
        with self.store.session() as session:
            live: dict[int, int] = {env_id: release_id for env_id, release_id in session.execute(
                select(DeployState.environment_id, DeployState.live_release_id)
                .where(DeployState.live_release_id.is_not(None))
            ).all() if release_id is not None}
            if live == self._seen:
                return False
            changed = {env: release for env, release in live.items() if self._seen.get(env) != release}
            rows = session.execute(
                select(Release.environment_id, Release.formation, Artifact.app_json)
                .join(Artifact, Artifact.id == Release.artifact_id)
                .where(Release.id.in_(list(changed.values())))
            ).all()
            checks = {c.environment_id: c for c in session.scalars(
                select(Check).where(Check.name == WEB, Check.environment_id.in_(list(changed))))}
            for env_id, formation, app_json in rows:
                if formation.get(WEB, 0) <= 0:
                    continue
                path = web_path(app_json)
                check = checks.get(env_id)
                if check is None:
                    self._new_web_check(session, env_id, path)
                elif not check.path_pinned and check.path != path:
                    check.path = path
        self._seen = live  # only once stored: a failed transaction is tried again next time
        return True

    def targets(self) -> Targets:
        """Every enabled check to probe now, with the counters it last stored.

        HTTP checks go through the router, so they need a live release with web processes;
        TCP checks are probed whatever is deployed. Columns, not ORM objects: the checker asks
        every few seconds, and loading a thousand objects would hold up its probes.
        """
        with self.store.session() as session:
            rows = session.execute(
                select(
                    Check.id, Check.name, Check.kind, Check.path, Check.host, Check.port, Check.interval,
                    Check.timeout, Check.down_after, Check.up_after, Check.expect_status, Check.body_contains,
                    Check.json_field, Check.state, Check.consecutive_ok, Check.consecutive_fail,
                    Environment.name.label("env"), Service.name.label("service"), Release.formation,
                )
                .join(Environment, Environment.id == Check.environment_id)
                .join(Service, Service.id == Environment.service_id)
                .outerjoin(DeployState, DeployState.environment_id == Check.environment_id)
                .outerjoin(Release, Release.id == DeployState.live_release_id)
                .where(Check.enabled.is_(True))
                .order_by(Check.id)
            ).all()
        found: Targets = []
        for row in rows:
            if row.kind != CheckKind.TCP and (row.formation or {}).get(WEB, 0) <= 0:
                continue
            found.append((self._target_of(row), Counters(CheckState(row.state), row.consecutive_ok,
                                                         row.consecutive_fail)))
        return found

    def _target_of(self, row: Any) -> ProbeTarget:
        common: dict[str, Any] = {
            "check_id": row.id, "service": row.service, "env": row.env, "name": row.name, "kind": row.kind,
            "interval": row.interval, "timeout": row.timeout, "down_after": row.down_after, "up_after": row.up_after,
        }
        if row.kind == CheckKind.TCP:
            return ProbeTarget(**common, host=row.host, port=row.port)
        return ProbeTarget(
            **common, url=f"{self.router_url}{row.path}",
            host_header=hostnames(row.service, row.env, self.settings.base_domain)[0],
            path=row.path, expect_status=row.expect_status, body_contains=row.body_contains,
            json_field=row.json_field,
        )
