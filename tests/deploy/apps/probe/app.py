"""A web app whose misbehaviour is chosen by ``behaviour.json`` next to it.

Keys (all optional): ``marker`` (echoed in every answer), ``exit_at_once`` (print a
reason and exit 3), ``listen_delay`` (seconds before listening), ``health`` ("ok",
"500": /health always answers 500), ``health_fails_after`` (seconds after start from
which /health answers 500), ``health_fails_after_probes`` (/health answers 500 from
that many answers on: 1 passes the deploy's health gate only), ``sigterm_delay``
(seconds to finish after SIGTERM), ``log_requests`` (print a line per request: the
time, the path, the Host and User-Agent headers).
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BEHAVIOUR = json.loads((Path(__file__).parent / "behaviour.json").read_text())
STARTED = time.monotonic()
HEALTH_ANSWERS = [0]  # /health answers given so far
COUNTING = threading.Lock()  # the server answers each request in a thread of its own


def healthy() -> bool:
    if BEHAVIOUR.get("health") == "500":
        return False
    with COUNTING:
        HEALTH_ANSWERS[0] += 1
        answered = HEALTH_ANSWERS[0]
    probes = BEHAVIOUR.get("health_fails_after_probes")
    if probes is not None and answered > probes:
        return False
    after = BEHAVIOUR.get("health_fails_after")
    return after is None or time.monotonic() - STARTED < after


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if BEHAVIOUR.get("log_requests"):
            print(f"{time.time():.3f} {self.path} {self.headers.get('Host')} {self.headers.get('User-Agent')}",
                  flush=True)
        if self.path == "/health":
            status, body = (200, b"ok") if healthy() else (500, b"unhealthy")
        else:
            status = 200
            body = json.dumps(
                {
                    "marker": BEHAVIOUR.get("marker", ""),
                    "port": int(os.environ["PORT"]),
                    "pid": os.getpid(),
                    "env": {k: v for k, v in os.environ.items() if k.startswith(("PODIUM_", "CFG_"))},
                }
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if BEHAVIOUR.get("exit_at_once"):
        print("probe: giving up at once on purpose", flush=True)
        sys.exit(3)
    time.sleep(BEHAVIOUR.get("listen_delay", 0))
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        def finish() -> None:
            time.sleep(BEHAVIOUR.get("sigterm_delay", 0))
            server.shutdown()

        threading.Thread(target=finish, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"probe {BEHAVIOUR.get('marker', '')} listening on {os.environ['PORT']}", flush=True)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
