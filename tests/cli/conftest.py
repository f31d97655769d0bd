"""CLI fixtures: the CLI in-process and as a console script, and a small echo server.

Every test here starts with no PODIUM_URL / PODIUM_TOKEN and its own config dir, so a
developer's own login never leaks in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from typer.testing import CliRunner, Result

from podium.cli.main import app
from podium.runtime.ports import free_port


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config dir of the test's own, and no login from the environment."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("PODIUM_URL", raising=False)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    return home


Invoke = Callable[..., Result]


@pytest.fixture
def podium_cli(live_server: Any) -> Invoke:
    """``podium_cli("teams", "list", token=..., expect=0)``: the CLI in-process on the live server.

    ``token`` defaults to the admin token and ``url`` to the server's (``None`` unsets
    either, leaving the saved login or the defaults). The exit code must be
    ``expect`` (``None``: anything); exceptions stay in ``result.exception``, where
    ``run_cli`` would catch them.
    """
    runner = CliRunner()

    def invoke(*args: str, token: str | None = live_server.admin_token, url: str | None = live_server.url,
               input: str | None = None, expect: int | None = 0) -> Result:
        env = {"PODIUM_URL": url, "PODIUM_TOKEN": token}  # None unsets
        result = runner.invoke(app, list(args), env=env, input=input)
        if expect is not None:
            assert result.exit_code == expect, (args, result.exception, result.stdout, result.stderr)
        return result

    return invoke


def console_script() -> str:
    """The installed ``podium`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "podium"
    found = str(beside) if beside.exists() else shutil.which("podium")
    assert found, "the podium console script is not installed: pip install -e ."
    return found


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


Console = Callable[..., Ran]


@pytest.fixture
def console(live_server: Any, tmp_path: Path) -> Console:
    """``console("services", "show", "x", token=..., stdin=None)``: ``podium`` as a subprocess.

    The child sees only PATH, HOME and XDG_CONFIG_HOME (both under ``tmp_path``), plus
    PODIUM_URL / PODIUM_TOKEN unless ``url`` / ``token`` is None.
    """

    def run(*args: str, token: str | None = live_server.admin_token, url: str | None = live_server.url,
            stdin: str | None = None) -> Ran:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
        env.update({k: v for k, v in {"PODIUM_URL": url, "PODIUM_TOKEN": token}.items() if v is not None})
        done = subprocess.run(
            [console_script(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
            check=False, **({"stdin": subprocess.DEVNULL} if stdin is None else {}),
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


# A small HTTP server for what the catalog API does not serve yet: uploads, streams, 5xx.


async def _upload(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({
        "bytes": size, "sha256": digest.hexdigest(), "method": request.method,
        "content_length": request.headers.get("content-length"),
        "chunked": request.headers.get("transfer-encoding") == "chunked",
        "content_type": request.headers.get("content-type"), "params": dict(request.query_params),
    })


async def _lines(request: Request) -> Response:
    count = int(request.query_params.get("n", "3"))

    async def body() -> AsyncIterator[bytes]:
        for i in range(count):
            yield f"line {i}\n".encode()

    return StreamingResponse(body(), media_type="text/plain")


async def _ndjson(request: Request) -> Response:
    lines = [b'{"step": "upload"}\n', b"\n", b'{"step": "live", "release": 2}\n']
    if request.query_params.get("bad"):
        lines.append(b"<html>proxy timeout</html>\n")

    async def body() -> AsyncIterator[bytes]:
        for line in lines:
            yield line

    return StreamingResponse(body(), media_type="application/x-ndjson")


async def _status(request: Request) -> Response:
    code = int(request.path_params["code"])
    if request.query_params.get("html"):
        return PlainTextResponse("<html><body>Bad Gateway</body></html>", status_code=code)
    return JSONResponse({"detail": f"failed with {code}"}, status_code=code)


ECHO_APP = Starlette(routes=[
    Route("/upload", _upload, methods=["POST", "PUT"]),
    Route("/lines", _lines),
    Route("/ndjson", _ndjson),
    Route("/status/{code}", _status, methods=["GET", "POST"]),
])


@pytest.fixture
def echo_server() -> Iterator[str]:
    """The URL of a real HTTP server answering uploads, line streams and chosen statuses."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(ECHO_APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    # uvicorn offers a flag, not an event, for "listening": poll it briefly.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the echo server did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
