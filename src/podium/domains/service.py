"""The verbs of custom domains: add one to a service environment (with an uploaded
certificate, or one to be issued), list them, remove one, and route them.

A domain belongs to one service environment; adding or removing one takes the same right
as changing the service's config (its owning team, a config grant, or the platform team)
and is audited. The router learns an environment's domains through the runtime
(``Runtime.set_domains``) each time they change; the certificate loop
(``podium.domains.renewal``) issues, renews and retries certificates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Right
from podium.catalog.service import authorize, get_environment, get_service
from podium.domains.certs import CertificatePaths, check_pair
from podium.domains.models import Domain, TlsStatus
from podium.errors import Conflict, Invalid, NotFound
from podium.runtime.interface import CustomDomain, Runtime
from podium.runtime.naming import is_hostname, under_base_domain
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)

SERVED = (TlsStatus.ISSUED, TlsStatus.UPLOADED)  # a certificate whose files the router serves


@dataclass(frozen=True)
class DomainInfo:
    """A custom domain as the API shows it."""

    name: str
    service: str
    env: str
    tls: str  # pending | issued | uploaded | failed
    error: str  # why the last issuance failed; empty when it did not
    expires_at: datetime | None
    next_attempt_at: datetime | None
    created_by: str
    created_at: datetime


def check_domain_name(name: str, base_domain: str) -> str:
    """``name`` lowercased, without a final dot, when it can be a team's domain; ``Invalid`` otherwise."""
    cleaned = name.strip().lower().removesuffix(".")
    shown = cleaned if len(cleaned) <= 80 else f"{cleaned[:80]}…"
    if cleaned.startswith("*."):
        raise Invalid(f"{shown!r}: wildcard domains are not served; add each name")
    if under_base_domain(cleaned, base_domain):
        raise Invalid(f"{shown!r} is under the base domain {base_domain!r}, whose names are Podium's own "
                      f"(<service>.<env>.{base_domain})")
    if not is_hostname(cleaned) or "." not in cleaned:
        raise Invalid(f"{shown!r} is not a domain name: dot-separated labels of letters, digits and '-'")
    if cleaned.rpartition(".")[2].isdigit():
        raise Invalid(f"{shown!r} is an IP address; a custom domain is a name")
    return cleaned


class DomainService:
    """Custom domains in the store, their files under ``tls_dir``, and the router's view of them."""

    def __init__(self, store: Store, runtime: Runtime, *, base_domain: str, tls_dir: Path) -> None:
        self.store = store
        self.runtime = runtime
        self.base_domain = base_domain
        self.tls_dir = tls_dir
        self.on_change: Callable[[], None] = lambda: None  # the certificate loop's wake-up, once it runs
        self._route_lock = threading.Lock()  # one environment's domains reach the router in store order

    def paths(self, name: str) -> CertificatePaths:
        return CertificatePaths(self.tls_dir / name)

    def add(
        self, actor: Actor, service: str, env: str, name: str,
        certificate: bytes | None = None, key: bytes | None = None,
    ) -> DomainInfo:
        """Route ``name`` to the environment: served over HTTPS with ``certificate`` and ``key``
        when given (checked first), otherwise over HTTP until the loop has one issued."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)  # first: a foreign team learns nothing of the rules
            environment = get_environment(session, svc, env)
            name = check_domain_name(name, self.base_domain)
            if (certificate is None) != (key is None):
                raise Invalid("an uploaded certificate needs its key, and a key its certificate")
            taken = session.scalar(select(Domain).where(Domain.name == name))
            if taken is not None:
                raise Conflict(self._taken_message(session, actor, taken))
            expires = check_pair(name, certificate, key, utcnow()) if certificate and key else None
            row = Domain(
                name=name, environment_id=environment.id, created_by=who_name(actor), error="",
                tls=TlsStatus.UPLOADED if expires else TlsStatus.PENDING, expires_at=expires,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError:  # added by a concurrent request since the check above
                raise Conflict(f"{name} is taken: another service has it") from None
            if certificate and key:
                self.paths(name).write(certificate, key)
            audit.record(session, actor, "domain.add", service=service, target=env,
                         after={"name": name, "tls": row.tls, "expires_at": expires.isoformat() if expires else None})
            try:  # inside the transaction: a runtime that refuses custom domains leaves no row behind
                self._route(session, environment)
            except BaseException:
                self.paths(name).remove()
                raise
            info = info_of(row, service, env)
        self.on_change()
        return info

    def list_domains(self, service: str, env: str) -> list[DomainInfo]:
        """The environment's custom domains, by name."""
        with self.store.session() as session:
            environment = get_environment(session, get_service(session, service), env)
            rows = session.scalars(select(Domain).where(Domain.environment_id == environment.id).order_by(Domain.name))
            return [info_of(row, service, env) for row in rows]

    def remove(self, actor: Actor, service: str, env: str, name: str) -> DomainInfo:
        """Stop routing ``name`` to the environment and delete its certificate."""
        cleaned = name.strip().lower().removesuffix(".")
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            environment = get_environment(session, svc, env)
            row = session.scalar(
                select(Domain).where(Domain.name == cleaned, Domain.environment_id == environment.id)
            )
            if row is None:
                raise NotFound(f"{service}/{env} has no domain {cleaned[:80]!r}")
            info = info_of(row, service, env)
            session.delete(row)
            session.flush()
            audit.record(session, actor, "domain.remove", service=service, target=env,
                         before={"name": info.name, "tls": info.tls})
            self._route(session, environment)
        self.paths(info.name).remove()
        return info

    def teardown_service(self, service: str) -> None:
        """Forget every domain of a service being deleted: rows, routes and certificates."""
        with self.store.session() as session:
            svc = get_service(session, service)
            names = []
            for environment in svc.environments:
                rows = session.scalars(select(Domain).where(Domain.environment_id == environment.id))
                for row in rows:
                    names.append(row.name)
                    session.delete(row)
                session.flush()
                self._route(session, environment)
        for name in names:
            self.paths(name).remove()

    def sync_routes(self) -> None:
        """Tell the router every environment's domains again (after a restart, or a change a
        failed reload did not apply); nothing changes where they are already in place."""
        with self.store.session() as session:
            environments = session.scalars(
                select(Environment).where(Environment.id.in_(select(Domain.environment_id).distinct()))
            ).all()
            for environment in environments:
                try:
                    self._route(session, environment)
                except Exception:
                    log.exception("routing the domains of %s/%s failed", environment.service.name, environment.name)

    def route_environment(self, session: Session, environment_id: int) -> None:
        """Tell the router the environment's domains as the store has them now."""
        environment = session.get(Environment, environment_id)
        if environment is not None:
            self._route(session, environment)

    def _route(self, session: Session, environment: Environment) -> None:
        rows = session.scalars(select(Domain).where(Domain.environment_id == environment.id).order_by(Domain.name))
        domains = []
        for row in rows:
            paths = self.paths(row.name)
            served = row.tls in SERVED
            domains.append(CustomDomain(row.name, paths.chain if served else None, paths.key if served else None))
        with self._route_lock:
            self.runtime.set_domains(environment.service.name, environment.name, domains)

    @staticmethod
    def _taken_message(session: Session, actor: Actor, taken: Domain) -> str:
        """Who has the name, as far as ``actor`` may know: its own services are named."""
        environment = session.get(Environment, taken.environment_id)
        if environment is not None and actor.acts_for(environment.service.owner_id):
            return f"{taken.name} is already a domain of {environment.service.name}/{environment.name}"
        return f"{taken.name} is taken: another team's service has it"


def who_name(actor: Actor) -> str:
    """The actor as ``created_by`` records it: the person, or the team."""
    return (actor.user or actor.team or "")[:40]


def info_of(row: Domain, service: str, env: str) -> DomainInfo:
    return DomainInfo(
        name=row.name, service=service, env=env, tls=row.tls, error=row.error, expires_at=row.expires_at,
        next_attempt_at=row.next_attempt_at, created_by=row.created_by, created_at=row.created_at,
    )
