"""An app that attacks the platform and its neighbours from inside its own process.

``GET /attack?<target>=<value>…`` tries each attack named in the query and answers, per
attack, ``{"ok": true, "got": …}`` when it worked or ``{"ok": false, "error": …}`` when
it did not. ``GET /eat?mb=N`` allocates and touches N MiB; ``GET /fork?n=N`` starts up to
N sleeping children and answers how many it got before the system said no.
"""

import json
import os
import signal
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def read(path: str) -> str:
    with open(path, "rb") as handle:
        return handle.read(200).decode("utf-8", "replace")


def connect(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(path)
        sock.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        return sock.recv(200).decode("utf-8", "replace")


def signal_pid(pid: str) -> str:
    os.kill(int(pid), signal.SIGKILL)
    return f"sent SIGKILL to {pid}"


def write_into(folder: str) -> str:
    path = os.path.join(folder, "lib", "planted.py")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("print('planted')\n")
    return path


ATTACKS = {
    "read": read,  # a file: admin token, store, keys, another app's env file, /proc/<pid>/environ
    "connect": connect,  # supervisord's socket
    "signal": signal_pid,  # another app's process
    "write": write_into,  # a virtualenv another service uses
}


def attack(query: dict[str, list[str]]) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for kind, targets in query.items():
        for target in targets:
            try:
                results[f"{kind}:{target}"] = {"ok": True, "got": ATTACKS[kind](target)}
            except Exception as exc:  # what stopped it is the answer
                results[f"{kind}:{target}"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return results


def fork(n: int) -> dict[str, object]:
    children, error = [], None
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {"forked": len(children), "error": error}


HOG: list[bytearray] = []


def eat(mb: int) -> dict[str, object]:
    for _ in range(mb):
        chunk = bytearray(1024 * 1024)
        chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page: resident, not just reserved
        HOG.append(chunk)
    return {"ate_mb": mb}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/attack":
            body = attack(query)
        elif url.path == "/fork":
            body = fork(int(query["n"][0]))
        elif url.path == "/eat":
            body = eat(int(query["mb"][0]))
        else:
            body = {"me": "intruder", "uid": os.getuid(), "pid": os.getpid()}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
print(f"intruder listening on {os.environ['PORT']}", flush=True)
server.serve_forever(poll_interval=0.05)
