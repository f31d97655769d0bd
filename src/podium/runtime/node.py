"""This machine as the local runtime uses it: one supervisord and one nginx, and the ports
handed to new processes. Only ``podium.runtime.local`` builds on it."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from podium.runtime.ports import free_port
from podium.runtime.router import Router
from podium.runtime.sandbox import Sandbox
from podium.runtime.supervisor import Supervisor

# Ports handed out recently are not handed out again: an app may not have bound its
# port yet when the next deploy asks for one.
RECENT_PORTS = 4096


class LocalNode:
    """This machine: supervisord in ``run_dir/supervisor``, nginx in ``run_dir/router``."""

    def __init__(
        self, run_dir: Path, router_port: int, sandbox: Sandbox | None = None, *,
        router_host: str = "127.0.0.1", router_tls_port: int = 8443, challenge_dir: Path | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.supervisor = Supervisor(run_dir / "supervisor", sandbox)
        self.router = Router(
            run_dir / "router", router_port, host=router_host, tls_port=router_tls_port, challenge_dir=challenge_dir
        )
        self._recent_ports: deque[int] = deque(maxlen=RECENT_PORTS)
        self._ports_lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start supervisord and nginx unless they already run; idempotent."""
        self.supervisor.ensure_running()
        self.router.ensure_running()

    def allocate_port(self) -> int:
        """A free port on 127.0.0.1, not one this node handed out recently."""
        with self._ports_lock:
            while True:
                port = free_port()
                if port not in self._recent_ports and port not in (self.router.port, self.router.tls_port):
                    self._recent_ports.append(port)
                    return port

    def shutdown(self) -> None:
        """Stop the router, then every process and supervisord; both are attempted."""
        try:
            self.router.stop()
        finally:
            self.supervisor.shutdown()
