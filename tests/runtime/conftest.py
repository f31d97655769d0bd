"""A real supervisord and a real nginx per test, each in the test's own directory.

Teardown stops them through Podium and then kills whatever is left (found through their
pid files), so a failing test never leaves a daemon behind.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port, wait_for_port
from podium.runtime.router import Router
from podium.runtime.supervisor import ProcessSpec, Supervisor

# The app supervisord runs in these tests: answers GET / with $APP_NAME and
# GET /env/<KEY> with that environment variable, on 127.0.0.1:$PORT.
APP_SOURCE = """\
import http.server, os

NAME = os.environ["APP_NAME"]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/env/"):
            body = os.environ.get(self.path[5:], "").encode()
        else:
            body = NAME.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


print(f"{NAME} listening on {os.environ['PORT']}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@dataclass(frozen=True)
class App:
    group: str
    port: int


StartApp = Callable[..., App]


def app_spec(
    tmp_path: Path,
    name: str,
    port: int,
    *,
    command: str | None = None,
    environment: dict[str, str] | None = None,
    startretries: int = 3,
) -> ProcessSpec:
    """The test app (or ``command``) as process ``web-1``, logging to ``tmp_path/logs``."""
    script = tmp_path / "app.py"
    if not script.exists():
        script.write_text(APP_SOURCE)
    return ProcessSpec(
        name="web-1",
        command=command or f"{sys.executable} {script}",
        directory=tmp_path,
        environment={"PORT": str(port), "APP_NAME": name, **(environment or {})},
        log_file=tmp_path / "logs" / f"{name}-{port}.log",
        startretries=startretries,
    )


def kill_daemon(pid_file: Path, run_dir: Path) -> None:
    """SIGKILL the daemon named by ``pid_file`` and its children, if it is still ours."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return
    if str(run_dir) not in cmdline:
        return
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                _kill(int(entry.name))
    _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_supervisor(run_dir: Path) -> None:
    try:
        Supervisor(run_dir).shutdown()
    finally:
        kill_daemon(run_dir / "supervisord.pid", run_dir)


def stop_router(router: Router) -> None:
    try:
        router.stop()
    finally:
        kill_daemon(router.pid_path, router.run_dir)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    """A running supervisord in ``tmp_path/sv``."""
    sup = Supervisor(tmp_path / "sv")
    sup.ensure_running()
    yield sup
    stop_supervisor(sup.run_dir)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    """A running nginx in ``tmp_path/router`` on a free port."""
    rt = Router(tmp_path / "router", free_port())
    rt.ensure_running()
    yield rt
    stop_router(rt)


@pytest.fixture
def node(data_dir: Path) -> Iterator[LocalNode]:
    """A running LocalNode in ``data_dir/node`` (short: supervisord's socket path has a limit)."""
    local = LocalNode(data_dir / "node", free_port())
    local.ensure_running()
    yield local
    try:
        local.shutdown()
    finally:
        kill_daemon(local.router.pid_path, local.router.run_dir)
        kill_daemon(local.supervisor.pid_path, local.supervisor.run_dir)


@pytest.fixture
def start_app(tmp_path: Path) -> StartApp:
    """``start_app(supervisor, group, name)``: run the test app as a one-process group
    on a fresh port; returns once it is RUNNING and accepts connections."""

    def start(sup: Supervisor, group: str, name: str, port: int | None = None) -> App:
        port = port or free_port()
        sup.add_group(group, [app_spec(tmp_path, name, port)])
        sup.wait_running(group, timeout=15)
        assert wait_for_port(port, timeout=15)
        return App(group, port)

    return start


@pytest.fixture
def thread_app() -> Iterator[Callable[[str], int]]:
    """``thread_app(name)``: an HTTP server in this process answering ``name``; returns its port."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(name: str) -> int:
        body = name.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(port: int, host: str, path: str = "/") -> httpx.Response:
    """One request through the router at ``port`` for ``host``."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
