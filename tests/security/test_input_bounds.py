"""Bounded input, tried against a real server in a process of its own, whose memory is read
from /proc: oversized bodies are refused with 413 before they are parsed (with a token or
without), app.json cannot ask for unbounded health waits or formations, and a slug with a
huge tar extended header is refused before the header is read.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import os
import select
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.runtime.ports import free_port

MiB = 1024 * 1024
RSS_GROWTH_LIMIT = 50 * MiB
SERVE = """
import sys, uvicorn
from podium.api.app import create_app
from podium.config import Settings
from podium.core import Podium
core = Podium(Settings())
core.start()
uvicorn.run(create_app(core), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


class Server:
    """The API (uvicorn) in a child process, on a data dir of its own."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PODIUM_DATA_DIR": str(data_dir), "PODIUM_PORT": str(self.port)}
        self.log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(self.port)], env=env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.token = ""
        deadline = time.monotonic() + 60
        # uvicorn says nothing machine-readable when it listens: ask /healthz until it answers.
        while True:
            assert self.process.poll() is None, "the server exited at start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        self.token = (data_dir / "admin-token").read_text().strip()

    def rss(self) -> int:
        """The most resident memory the server has had so far (its peak, VmHWM), in bytes:
        memory taken for a request and given back before it is read would not show in VmRSS."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("bounds") / "data")
    with running.client() as admin:
        admin.post("/api/v1/teams", json={"name": "shop"}).raise_for_status()
        admin.post("/api/v1/services", json={"name": "cart", "owner": "shop"}).raise_for_status()
        for _ in range(20):  # warm up: the first requests import and cache what every later one uses
            admin.get("/api/v1/services")
    yield running
    running.stop()


def post_raw(port: int, path: str, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, Any, int]:
    """POST over a plain socket, sending ``chunks`` until the server answers; (status, JSON, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:  # the server has answered: stop sending
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read()), sent
    finally:
        sock.close()


def json_body(size: int) -> Iterator[bytes]:
    """A syntactically plausible event batch of ``size`` bytes, in 64 KiB chunks."""
    yield b'{"service": "cart", "env": "staging", "events": ['
    event = b'{"id": "x", "type": "metric", "user_id": "u", "name": "n", "value": 1},'
    chunk = event * (64 * 1024 // len(event))
    for _ in range(size // len(chunk)):
        yield chunk


def hex_chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` in HTTP/1.1 chunked transfer encoding (no Content-Length announced)."""
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_a_60_mb_body_without_a_token_is_refused_before_it_is_read(server: Server, announced: bool) -> None:
    size = 60 * MiB
    before = server.rss()
    if announced:
        headers = {"Content-Type": "application/json", "Content-Length": str(size)}
        status, body, sent = post_raw(server.port, "/api/v1/events", headers, json_body(size))
    else:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        status, body, sent = post_raw(server.port, "/api/v1/events", headers, hex_chunked(json_body(size)))
    if announced:  # refused from its announced length, before anything else is looked at
        assert status == 413, body
        assert body["detail"] == "request body is larger than 16777216 bytes (PODIUM_API_MAX_EVENTS_BODY_BYTES)"
    else:  # no length to refuse it by: the missing token is answered before the body is read
        assert status == 401, body
        assert body["detail"].startswith("missing token")
    assert sent < size / 2, "the server let the whole body in before answering"
    assert server.rss() - before < RSS_GROWTH_LIMIT
    assert server.process.poll() is None


def test_a_60_mb_chunked_body_with_a_token_is_cut_off_at_the_cap(server: Server) -> None:
    size = 60 * MiB
    before = server.rss()
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
               "Authorization": f"Bearer {server.token}"}
    status, body, sent = post_raw(server.port, "/api/v1/events", headers, hex_chunked(json_body(size)))
    assert status == 413, body
    assert body["detail"] == "request body is larger than 16777216 bytes (PODIUM_API_MAX_EVENTS_BODY_BYTES)"
    assert sent < size / 2, "the server let the whole body in before answering"
    assert server.rss() - before < RSS_GROWTH_LIMIT
    assert server.process.poll() is None


def test_other_routes_have_the_default_cap_with_or_without_a_token(server: Server) -> None:
    big = {"name": "x" * (2 * MiB), "owner": "shop"}
    with server.client() as admin:
        refused = admin.post("/api/v1/services", json=big)
        assert refused.status_code == 413
        assert refused.json()["detail"] == "request body is larger than 1048576 bytes (PODIUM_API_MAX_BODY_BYTES)"
        assert admin.get("/api/v1/services/x").status_code == 404
    assert httpx.post(f"{server.url}/api/v1/teams", json=big).status_code == 413


def test_a_full_batch_of_10000_events_still_fits(server: Server) -> None:
    events = [
        {"id": f"e-{i}", "type": "metric", "user_id": f"user-{i % 500}", "name": "checkout", "value": i % 7,
         "attributes": {"country": "fr", "plan": "pro"}}
        for i in range(10_000)
    ]
    body = {"service": "cart", "env": "staging", "events": events}
    assert len(json.dumps(body)) > 1 * MiB  # over the default cap: the events route needs its own
    with server.client() as admin:
        answer = admin.post("/api/v1/events", json=body)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["accepted"] == 10_000


# app.json bounds, through the deploy route.


def slug_with(app_json: dict[str, Any]) -> bytes:
    files = {
        "app/Procfile": b"web: python3 -m http.server $PORT\n",
        "app/app.json": json.dumps(app_json).encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def upload(server: Server, slug: bytes | Iterator[bytes]) -> httpx.Response:
    with server.client() as admin:
        return admin.post(
            "/api/v1/services/cart/environments/staging/deploys", content=slug,
            headers={"Content-Type": "application/gzip"},
        )


@pytest.mark.parametrize(("app_json", "reason"), [
    ({"healthchecks": {"web": [{"type": "startup", "path": "/", "initialDelay": 1e9}]}},
     "app/app.json: healthchecks.web[0]: initialDelay + attempts x (timeout + wait) is 1e+09 s, "
     "over the limit of 300 s (PODIUM_HEALTH_WAIT_MAX)"),
    ({"healthchecks": {"web": {"path": "/", "attempts": 1000, "timeout": 60}}},
     "healthchecks.web[0]: initialDelay + attempts x (timeout + wait) is 61000 s"),
    ({"formation": {"web": {"quantity": 100000}}},
     "app/app.json: formation.web.quantity: 100000 is over the limit of 20"),
], ids=["initial-delay", "attempts", "quantity"])
def test_app_json_cannot_hold_shared_capacity(server: Server, app_json: dict[str, Any], reason: str) -> None:
    refused = upload(server, slug_with(app_json))
    assert refused.status_code == 422
    assert reason in refused.json()["detail"]
    with server.client() as admin:
        assert admin.get("/api/v1/services/cart/environments/staging/releases").json() == []


# Tar extended headers.


def tar_header(name: str, typeflag: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = typeflag, size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def slug_with_header(typeflag: bytes, size: int) -> bytes:
    """A slug that opens with an extended header of ``size`` bytes: a megabyte of noise
    (so the slug is not small enough to look like a gzip bomb), then zeros."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as packed:
        packed.write(tar_header("././@PaxHeader", typeflag, size))
        packed.write(os.urandom(MiB))
        zeros = bytes(4 * MiB)
        for _ in range((size - MiB) // len(zeros)):
            packed.write(zeros)
    return out.getvalue()


@pytest.mark.parametrize(("typeflag", "kind"), [
    (tarfile.XHDTYPE, "PAX extended header"), (tarfile.GNUTYPE_LONGNAME, "GNU long name"),
], ids=["pax", "gnu-longname"])
def test_a_slug_with_a_200_mb_tar_header_is_refused_before_it_is_read(
    server: Server, typeflag: bytes, kind: str
) -> None:
    size = 200 * MiB
    slug = slug_with_header(typeflag, size)
    assert len(slug) < 2 * MiB
    before = server.rss()
    refused = upload(server, slug)
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        f"slug: a {kind} of {size} bytes, over the limit of 65536; paths and link targets this long are not allowed"
    )
    assert server.rss() - before < RSS_GROWTH_LIMIT
