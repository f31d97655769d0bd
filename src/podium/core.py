"""The Podium object: every service of the platform, built from one Settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from podium.addons.care import Caretaker
from podium.addons.models import Addon, AddonState
from podium.addons.service import AddonService
from podium.archive import archive_service
from podium.artifacts.slug import SlugLimits
from podium.billing.service import BillingService
from podium.catalog.auth import Actor
from podium.catalog.models import Environment
from podium.catalog.service import CatalogService, authorize, get_service
from podium.cluster.loops import follower_loops, leader_loops
from podium.cluster.service import Cluster
from podium.config import Settings
from podium.deploy.crashes import CrashCounter
from podium.deploy.models import Release
from podium.deploy.recovery import recover
from podium.deploy.service import DeployService
from podium.deploy.watch import Watcher
from podium.domains.renewal import Backoff, CertificateKeeper
from podium.domains.service import DomainService
from podium.errors import Conflict
from podium.experiments.events import EventService
from podium.experiments.guardrails import Guardrails
from podium.experiments.results import ResultsService
from podium.experiments.service import ExperimentService
from podium.experiments.tokens import AppTokenInfo, AppTokenService
from podium.experiments.writer import EventWriter
from podium.health.checks import CheckService
from podium.health.incidents import IncidentService
from podium.health.maintenance import MaintenanceService
from podium.health.oncall import OnCallService
from podium.health.paging import Pager
from podium.metrics.service import MetricsService
from podium.osutil import write_private
from podium.people.oidc import OidcProvider
from podium.people.service import PeopleService
from podium.runtime.interface import Runtime
from podium.runtime.local import LocalRuntime
from podium.runtime.ports import free_port
from podium.runtime.sandbox import Sandbox
from podium.runtime.swarm.nodes import NodeService
from podium.runtime.swarm.runtime import SwarmRuntime
from podium.sdk.bundle import install_bundle
from podium.secrets.service import SecretsService
from podium.store.crypto import Keyring
from podium.store.db import Store
from podium.tls.acme import AcmeIssuer


class Podium:
    """The core: the store and each capability's service, wired from settings.

    Transports (API, CLI, web) receive this object; nothing reaches for globals.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.store_url, Keyring.from_settings(settings.secrets_key, settings.data_dir))
        self.catalog = CatalogService(self.store)
        self.secrets = SecretsService(self.store)  # rotation of the key sealing config vars
        self.people = PeopleService(self.store)
        self.oidc = OidcProvider(settings) if settings.oidc_issuer else None  # single sign-on, when set up
        data_dir = settings.data_dir.absolute()
        # PODIUM_RUNTIME: this machine, or a swarm (whose platform processes still run on this machine).
        swarm = settings.runtime == "swarm"
        local = LocalRuntime(
            data_dir / "node", free_port() if swarm else settings.router_port, deploy_root=data_dir / "deploy",
            venv_cache=data_dir / "venvs", limits=SlugLimits.from_settings(settings),
            log_max_bytes=settings.log_max_bytes, sandbox=Sandbox.from_settings(settings),
            base_domain=settings.base_domain, router_host=settings.router_host,
            router_tls_port=settings.router_tls_port, challenge_dir=settings.acme_challenge_dir,
        )
        self.runtime: Runtime = SwarmRuntime.from_settings(settings, platform=local) if swarm else local
        self.nodes = NodeService(self.store, self.runtime.client if isinstance(self.runtime, SwarmRuntime) else None)
        self.cluster = Cluster(settings, self.store, self.runtime)  # this server among those sharing the store
        self.app_tokens = AppTokenService(settings, self.store)
        self.watcher = Watcher(settings, self.store, self.runtime)  # this server's rollouts, once it runs
        self.crashes = CrashCounter(self.store, self.runtime)  # every live release's, on the leader
        self.billing = BillingService(settings, self.store)
        self.deploys = DeployService(
            settings, self.store, self.runtime, app_token=self.app_tokens.token_for,
            sdk_path=install_bundle(data_dir / "sdk"), watch=self.watcher, server=self.cluster, builds=self.billing,
        )
        self.oncall = OnCallService(self.store)
        self.pager = Pager(settings, self.store)  # before the incident service, which calls its hooks
        self.guardrails = Guardrails(settings, self.store, self.pager)  # stops experiments that hurt
        self.events = EventService(self.store, EventWriter(self.store))  # what apps send, written in groups
        self.results = ResultsService(self.store)
        self.metrics = MetricsService(self.store, rollback_window=settings.watch_window)
        self.checks = CheckService(settings, self.store)
        self.maintenance = MaintenanceService(self.store)
        self.incidents = IncidentService(settings, self.store, pager=self.pager)
        self.addons = AddonService(settings, self.store, self.deploys, self.incidents)
        self.addon_care = Caretaker(self.addons)
        self.experiments = ExperimentService(settings, self.store)
        self.domains = DomainService(
            self.store, self.runtime, base_domain=settings.base_domain, tls_dir=settings.tls_dir / "certs"
        )
        self.certificates = CertificateKeeper(  # on the leader: issues and renews the domains' certificates
            self.domains, AcmeIssuer.from_settings(settings), interval=settings.tls_interval,
            renew_before=timedelta(days=settings.tls_renew_before_days),
            backoff=Backoff(settings.tls_retry_initial, settings.tls_retry_max),
        )

    def start(self) -> None:
        """Prepare the data dir and store, and make sure the admin token exists."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store.migrate()
        self.billing.start()
        token = self.catalog.bootstrap_admin()
        if token is not None:
            write_private(self.settings.admin_token_path, token + "\n")

    def start_runtime(self) -> list[str]:
        """Join the store's servers, settle rollouts a previous run left unfinished, and run the
        background loops while this server leads (podium.cluster.loops)."""
        self.cluster.join()  # on SQLite, refused when another server holds the store
        # Alone on its store, a server settles everything at start; with others, only the
        # leader settles, and only the rollouts of servers that are gone (podium.cluster.settle).
        self.deploys.ensure_runtime()
        recovered = [] if self.cluster.shared else recover(self.deploys)
        self.watcher.run(self.deploys)  # each server watches the releases its own rollouts made live
        self.cluster.run(leader_loops(self), follower_loops(self))
        return recovered

    def delete_service(self, actor: Actor, name: str, *, with_addons: bool = False) -> Path:
        """Delete a service: its processes, routes, databases (only ``with_addons``) go first,
        then its catalog entry with its checks and schedules; its logs and audit trail are
        kept in a tarball under ``<data dir>/archive``, whose path this returns."""
        with self.store.session() as session:
            service = get_service(session, name)
            authorize(session, actor, service)
            env_ids = select(Environment.id).where(Environment.service_id == service.id)
            addons = sorted(session.scalars(
                select(Environment.name).join(Addon, Addon.environment_id == Environment.id)
                .where(Environment.service_id == service.id, Addon.state == AddonState.ACTIVE)
            ))
            release_ids = list(session.scalars(select(Release.id).where(Release.environment_id.in_(env_ids))))
        if addons and not with_addons:
            raise Conflict(
                f"{name} still has databases in {', '.join(addons)}: delete them first "
                "(podium addons destroy) or delete the service --with-addons (a final backup of each is kept)"
            )
        self.addons.teardown_service(actor, name)  # a final backup of each database, then drop it
        self.deploys.teardown(name)
        self.domains.teardown_service(name)
        self.catalog.delete_service(actor, name)
        self.deploys.progress.forget(release_ids)
        audit_trail = [
            {"at": e.at.isoformat(), "team": e.team, "token_id": e.token_id, "action": e.action,
             "target": e.target, "before": e.before, "after": e.after}
            for e in self.catalog.audit_log(Actor.system(), service=name, limit=100_000)
        ]
        data_dir = self.settings.data_dir.absolute()
        return archive_service(data_dir / "archive", name, data_dir / "deploy" / name, audit_trail)

    def rotate_app_token(self, actor: Actor, service: str, env: str) -> tuple[AppTokenInfo, Release | None]:
        """Revoke the environment's app token, make a new one, and roll it out in a new release
        (none when nothing is live: the next deploy carries it)."""
        token = self.app_tokens.rotate(actor, service, env)
        return token, self.deploys.redeploy(actor, service, env, "rotate PODIUM_TOKEN")

    def close(self) -> None:
        self.events.close()  # what was accepted is written before the store goes
        self.guardrails.close()
        self.addon_care.close()
        self.watcher.close()
        self.deploys.close()
        self.cluster.close()  # after this server's rollouts ended (until then it must stay alive); stops the loops
        self.runtime.close()  # after the loops: the settler and the crash counter use it
        self.pager.close()
        self.billing.close()
        self.store.dispose()

