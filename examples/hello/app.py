"""A small web app for Podium: answers on $PORT, shows its release, has a health check."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "Hello from Podium")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK (about 40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path == "/health":
            body = b"ok"
        else:
            body = json.dumps(
                {
                    "message": GREETING,
                    "service": os.environ.get("PODIUM_SERVICE"),
                    "env": os.environ.get("PODIUM_ENV"),
                    "release": os.environ.get("PODIUM_RELEASE"),
                }
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if self.path != "/health" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    # HOST: 127.0.0.1 on a node of its own; a container runtime sets 0.0.0.0 (its own network namespace).
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
