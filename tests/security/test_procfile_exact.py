"""A Procfile command runs exactly as written, even with `` ;`` and `` #`` in it, which
supervisord's config parser would otherwise take for the start of a comment."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, poll, through_router

from podium.artifacts.pack import pack_directory
from podium.config import Settings

COMMAND = "python app.py ; echo x # not a comment"

# Answers with the command line of the shell that started it: the Procfile command as run.
APP = """
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            argv = [part.decode() for part in f.read().split(b"\\0")[:-1]]
        body = json.dumps({"shell": argv}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_a_command_with_semicolons_and_hashes_runs_as_written(
    admin: TestClient, settings: Settings, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text(f"web: {COMMAND}\n")
    (app / "app.py").write_text(APP)
    (app / "requirements.txt").write_text("# nothing to install: the virtualenv gives `python`\n")
    slug = tmp_path / "slug.tgz"
    pack_directory(app, slug)
    create_service(admin, "exact")

    rollout = deploy(admin, "exact", "staging", slug.read_bytes())

    assert rollout.release["status"] == "live", rollout.release
    answer = through_router(settings.router_port, "exact.staging.localhost")
    assert answer.json()["shell"] == ["/bin/sh", "-c", COMMAND]

    def states() -> list[str]:
        return [p["state"] for p in admin.get("/api/v1/services/exact/environments/staging/ps").json()]

    # supervisord says STARTING for the first second (startsecs); a cut command would go to BACKOFF.
    poll(lambda: states() == ["RUNNING"], 10, "the web process to be RUNNING")
