"""The swarm's router: nginx as swarm services, inside overlay networks, reloaded gracefully.

Two layers, because a swarm task cannot join a network without being replaced (the engine
refuses ``network connect`` for a task; updating the service's networks restarts it):

- the *edge* (``podium-router``): one nginx published in host mode on the router port, in
  the ``podium-edge`` network only; it sends each hostname to its environment's gateway
  (``tasks.<gateway>``) and is reloaded only when an environment appears or goes;
- a *gateway* per service environment (``podium-gw-<service>-<env>``): an nginx in
  ``podium-edge`` and in the environment's own network, the only thing that is in both;
  it sends everything to ``tasks.<release web service>`` and is where a release switch
  happens. Apps of other environments cannot reach it, nor it them.

Upstreams are task addresses read from the engine's API, not names resolved through its
DNS: under load the engine's embedded DNS answered late enough for nginx's resolver to time
out, failing requests. ``routes.Routes`` rewrites them when the swarm moves or restarts a
task (within a second); meanwhile a request that meets a task going away is retried on
another one.

Configuration reaches a container through the API (``put_archive`` into a volume that
survives a restart of the task), then ``nginx -s reload`` through the API's exec. The
reload is graceful: old workers finish what they hold while new ones take new
connections. Both services are pinned to the manager, whose engine is the one Podium
talks to (exec and archives are answered by the engine that runs the container).
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docker import DockerClient
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.types import EndpointSpec, Mount, RestartPolicy

from podium.runtime import RuntimeFailure

EDGE_NETWORK = "podium-edge"
EDGE_SERVICE = "podium-router"
CONF_DIR = "/etc/podium-router"
APP_PORT = 5000  # what every web process listens on inside its container ($PORT)
# Old workers get this long to finish their requests after a reload.
WORKER_SHUTDOWN_TIMEOUT = 10
RELOAD_TIMEOUT = 20.0
READY_TIMEOUT = 120.0
UPSTREAM_MARK = "# podium-upstream: "

MAIN_CONF = f"""worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
worker_shutdown_timeout {WORKER_SHUTDOWN_TIMEOUT}s;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi; uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 2s;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries 0;
    include {CONF_DIR}/sites/*.conf;
}}
"""
# The edge answers hostnames it does not route with 404; a gateway's one site is its default.
NO_SUCH_APP = 'server { listen 80 default_server; location / { return 404 "no such app\\n"; } }\n'
# The main configuration is written by the container itself at each start (it never changes);
# the sites come from the volume, written by Podium.
START = (
    f'mkdir -p {CONF_DIR}/sites && printf "%s" "$PODIUM_NGINX_CONF" > {CONF_DIR}/nginx.conf '
    f'&& {{ [ -z "$PODIUM_DEFAULT_SITE" ] || printf "%s" "$PODIUM_DEFAULT_SITE" > {CONF_DIR}/sites/_default.conf; }} '
    f'&& exec nginx -c {CONF_DIR}/nginx.conf -g "daemon off;"'
)


RELOAD_SCRIPT = (
    'for p in /proc/[0-9]*; do t=$(tr "\\0" " " < "$p/cmdline" 2>/dev/null); case "$t" in '
    '*"shutting down"*) ;; "nginx: worker process"*) echo "W ${p#/proc/}" ;; esac; done; '
    f"nginx -t -q -c {CONF_DIR}/nginx.conf 2>&1 || exit 3; nginx -s reload -c {CONF_DIR}/nginx.conf 2>&1"
)


class RouterError(RuntimeFailure):
    """The router refused a configuration or could not be reached; the route is unchanged."""


def gateway_name(service: str, env: str) -> str:
    return f"podium-gw-{service}-{env}"


def edge_site(route: str, hostnames: list[str], gateway_address: str) -> str:
    """The edge's site for one environment: its hostnames to its gateway's task."""
    return (
        f"upstream gw_{route} {{ server {gateway_address}:80 max_fails=0; }}\n"
        f"server {{\n    listen 80;\n    server_name {' '.join(hostnames)};\n"
        f"    location / {{ proxy_pass http://gw_{route}; }}\n}}\n"
    )


def gateway_site(web_service: str | None, addresses: tuple[str, ...] = ()) -> str:
    """A gateway's one site: everything to the given tasks of the live release's web service
    (503 without one). The first line names the route, as ``route()`` reads it back."""
    if web_service is None or not addresses:
        return (
            f"{UPSTREAM_MARK}\n"
            'server { listen 80 default_server; location / { return 503 "no release is live\\n"; } }\n'
        )
    servers = "".join(f"    server {address}:{APP_PORT} max_fails=1 fail_timeout=2s;\n" for address in addresses)
    return (
        f"{UPSTREAM_MARK}tasks.{web_service}:{APP_PORT}\n"
        f"upstream app {{\n{servers}}}\n"
        "server {\n    listen 80 default_server;\n    location / { proxy_pass http://app; }\n}\n"
    )


def web_service_of(site: str | None) -> str | None:
    """The web service a gateway's site routes to (its first line), None without one."""
    first = (site or "").split("\n", 1)[0]
    upstream = first.removeprefix(UPSTREAM_MARK).strip() if first.startswith(UPSTREAM_MARK) else ""
    return upstream.removeprefix("tasks.").rpartition(":")[0] or None


@dataclass
class NginxService:
    """One nginx swarm service pinned to the manager, its sites in a volume of its own."""

    client: DockerClient
    name: str
    networks: list[str]
    image: str
    publish_port: int | None = None
    labels: dict[str, str] | None = None
    default_site: str | None = None  # written before nginx starts, when the volume has no sites yet
    _cached: Container | None = field(default=None, init=False, repr=False)

    def ensure(self) -> None:
        """Create the service unless it exists; return once its container answers."""
        try:
            existing = self.client.services.get(self.name)
            self._publish_on(existing)
        except NotFound:
            endpoint = EndpointSpec(mode="dnsrr", ports=(
                [{"Protocol": "tcp", "PublishedPort": self.publish_port, "TargetPort": 80, "PublishMode": "host"}]
                if self.publish_port else None
            ))
            try:
                self.client.services.create(
                    self.image, command=["/bin/sh", "-c", START], name=self.name,
                    env=[f"PODIUM_NGINX_CONF={MAIN_CONF}", f"PODIUM_DEFAULT_SITE={self.default_site or ''}"],
                    networks=self.networks,
                    endpoint_spec=endpoint, constraints=["node.role==manager"],
                    mounts=[Mount(CONF_DIR, f"{self.name}-conf", type="volume")],
                    restart_policy=RestartPolicy(condition="any", delay=500_000_000),
                    labels={"podium.role": "router", **(self.labels or {})},
                    stop_grace_period=(WORKER_SHUTDOWN_TIMEOUT + 2) * 1_000_000_000,
                )
            except APIError as exc:
                if exc.status_code != 409:  # created meanwhile by another thread
                    raise RouterError(f"router {self.name}: {exc.explanation}") from exc
        self.container()

    def _publish_on(self, existing: Any) -> None:
        """A router published on another port (PODIUM_ROUTER_PORT changed) moves to this one."""
        if not self.publish_port:
            return
        ports = existing.attrs.get("Endpoint", {}).get("Ports") or []
        if [port.get("PublishedPort") for port in ports] != [self.publish_port]:
            existing.update(endpoint_spec=EndpointSpec(mode="dnsrr", ports=[
                {"Protocol": "tcp", "PublishedPort": self.publish_port, "TargetPort": 80, "PublishMode": "host"},
            ]))
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if any(t["Status"]["State"] == "running" and t["DesiredState"] == "running"
                       and t["Spec"].get("ContainerSpec") for t in self.client.api.tasks(
                           filters={"service": self.name, "desired-state": "running"})):
                    break
                time.sleep(0.2)

    def remove(self) -> None:
        try:
            self.client.services.get(self.name).remove()
        except NotFound:
            return

    def container(self, timeout: float = READY_TIMEOUT) -> Container:
        """The running container of the service (on the manager), waiting for it to run nginx."""
        cached = self._cached
        if cached is not None:
            try:
                cached.reload()
                if cached.status == "running":
                    return cached
            except NotFound:
                pass
            self._cached = None
        deadline = time.monotonic() + timeout
        while True:
            mine = {"label": f"com.docker.swarm.service.name={self.name}"}
            for container in self.client.containers.list(filters=mine):
                if container.status == "running" and self._workers(container):
                    self._cached = container
                    return container
            if time.monotonic() > deadline:
                raise RouterError(f"router {self.name}: no running nginx after {timeout:.0f}s")
            time.sleep(0.2)

    def read_site(self, site: str) -> str | None:
        try:
            stream, _ = self.container().get_archive(f"{CONF_DIR}/sites/{site}.conf")
        except NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            return handle.read().decode() if handle else None

    def apply(self, changes: dict[str, str | None]) -> Draining:
        """Write (text) or remove (None) sites, check the result, and reload gracefully.

        A configuration nginx refuses is undone before anything reloads, so the previous
        routes stay in effect. Returns once new connections get the new configuration."""
        container = self.container()
        before = {site: self.read_site(site) for site in changes}
        self._write(container, changes)
        # One exec: the workers taking connections now, then check, then reload.
        result = container.exec_run(["/bin/sh", "-c", RELOAD_SCRIPT])
        output = result.output.decode(errors="replace")
        old = {int(line[2:]) for line in output.splitlines() if line.startswith("W ") and line[2:].isdigit()}
        message = "\n".join(line for line in output.splitlines() if not line.startswith("W ")).strip()
        if result.exit_code == 3:
            self._write(container, before)
            raise RouterError(f"router {self.name} refused the configuration: {message}")
        if result.exit_code != 0:
            raise RouterError(f"router {self.name}: reload failed: {message}")
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while True:
            workers = self._workers(container)
            if workers and not workers & old:
                return Draining(lambda: self._draining(container), old)
            if time.monotonic() > deadline:
                raise RouterError(f"router {self.name}: new workers did not start within {RELOAD_TIMEOUT:.0f}s")
            time.sleep(0.02)

    def _write(self, container: Container, changes: dict[str, str | None]) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for site, text in changes.items():
                data = (text or "").encode()
                info = tarfile.TarInfo(f"{site}.conf")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
                tar.addfile(info, io.BytesIO(data))
        removed = [f"{CONF_DIR}/sites/{site}.conf" for site, text in changes.items() if text is None]
        if not container.put_archive(f"{CONF_DIR}/sites", buffer.getvalue()):
            raise RouterError(f"router {self.name}: could not write its configuration")
        if removed:
            container.exec_run(["rm", "-f", *removed])

    @staticmethod
    def _processes(container: Container) -> list[tuple[int, str]]:
        script = 'for p in /proc/[0-9]*; do printf "%s %s\\n" "${p#/proc/}" "$(tr "\\0" " " < $p/cmdline)"; done'
        result = container.exec_run(["/bin/sh", "-c", script])
        found = []
        for line in result.output.decode(errors="replace").splitlines():
            pid, _, title = line.partition(" ")
            if pid.isdigit():
                found.append((int(pid), title.strip()))
        return found

    def _workers(self, container: Container) -> set[int]:
        """Pids of the workers taking new connections (not those finishing old ones)."""
        return {pid for pid, title in self._processes(container) if title == "nginx: worker process"}

    def _draining(self, container: Container) -> bool:
        return any(re.search(r"worker process is shutting down", title) for _, title in self._processes(container))


class Draining:
    """A reload whose old workers may still be finishing requests."""

    def __init__(self, still_draining: Callable[[], bool], old_workers: set[int]) -> None:
        self._still_draining = still_draining
        self.old_workers = old_workers

    def wait_drained(self) -> None:
        deadline = time.monotonic() + WORKER_SHUTDOWN_TIMEOUT + 5
        while self._still_draining() and time.monotonic() < deadline:
            time.sleep(0.1)
