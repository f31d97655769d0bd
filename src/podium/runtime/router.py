"""The node's router: Podium's own nginx, routing hostnames to process ports.

nginx runs with ``-p <run_dir>/ -c nginx.conf``; ``nginx.conf`` holds a default server
(404 for unknown hosts) and includes ``sites/*.conf``, one file per route with an
upstream of the route's ports. A route switch writes the site file atomically, checks
the whole configuration with ``nginx -t`` (restoring the previous file if nginx refuses
it) and reloads gracefully. ``switch_route`` returns as soon as nginx runs workers with the
new configuration, with a ``Switch`` whose ``wait_drained`` waits until every worker that
ran before the reload has exited; ``set_route`` does both, so once it returns no worker
routes to the old ports any more. ``check_route`` runs that ``nginx -t`` ahead of time, on
a scratch copy of the configuration with the route in it; a switch that writes exactly
the configuration a check passed skips its own ``-t``.

Every server block, the default one included, answers ACME HTTP-01 challenges
(``/.well-known/acme-challenge/<token>``) from the challenge directory, when the router has
one: a certificate issuer writes its tokens there (see docs/tls.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from podium.errors import Conflict, Invalid
from podium.osutil import alive, atomic_write, grant_search, may_search
from podium.runtime import RuntimeFailure
from podium.runtime.interface import CustomDomain
from podium.runtime.naming import is_hostname
from podium.runtime.nginx_workers import (
    NEW_WORKER_POLL,
    RELOAD_TIMEOUT,
    WORKER_SHUTDOWN_TIMEOUT,
    WORKERS,
    Switch,
    all_workers,
    children,
    kill,
    send_signal,
    wait_gone,
)
from podium.runtime.ports import wait_for_port
from podium.runtime.router_tls import dump_domains, listen_address, load_domains, servable, tls_servers
from podium.runtime.sandbox import router_user

ROUTE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
START_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
POLL_INTERVAL = 0.02
CLIENT_KEEPALIVE_TIMEOUT = 75  # seconds an idle client connection stays open (nginx's default)
ROUTE_HEADER = "# podium-route "
ROUTER_TEMP_ROOT = Path("/var/cache/podium-router")  # workers' temporary files, when Podium is root
NGINX_FALLBACK_PATH = "/usr/sbin:/usr/local/sbin"  # Debian installs nginx here, often off PATH
SITES_INCLUDE = "include sites/*.conf;"  # the main configuration's line that reads the routes
CHECKED_KEPT = 64  # digests of configurations a check passed, kept for the switches to come

ACCESS_LOG_FORMAT = (
    '{"time":"$time_iso8601","host":"$host","route":"$podium_route","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"request_time":$request_time,'
    '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_response_time":"$upstream_response_time","bytes_sent":$body_bytes_sent,'
    '"remote_addr":"$remote_addr","request_id":"$request_id"}'
)


@dataclass(frozen=True)
class _Route:
    hostnames: list[str]
    ports: list[int]


class Router:
    """The node's nginx, found (or started) through ``run_dir``, listening on ``host:port``."""

    def __init__(
        self, run_dir: Path, port: int, nginx: str = "nginx", *, host: str = "127.0.0.1", tls_port: int = 8443,
        challenge_dir: Path | None = None,
    ) -> None:
        self.run_dir = run_dir.absolute()
        # ACME HTTP-01 tokens, served to every host at /.well-known/acme-challenge/ (None: not served).
        self.challenge_dir = challenge_dir.absolute() if challenge_dir is not None else None
        self.port = port
        self.host = host
        self.tls_port = tls_port  # custom domains with a certificate (router_tls)
        self.nginx = nginx
        self.conf_path = self.run_dir / "nginx.conf"
        self.sites_dir = self.run_dir / "sites"
        self.domains_dir = self.run_dir / "domains"  # each route's custom domains, kept across its switches
        self.logs_dir = self.run_dir / "logs"
        self.pid_path = self.run_dir / "nginx.pid"
        # Workers of a root master run as podium-router, which cannot reach into Podium's data
        # dir: their temporary files go to a folder of their own outside it.
        self.worker_user = router_user()
        self.temp_dir = self.run_dir / "tmp"
        if self.worker_user is not None:
            digest = hashlib.sha256(str(self.run_dir).encode()).hexdigest()[:16]
            self.temp_dir = ROUTER_TEMP_ROOT / digest
        self.config_tests = 0  # how many times nginx tested a configuration (checks included)
        self._checked: set[str] = set()  # digests of whole configurations nginx passed

    def ensure_running(self) -> None:
        """Write the configuration, start nginx unless its master runs (reload it if the
        configuration changed), and return once the port accepts connections (bounded)."""
        for directory in (self.sites_dir, self.logs_dir, self.temp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self.worker_user is not None:
            entry = pwd.getpwnam(self.worker_user)
            os.chown(self.temp_dir, entry.pw_uid, entry.pw_gid)
            self.temp_dir.chmod(0o700)
        if self.challenge_dir is not None:
            self._open_challenge_dir()
        old_workers: frozenset[tuple[int, int]] = frozenset()
        with self._lock():
            changed = _write_if_changed(self.conf_path, self._main_text())
            # Site files are rewritten from their headers: a new port or template applies to all.
            for name, route in self._read_routes().items():
                changed |= _write_if_changed(self._site_path(name), self._site_text(name, route))
            master = self._master_pid()
            if master is None:
                self._start()
                master = self._master_pid()
                if master is not None:
                    all_workers(master)  # a reload right after must not take a first worker for a new one
            elif changed:
                self._run("-t")
                old_workers = self._reload(master)
        wait_gone(old_workers, self._error_log)
        if not wait_for_port(self.port, START_TIMEOUT, self.host):
            raise RuntimeFailure(f"nginx does not accept connections on {self.host}:{self.port}")

    def set_route(self, name: str, hostnames: list[str], ports: list[int]) -> None:
        """Route ``hostnames`` to ``ports`` (load-balanced), replacing the route's previous
        ports; returns once no nginx worker routes to the previous ports any more."""
        self.switch_route(name, hostnames, ports).wait_drained()

    def switch_route(self, name: str, hostnames: list[str], ports: list[int]) -> Switch:
        """Route ``hostnames`` to ``ports``, like ``set_route``, but return as soon as nginx
        runs workers with the new route; ``Switch.wait_drained`` waits for the old ones."""
        _check_route_name(name)
        route = _Route(_clean_hostnames(hostnames), _clean_ports(ports))
        text = self._site_text(name, route)
        path = self._site_path(name)
        with self._lock():
            master = self._require_master()
            for other, other_route in self._read_routes().items():
                taken = set(route.hostnames) & self._names(other, other_route)
                if other != name and taken:
                    raise Conflict(f"{', '.join(sorted(taken))} already routed by {other!r}")
            previous = path.read_text() if path.exists() else None
            if previous == text:
                return Switch(frozenset(), self._error_log)
            atomic_write(path, text)
            if self._config_digest() not in self._checked:  # what check_route passed needs no -t
                self._test_or_restore(path, previous)
            return Switch(self._reload(master), self._error_log)

    def set_domains(self, name: str, domains: list[CustomDomain]) -> None:
        """Serve the custom ``domains`` in the route ``name`` from now on (replacing its
        previous ones), over TLS where a domain has a certificate; kept when the route is
        switched or removed and routed again. Returns once no nginx worker serves the
        previous ones (at once when the route has no ports yet)."""
        _check_route_name(name)
        unique = {domain.name.strip().lower(): domain for domain in domains}
        cleaned = _clean_hostnames(list(unique)) if unique else []
        domains = [CustomDomain(host, unique[host].certificate, unique[host].key) for host in cleaned]
        path, site = self._domains_path(name), self._site_path(name)
        old_workers: frozenset[tuple[int, int]] = frozenset()
        with self._lock():
            for other, other_route in self._read_routes().items():
                taken = set(cleaned) & self._names(other, other_route)
                if other != name and taken:
                    raise Conflict(f"{', '.join(sorted(taken))} already routed by {other!r}")
            previous = path.read_text() if path.exists() else None
            text = dump_domains(domains) if domains else None
            if previous == text:
                return
            _write_or_remove(path, text)
            route = self._read_routes().get(name)
            master = self._master_pid()
            if route is None or master is None:  # written into the site when it is routed (or nginx starts)
                return
            previous_site = site.read_text()
            atomic_write(site, self._site_text(name, route))
            try:
                self._test_or_restore(site, previous_site)
            except RuntimeFailure:
                _write_or_remove(path, previous)
                raise
            old_workers = self._reload(master)
        wait_gone(old_workers, self._error_log)

    def domains(self, name: str) -> list[CustomDomain]:
        """The route's custom domains, as last set."""
        return load_domains(self._domains_path(name))

    def hostnames(self, name: str) -> list[str]:
        """The route's own hostnames, as configured; none when it has no route."""
        route = self._read_routes().get(name)
        return route.hostnames if route is not None else []

    def check_route(self, name: str, hostnames: list[str], ports: list[int]) -> None:
        """Test, with ``nginx -t``, the configuration ``switch_route`` would write for this
        route, without changing the live one; RuntimeFailure with nginx's reason if refused.

        The test runs on a scratch copy: the main configuration and every site file as they
        are now, the route's own file replaced. A later switch whose configuration is that
        very text skips its own test; any other change in between makes it test again.
        """
        _check_route_name(name)
        text = self._site_text(name, _Route(_clean_hostnames(hostnames), _clean_ports(ports)))
        main, sites = self._config_texts()
        sites[self._site_path(name).name] = text
        if main.count(SITES_INCLUDE) != 1:
            return  # a main configuration of another shape: the switch tests it itself
        # The scratch main file sits beside nginx.conf, so relative paths resolve the same.
        scratch = Path(tempfile.mkdtemp(dir=self.run_dir, prefix="check-"))
        try:
            for filename, site in sites.items():
                (scratch / filename).write_text(site)
            config = scratch.with_suffix(".conf")
            config.write_text(main.replace(SITES_INCLUDE, f"include {scratch.name}/*.conf;"))
            self._run("-t", config=config.name)
        finally:
            scratch.with_suffix(".conf").unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)
        if len(self._checked) >= CHECKED_KEPT:
            self._checked.clear()
        self._checked.add(_digest(main, sites))

    def remove_route(self, name: str) -> None:
        """Stop routing the route's hostnames (they get the 404 of unknown hosts); no error if absent."""
        _check_route_name(name)
        path = self._site_path(name)
        with self._lock():
            if not path.exists():
                return
            master = self._require_master()
            previous = path.read_text()
            path.unlink()
            self._test_or_restore(path, previous)
            old_workers = self._reload(master)
        wait_gone(old_workers, self._error_log)

    def routes(self) -> dict[str, list[int]]:
        """Every route's name and ports, as configured."""
        return {name: route.ports for name, route in self._read_routes().items()}

    def stop(self) -> None:
        """Stop nginx gracefully (in-flight requests finish, bounded); no-op if not running."""
        master = self._master_pid()
        if master is None:
            return
        workers = children(master)
        os.kill(master, signal.SIGQUIT)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while alive(master, None):
            if time.monotonic() >= deadline:
                for pid, _ in workers | children(master):
                    kill(pid)
                kill(master)
                raise RuntimeFailure(f"nginx (pid {master}) ignored a graceful stop; killed it")
            time.sleep(POLL_INTERVAL)

    # -- internals -------------------------------------------------------------------

    def _start(self) -> None:
        with tempfile.TemporaryFile() as output:
            # nginx daemonizes: this returns once the master runs and holds the port.
            started = self._run(stdout=output, check=False)
            if started.returncode != 0:
                output.seek(0)
                raise RuntimeFailure(f"nginx did not start: {output.read().decode(errors='replace').strip()}")

    def _open_challenge_dir(self) -> None:
        """Make the challenge directory readable by the workers: the directory itself
        world-readable (its tokens are public by design) and, when the workers run as
        another user, the folders above it up to the one it shares with the router's own
        (the data dir) searchable by that user alone (an ACL entry; o+x where the file system
        has no ACLs), not listable."""
        assert self.challenge_dir is not None
        self.challenge_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the account key's folder
        self.challenge_dir.mkdir(exist_ok=True)
        self.challenge_dir.chmod(0o755)
        shared = Path(os.path.commonpath([self.challenge_dir, self.run_dir]))
        if self.worker_user is None or shared == shared.parent:
            return
        uid = pwd.getpwnam(self.worker_user).pw_uid
        for folder in (self.challenge_dir.parent, *self.challenge_dir.parent.parents):
            if not may_search(folder, uid):
                grant_search(folder, uid)  # an ACL entry for the workers' user alone, as for postgres
            if folder == shared:
                break

    def _challenge_location(self) -> str:
        if self.challenge_dir is None:
            return ""
        return f"""
    location ^~ /.well-known/acme-challenge/ {{
        alias {self.challenge_dir}/;
        default_type text/plain;
    }}
"""

    @property
    def _error_log(self) -> Path:
        return self.logs_dir / "error.log"

    def _reload(self, master: int) -> frozenset[tuple[int, int]]:
        """Ask the master for a graceful reload (what ``nginx -s reload`` sends, without
        starting an nginx that parses the configuration once more); once it runs a worker
        with the new configuration, tell the old workers to stop accepting and to finish.
        Returns the old workers: they must exit before the new configuration is the only
        one in effect."""
        old_workers = all_workers(master)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while not children(master) - old_workers:
            if time.monotonic() >= deadline or not alive(master, None):
                raise RuntimeFailure(
                    f"nginx started no worker with the new configuration within {RELOAD_TIMEOUT:g}s; "
                    f"see {self._error_log}"
                )
            time.sleep(NEW_WORKER_POLL)
        # It forks them one after another: one forked after this returned would pass for a
        # new worker at the next reload, and route by this configuration after that one.
        while len(children(master) - old_workers) < WORKERS and time.monotonic() < deadline and alive(master, None):
            time.sleep(NEW_WORKER_POLL)
        # The master itself sends the old workers this same graceful-stop signal, but only
        # after sleeping 100 ms ("allow new processes to start"), with its own signals
        # blocked; meanwhile the old workers keep accepting connections for the old ports.
        # Sent now, it saves every switch those 100 ms. The master still counts them as
        # told to stop (its own message reaches them, or a worker already gone), so it
        # never starts a replacement for one: tests/runtime/test_router.py counts workers.
        for pid, started in old_workers:
            if alive(pid, started):
                send_signal(pid, signal.SIGQUIT)
        return old_workers

    def _config_texts(self) -> tuple[str, dict[str, str]]:
        """The main configuration and each site file (by file name), as nginx would read them."""
        sites = {}
        for path in sorted(self.sites_dir.glob("*.conf")):
            with suppress(FileNotFoundError):  # removed meanwhile: nginx would not read it either
                sites[path.name] = path.read_text()
        return self.conf_path.read_text(), sites

    def _config_digest(self) -> str:
        return _digest(*self._config_texts())

    def _test_or_restore(self, path: Path, previous: str | None) -> None:
        """``nginx -t``; when it fails, put the previous site file back (a bad config never
        replaces a good one) and raise with nginx's reason."""
        try:
            self._run("-t")
        except RuntimeFailure:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, previous)
            raise

    def _run(
        self, *args: str, stdout: IO[bytes] | None = None, check: bool = True, config: str = "nginx.conf"
    ) -> subprocess.CompletedProcess[bytes]:
        """Run nginx with this router's prefix and config; RuntimeFailure if it fails."""
        binary = shutil.which(self.nginx) or shutil.which(self.nginx, path=NGINX_FALLBACK_PATH)
        if binary is None:
            raise RuntimeFailure(f"nginx executable {self.nginx!r} not found")
        if "-t" in args:
            self.config_tests += 1
        command = [binary, "-p", f"{self.run_dir}/", "-c", config, "-e", "logs/error.log", *args]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            reason = (result.stdout or b"").decode(errors="replace").strip()
            raise RuntimeFailure(f"nginx {' '.join(args)} failed: {reason}")
        return result

    def _master_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
        return pid if comm == "nginx" and alive(pid, None) else None

    def _require_master(self) -> int:
        master = self._master_pid()
        if master is None:
            raise RuntimeFailure(f"nginx is not running for {self.run_dir}; start it with ensure_running()")
        return master

    def _read_routes(self) -> dict[str, _Route]:
        routes = {}
        for path in sorted(self.sites_dir.glob("*.conf")):
            first_line = path.read_text().partition("\n")[0]
            if first_line.startswith(ROUTE_HEADER):
                meta = json.loads(first_line.removeprefix(ROUTE_HEADER))
                routes[path.stem] = _Route(list(meta["hostnames"]), [int(p) for p in meta["ports"]])
        return routes

    def _site_path(self, name: str) -> Path:
        return self.sites_dir / f"{name}.conf"

    def _domains_path(self, name: str) -> Path:
        return self.domains_dir / f"{name}.json"

    def _names(self, name: str, route: _Route) -> set[str]:
        """Every hostname the route serves: its own and its custom domains."""
        return {*route.hostnames, *(domain.name for domain in self.domains(name))}

    def _listen(self) -> str:
        return listen_address(self.host, self.port)

    def _site_text(self, name: str, route: _Route) -> str:
        meta = json.dumps({"hostnames": route.hostnames, "ports": route.ports})
        secure = [domain for domain in self.domains(name) if servable(domain)]
        plain = [domain.name for domain in self.domains(name) if domain not in secure]
        tls = tls_servers(
            name, secure, self._listen(), listen_address(self.host, self.tls_port), self.tls_port,
            challenge=self._challenge_location(),
        )
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in route.ports)
        return f"""{ROUTE_HEADER}{meta}
# Written by Podium; edits are overwritten.
upstream podium_{name} {{
{servers}}}

server {{
    listen {self._listen()};
    server_name {" ".join([*route.hostnames, *plain])};
    set $podium_route {name};
{self._challenge_location()}
    location / {{
        proxy_pass http://podium_{name};
    }}
}}
{tls}"""

    def _main_text(self) -> str:
        # A root master's workers run as podium-router (not root, not an app's user).
        user = f"user {self.worker_user} {self.worker_user};\n" if self.worker_user else ""
        temp = self.temp_dir
        return f"""# Written by Podium each time the router starts; edits are overwritten.
{user}worker_processes {WORKERS};
worker_shutdown_timeout {WORKER_SHUTDOWN_TIMEOUT}s;
pid nginx.pid;
error_log logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    log_format podium escape=json '{ACCESS_LOG_FORMAT}';
    access_log logs/access.log podium;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    server_tokens off;
    server_names_hash_bucket_size 128;
    client_max_body_size 100m;
    # Keep-alive with clients. A switch's old workers finish every request they have read,
    # answering with "Connection: close", and close their idle connections: a request sent
    # on one at that instant gets no answer, and the client sends it again on a new
    # connection, as RFC 9112 section 9.3.1 lets it (see docs/runtime.md).
    keepalive_timeout {CLIENT_KEEPALIVE_TIMEOUT}s;

    map $http_upgrade $podium_connection {{
        default upgrade;
        "" close;
    }}
    # To the apps, a connection per request: an app sees what a client sending "Connection:
    # close" does. Kept connections would make an app that writes its headers and body in
    # two sends wait for nginx's delayed ACK (40 ms) on each request (Nagle's algorithm).
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $podium_connection;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Request-Id $request_id;

    server {{
        listen {self._listen()} default_server;
        server_name _;
        set $podium_route "";
        default_type text/plain;
{textwrap.indent(self._challenge_location(), "    ")}
        location / {{
            return 404 "no app is routed at this host\\n";
        }}
    }}

    include sites/*.conf;
}}
"""

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise config changes across threads and Podium processes."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "router.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def _check_route_name(name: str) -> None:
    if not ROUTE_NAME_RE.fullmatch(name):
        raise Invalid(f"route name {name!r}: use lowercase letters, digits, '.', '_' and '-'")


def _clean_hostnames(hostnames: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(host.strip().lower() for host in hostnames))
    if not cleaned:
        raise Invalid("a route needs at least one hostname")
    for host in cleaned:
        if not is_hostname(host):
            raise Invalid(f"{host!r} is not a valid hostname")
    return cleaned


def _clean_ports(ports: list[int]) -> list[int]:
    cleaned = list(dict.fromkeys(ports))
    if not cleaned:
        raise Invalid("a route needs at least one port")
    for port in cleaned:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise Invalid(f"{port!r} is not a TCP port")
    return cleaned


def _write_or_remove(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, text)


def _digest(main: str, sites: dict[str, str]) -> str:
    whole = hashlib.sha256(main.encode())
    for filename, text in sorted(sites.items()):
        whole.update(b"\0" + filename.encode() + b"\0" + text.encode())
    return whole.hexdigest()


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    atomic_write(path, text)
    return True
