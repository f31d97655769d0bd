"""A keep-alive HTTP client for the zero-downtime tests, retrying only as RFC 9112 allows."""

from __future__ import annotations

import http.client


class KeepAliveClient:
    """One HTTP/1.1 connection to the router, kept open between requests, that recovers
    from a closed connection as RFC 9112 §9.3.1 lets a client: a GET sent on a connection
    that already carried a response, and closed before any byte of its answer, is sent
    once more on a new connection (and counted in ``retried``). Anything else is an error."""

    def __init__(self, port: int, host: str, timeout: float = 10.0) -> None:
        self.port, self.host, self.timeout = port, host, timeout
        self.connection: http.client.HTTPConnection | None = None
        self.answered = 0  # responses on the open connection
        self.reused = 0  # requests sent on a connection that had answered before
        self.retried = 0

    def get(self, path: str = "/") -> tuple[int, bytes]:
        reused = self.answered > 0
        try:
            response = self._send(path)
        except (ConnectionResetError, BrokenPipeError):  # RemoteDisconnected is a ConnectionResetError
            self.close()  # not a byte of the answer came
            if not reused:
                raise
            self.retried += 1
            response = self._send(path)
        body = response.read()
        self.answered += 1
        if response.will_close:  # "Connection: close": the router's worker is stopping
            self.close()
        return response.status, body

    def _send(self, path: str) -> http.client.HTTPResponse:
        """The request sent and its status line read, on the open connection or a new one."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        elif self.answered:
            self.reused += 1
        self.connection.request("GET", path, headers={"Host": self.host})
        return self.connection.getresponse()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection, self.answered = None, 0
