"""Where each service environment is routed, kept true to what the swarm runs.

A switch writes the task addresses of the new release's web service into the
environment's gateway, and the gateway's own address into the edge. Then a thread looks
at the engine once a second (two API calls, however many environments) and rewrites a
gateway whose release's tasks moved, were restarted or were added (a drained node, a
crash), and the edge when a gateway's task changed. Between a task going away and the
next look, nginx retries requests on the other tasks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from docker import DockerClient
from docker.errors import DockerException

from podium.runtime import RuntimeFailure
from podium.runtime.naming import hostnames, route_name
from podium.runtime.swarm.router import EDGE_NETWORK, Draining, NginxService, RouterError, edge_site, gateway_site
from podium.runtime.swarm.services import network_name

SYNC_SECONDS = 1.0
log = logging.getLogger(__name__)

Env = tuple[str, str]  # (service, env)


def running_addresses(client: DockerClient) -> dict[str, dict[str, list[str]]]:
    """Service name → network name → addresses of its running tasks, sorted: one look."""
    names = {svc["ID"]: svc["Spec"]["Name"] for svc in client.api.services()}
    found: dict[str, dict[str, list[str]]] = {}
    for task in client.api.tasks(filters={"desired-state": "running"}):
        if task.get("Status", {}).get("State") != "running" or task.get("ServiceID") not in names:
            continue
        networks = found.setdefault(names[task["ServiceID"]], {})
        for attachment in task.get("NetworksAttachments") or []:
            network = attachment.get("Network", {}).get("Spec", {}).get("Name", "")
            for address in attachment.get("Addresses") or []:
                networks.setdefault(network, []).append(address.split("/")[0])
    for networks in found.values():
        for addresses in networks.values():
            addresses.sort()
    return found


class Routes:
    """The route of every environment this runtime switched, and the thread keeping it true."""

    def __init__(
        self, client: DockerClient, edge: NginxService, gateway_of: Callable[[str, str], NginxService],
        base_domain: str,
    ) -> None:
        self.client = client
        self.base_domain = base_domain
        self.edge = edge
        self.gateway_of = gateway_of
        self._lock = threading.RLock()
        self._targets: dict[Env, str | None] = {}  # the live release's web service, None: no route
        self._written: dict[Env, tuple[str, ...]] = {}  # app addresses in the gateway
        self._edge_written: dict[Env, str] = {}  # the gateway's address in the edge
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, service: str, env: str, web_service: str | None) -> Draining:
        """Route the environment to ``web_service``'s running tasks (None: answer 503)."""
        with self._lock:
            gateway = self.gateway_of(service, env)
            gateway.ensure()
            look = running_addresses(self.client)
            addresses: tuple[str, ...] = ()
            if web_service is not None:
                addresses = tuple(look.get(web_service, {}).get(network_name(service, env), []))
                if not addresses:
                    raise RouterError(f"no running task of {web_service} to route to")
            draining = gateway.apply({"app": gateway_site(web_service, addresses)})
            self._targets[(service, env)] = web_service
            self._written[(service, env)] = addresses
            self._sync_edge((service, env), running_addresses(self.client))
            return draining

    def forget(self, service: str) -> None:
        """Stop keeping the service's routes (it is being torn down)."""
        with self._lock:
            for key in [key for key in self._targets if key[0] == service]:
                self._targets.pop(key, None)
                self._written.pop(key, None)
                if self._edge_written.pop(key, None) is not None:
                    self.edge.apply({route_name(*key): None})

    def _sync_edge(self, key: Env, look: dict[str, dict[str, list[str]]]) -> None:
        gateway = self.gateway_of(*key)
        addresses = look.get(gateway.name, {}).get(EDGE_NETWORK, [])
        if addresses and self._edge_written.get(key) != addresses[0]:
            names = hostnames(*key, self.base_domain)
            self.edge.apply({route_name(*key): edge_site(route_name(*key), names, addresses[0])})
            self._edge_written[key] = addresses[0]

    def sync(self) -> None:
        """One look at the engine; rewrite what no longer matches it."""
        with self._lock:
            look = running_addresses(self.client)
            for key, web_service in list(self._targets.items()):
                if web_service is not None:
                    addresses = tuple(look.get(web_service, {}).get(network_name(*key), []))
                    if addresses and addresses != self._written.get(key):
                        self.gateway_of(*key).apply({"app": gateway_site(web_service, addresses)})
                        self._written[key] = addresses
                self._sync_edge(key, look)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="swarm-routes", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            try:
                self.sync()
            except (DockerException, RuntimeFailure) as exc:  # the next look tries again
                log.warning("swarm routes: %s", exc)
            except Exception:  # the thread must outlive anything one look meets
                log.exception("swarm routes")

