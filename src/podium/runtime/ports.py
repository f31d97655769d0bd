"""TCP ports on this machine: pick a free one, wait until one accepts connections."""

from __future__ import annotations

import socket
import time

POLL_INTERVAL = 0.02


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP connection to ``host:port`` succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """Poll ``host:port`` until it accepts a connection; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if port_accepts(port, host):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
