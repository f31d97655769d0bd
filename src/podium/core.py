"""The Podium object: every service of the platform, built from one Settings."""

from __future__ import annotations

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
from podium.config import Settings
from podium.deploy.models import Release
from podium.deploy.recovery import recover
from podium.deploy.service import DeployService
from podium.deploy.watch import Watcher
from podium.errors import Conflict
from podium.experiments.events import EventService
from podium.experiments.guardrails import Guardrails
from podium.experiments.results import ResultsService
from podium.experiments.service import ExperimentService
from podium.experiments.tokens import AppTokenInfo, AppTokenService
from podium.health.checker import Checker
from podium.health.checks import CheckService
from podium.health.incidents import IncidentService
from podium.health.maintenance import MaintenanceService
from podium.health.oncall import OnCallService
from podium.health.paging import Pager
from podium.metrics.service import MetricsService
from podium.osutil import write_private
from podium.runtime.local import LocalRuntime
from podium.sdk.bundle import install_bundle
from podium.store.db import Store


class Podium:
    """The core: the store and each capability's service, wired from settings.

    Transports (API, CLI, web) receive this object; nothing reaches for globals.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.store_url)
        self.catalog = CatalogService(self.store)
        data_dir = settings.data_dir.absolute()
        self.runtime = LocalRuntime(
            data_dir / "node", settings.router_port, deploy_root=data_dir / "deploy", venv_cache=data_dir / "venvs",
            limits=SlugLimits.from_settings(settings), log_max_bytes=settings.log_max_bytes,
        )
        self.app_tokens = AppTokenService(settings, self.store)
        self.watcher = Watcher(settings, self.store, self.runtime)  # watches once start_runtime runs it
        self.deploys = DeployService(
            settings, self.store, self.runtime, app_token=self.app_tokens.token_for,
            sdk_path=install_bundle(data_dir / "sdk"), watch=self.watcher,
        )
        self.oncall = OnCallService(self.store)
        self.pager = Pager(settings, self.store)  # before the incident service, which calls its hooks
        self.guardrails = Guardrails(settings, self.store, self.pager)  # stops experiments that hurt
        self.events = EventService(self.store)  # what apps send: exposures and metric values
        self.results = ResultsService(self.store)
        self.metrics = MetricsService(self.store, rollback_window=settings.watch_window)
        self.checks = CheckService(settings, self.store)
        self.maintenance = MaintenanceService(self.store)
        self.incidents = IncidentService(settings, self.store, pager=self.pager)
        self.checker = Checker(settings, self.store, self.checks, self.incidents)
        self.billing = BillingService(settings, self.store)
        self.addons = AddonService(settings, self.store, self.deploys, self.incidents)
        self.addon_care = Caretaker(self.addons)
        self.experiments = ExperimentService(settings, self.store)

    def start(self) -> None:
        """Prepare the data dir and store, and make sure the admin token exists."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store.migrate()
        self.billing.start()
        token = self.catalog.bootstrap_admin()
        if token is not None:
            write_private(self.settings.admin_token_path, token + "\n")

    def start_runtime(self) -> list[str]:
        """Start the node, settle rollouts a previous run left unfinished, and watch releases."""
        recovered = recover(self.deploys)
        self.watcher.run(self.deploys)
        self.pager.run()
        self.checker.start()
        self.billing.run()
        self.guardrails.start()
        self.addon_care.start()  # after recovery, which stops every process group but the live releases'
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
        self.guardrails.close()
        self.addon_care.close()
        self.checker.close()
        self.watcher.close()
        self.deploys.close()
        self.runtime.close()
        self.pager.close()
        self.billing.close()
        self.store.dispose()

