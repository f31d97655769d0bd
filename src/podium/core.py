"""The Podium object: every service of the platform, built from one Settings."""

from __future__ import annotations

import os

from podium.addons.care import Caretaker
from podium.addons.service import AddonService
from podium.billing.service import BillingService
from podium.catalog.auth import Actor
from podium.catalog.service import CatalogService, authorize, get_service
from podium.cluster.loops import follower_loops, leader_loops
from podium.cluster.service import Cluster
from podium.config import Settings
from podium.deploy.models import Release
from podium.deploy.recovery import recover
from podium.deploy.service import DeployService
from podium.deploy.watch import Watcher
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
from podium.runtime.node import LocalNode
from podium.sdk.bundle import install_bundle
from podium.store.db import Store


class Podium:
    """The core: the store and each capability's service, wired from settings.

    Transports (API, CLI, web) receive this object; nothing reaches for globals.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.store_url)
        self.cluster = Cluster(settings, self.store)  # this server among those sharing the store
        self.catalog = CatalogService(self.store)
        self.node = LocalNode(settings.data_dir.absolute() / "node", settings.router_port)
        self.deploys = DeployService(settings, self.store, self.node)
        self.app_tokens = AppTokenService(settings, self.store)
        self.deploys.app_token = self.app_tokens.token_for  # PODIUM_TOKEN of every release
        self.oncall = OnCallService(self.store)
        self.pager = Pager(settings, self.store)  # before the incident service, which calls its hooks
        self.guardrails = Guardrails(settings, self.store, self.pager)  # stops experiments that hurt
        self.events = EventService(self.store)  # what apps send: exposures and metric values
        self.results = ResultsService(self.store)
        self.metrics = MetricsService(self.store, rollback_window=settings.watch_window)
        self.watcher: Watcher | None = None
        self.checks = CheckService(self.store, settings)
        self.maintenance = MaintenanceService(self.store)
        self.incidents = IncidentService(self.store, settings, pager=getattr(self, "pager", None))
        self.checker: Checker | None = None
        self.billing = BillingService(settings, self.store)
        self.addons = AddonService(settings, self.store, self.deploys, self.incidents)
        self.addon_care = Caretaker(self.addons)
        self.experiments = ExperimentService(settings, self.store)

    def start(self) -> None:
        """Prepare the data dir and store, and make sure the admin token exists."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store.migrate()
        self.deploys.sdk_path = install_bundle(self.settings.data_dir.absolute() / "sdk")
        self.billing.start()
        token = self.catalog.bootstrap_admin()
        if token is not None:
            write_secret(self.settings.admin_token_path, token)

    def start_runtime(self) -> list[str]:
        """Join the store's servers, settle rollouts a previous run left unfinished, and run the
        background loops while this server leads (podium.cluster.loops)."""
        self.cluster.join(self.deploys)  # on SQLite, refused when another server holds the store
        # Alone on its store, a server settles everything at start; with others, only the
        # leader settles, and only the rollouts of servers that are gone (podium.cluster.settle).
        self.deploys.ensure_node()
        recovered = [] if self.cluster.shared else recover(self.deploys)
        self.watcher = Watcher(self.deploys, window=self.settings.watch_window)  # this server's rollouts
        self.deploys.watch = self.watcher
        self.cluster.run(leader_loops(self), follower_loops(self))
        return recovered

    def delete_service(self, actor: Actor, name: str) -> None:
        """Delete a service: its processes and routes go first, then its catalog entry."""
        with self.store.session() as session:
            authorize(session, actor, get_service(session, name))
        self.addons.teardown_service(actor, name)  # a final backup of each database, then drop it
        self.deploys.teardown(name)
        self.catalog.delete_service(actor, name)

    def rotate_app_token(self, actor: Actor, service: str, env: str) -> tuple[AppTokenInfo, Release | None]:
        """Revoke the environment's app token, make a new one, and roll it out in a new release
        (none when nothing is live: the next deploy carries it)."""
        token = self.app_tokens.rotate(actor, service, env)
        return token, self.deploys.redeploy(actor, service, env, "rotate PODIUM_TOKEN")

    def close(self) -> None:
        self.guardrails.close()
        self.addon_care.close()
        if self.checker is not None:
            self.checker.close()
        if self.watcher is not None:
            self.watcher.close()
        self.deploys.close()
        self.cluster.close()  # after this server's rollouts ended: until then it must stay alive
        self.pager.close()
        self.billing.close()
        self.store.dispose()


def write_secret(path: os.PathLike[str], text: str) -> None:
    """Write a secret to a file only its owner can read (mode 0600), replacing it atomically."""
    tmp = f"{os.fspath(path)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode on open: set it again
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.replace(tmp, path)
