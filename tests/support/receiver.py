"""A real HTTP receiver of pages: what Apprise's ``json://`` URLs post to, on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from podium.runtime.ports import free_port

WAIT = 15.0  # seconds to wait for a page that should arrive; a pass takes a fraction of that


@dataclass
class Received:
    path: str
    title: str
    message: str


class Receiver:
    """An HTTP server recording the JSON POSTs Apprise's ``json://`` sends; it can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pages: list[Received] = []
        self._arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        return f"json://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                self.send_response(200)
                self.end_headers()
                with receiver._arrived:
                    receiver.pages.append(Received(self.path, body.get("title", ""), body.get("message", "")))
                    receiver._arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Close the port: Apprise then gets "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, path: str | None = None, timeout: float = WAIT) -> list[Received]:
        """The pages received (to ``/path`` if given), once there are ``count``; fails after ``timeout``."""
        def matching() -> list[Received]:
            return [p for p in self.pages if path is None or p.path == f"/{path}"]

        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(matching()) >= count, timeout=timeout)
            assert arrived, f"expected {count} page(s) to /{path or ''}, got {[p.path for p in self.pages]}"
            return matching()
