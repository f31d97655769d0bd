"""A small web app running an A/B test with Podium's SDK.

``/?user=U`` shows the user their variant of the experiment (``$EXPERIMENT``, default
``big-button``); ``/signup?user=U`` records a conversion; ``/event?user=U&name=N`` any
other metric (an ``error``, say). Other query parameters are the user's attributes, e.g.
``&profession=marketing``. ``podium.sdk`` comes with Podium: no requirement to add, and
``Client()`` needs no arguments in a deployed app.
"""

import json
import os
import signal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from podium.sdk import Client

EXPERIMENT = os.environ.get("EXPERIMENT", "big-button")
podium = Client()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        user = query.pop("user", "")
        if url.path == "/health":
            return self.reply(200, {"ok": True, "definitions": podium.ready})
        if not user:
            return self.reply(400, {"detail": "say who the user is: ?user=..."})
        if url.path == "/":
            variant = podium.variant(EXPERIMENT, user, query or None)
            button = "big" if variant == "treatment" else "small"
            return self.reply(200, {"user": user, "experiment": EXPERIMENT, "variant": variant, "button": button})
        if url.path == "/signup":
            podium.track(user, "signup", attributes=query or None)
            return self.reply(200, {"user": user, "signed_up": True})
        if url.path == "/event":
            name = query.pop("name", "")
            if not name:
                return self.reply(400, {"detail": "say which event: &name=..."})
            podium.track(user, name, float(query.pop("value", "1")), query or None)
            return self.reply(200, {"user": user, "event": name})
        return self.reply(404, {"detail": "not found"})

    def reply(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}, experiment {EXPERIMENT}", flush=True)
    try:
        server.serve_forever()
    finally:
        podium.close(timeout=2.0)  # what is buffered goes to Podium, unless it is unreachable (then 2 s at most)
