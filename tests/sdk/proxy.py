"""A small HTTP proxy in front of a live Podium, to see what the SDK sends and to make it fail.

It forwards each request to the upstream server and records ``(method, path, status)``.
``down`` makes it close every connection without an answer (Podium unreachable);
``fail_next(n, status)`` answers the next ``n`` requests with that status instead of
forwarding them — after forwarding when ``after=True``, so the upstream did store the
batch and the SDK must send the same one again.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Proxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.seen: list[tuple[str, str, int]] = []
        self.bodies: list[bytes] = []
        self.down = False
        self._failures: list[tuple[int, bool]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._handle(self)

            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Proxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, count: int, status: int = 503, *, after: bool = False) -> None:
        with self._lock:
            self._failures.extend([(status, after)] * count)

    def wait_for(self, predicate: object, timeout: float = 10.0) -> list[tuple[str, str, int]]:
        """Wait until ``predicate(seen)`` holds; the requests seen so far."""
        assert callable(predicate)
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(list(self.seen)), timeout):
                raise AssertionError(f"timed out; seen {self.seen}")
            return list(self.seen)

    def _record(self, method: str, path: str, status: int, body: bytes) -> None:
        with self._changed:
            self.seen.append((method, path, status))
            if method == "POST":
                self.bodies.append(body)
            self._changed.notify_all()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.down:
            self._record(handler.command, handler.path, 0, body)
            handler.close_connection = True
            handler.connection.close()
            return
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None and not failure[1]:
            self._record(handler.command, handler.path, failure[0], body)
            self._reply(handler, failure[0], b'{"detail": "injected"}', {})
            return
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(handler.command, handler.path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        reply_headers = {k: v for k, v in response.getheaders() if k.lower() in ("etag", "content-type")}
        connection.close()
        status = response.status
        if failure is not None:  # the upstream took it; the sender is told it failed
            status, data = failure[0], b'{"detail": "injected after forwarding"}'
        self._record(handler.command, handler.path, status, body)  # before the sender can hear the answer
        self._reply(handler, status, data, reply_headers)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if status != 304:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if status != 304:
            handler.wfile.write(data)
