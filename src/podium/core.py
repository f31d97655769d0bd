"""The Podium object: every service of the platform, built from one Settings."""

from __future__ import annotations

import os

from podium.addons.care import Caretaker
from podium.addons.service import AddonService
from podium.billing.service import BillingService
from podium.catalog.auth import Actor
from podium.catalog.service import CatalogService, authorize, get_service
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
from podium.secrets.service import SecretsService
from podium.store.crypto import Keyring
from podium.store.db import Store


class Podium:
    """The core: the store and each capability's service, wired from settings.

    Transports (API, CLI, web) receive this object; nothing reaches for globals.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.store_url, Keyring.from_settings(settings.secrets_key, settings.data_dir))
        self.catalog = CatalogService(self.store)
        self.secrets = SecretsService(self.store)  # rotation of the key sealing config vars
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
        """Start the node, settle rollouts a previous run left unfinished, and watch releases."""
        recovered = recover(self.deploys)
        self.watcher = Watcher(self.deploys, window=self.settings.watch_window)
        self.deploys.watch = self.watcher
        self.watcher.run()
        self.pager.run()
        self.checker = Checker(self.store, self.settings, self.checks, self.incidents)
        self.checker.start()
        self.billing.run()
        self.guardrails.start()
        self.addon_care.start()  # after recovery, which stops every process group but the live releases'
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
