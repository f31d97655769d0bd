"""A bad slug is refused before anything is unpacked, and the live release keeps serving."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import deploy, env_path, probe_app, slug_of, through_router, upload

from podium.config import Settings


def tgz(*entries: tuple[str, bytes | None]) -> bytes:
    """A gzipped tar of ``(name, content)``; content None makes a directory."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue())


def with_symlink(name: str, target: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, content in (("app", None), ("app/Procfile", b"web: python3 app.py\n")):
            info = tarfile.TarInfo(path)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo(name)
        link.type, link.linkname = tarfile.SYMTYPE, target
        tar.addfile(link)
    return gzip.compress(raw.getvalue())


PROCFILE = ("app/Procfile", b"web: python3 app.py\n")
BAD_SLUGS = {
    "path traversal": (tgz(("app", None), PROCFILE, ("app/../../escaped.txt", b"x")), "app/../../escaped.txt"),
    "outside app/": (tgz(("app", None), PROCFILE, ("etc/cron.d/evil", b"x")), "etc/cron.d/evil"),
    "symlink out": (with_symlink("app/leak", "../../../etc/passwd"), "app/leak"),
    "no Procfile": (tgz(("app", None), ("app/app.py", b"print(1)\n")), "app/Procfile"),
    "broken Procfile": (tgz(("app", None), ("app/Procfile", b"just words\n")), "app/Procfile"),
    "not gzip": (b"PK\x03\x04 this is a zip, not a slug" * 10, "zip"),
    "truncated": (tgz(("app", None), PROCFILE, ("app/big.bin", os.urandom(20_000)))[:5000], "ends early"),
}


def snapshot(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_bad_slugs_are_refused_and_the_live_release_keeps_serving(
    admin: TestClient, service: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1")))
    assert v1.release["status"] == "live"
    watched = tmp_path / "watched-tmp"
    watched.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    before = snapshot(settings.data_dir)

    for case, (slug, entry) in BAD_SLUGS.items():
        refused = upload(admin, service, "staging", slug)

        assert 400 <= refused.status_code < 500, (case, refused.text)
        assert entry in refused.json()["detail"], (case, refused.json())
        answer = through_router(settings.router_port, f"{service}.staging.localhost")
        assert answer.status_code == 200, case
        assert answer.json()["marker"] == "v1", case

    assert list(watched.iterdir()) == []
    new = snapshot(settings.data_dir) - before
    assert not {p for p in new if not p.startswith(("podium.db-", "node/router/logs/", "node/supervisor/"))}, new
    assert not (settings.data_dir.parent / "escaped.txt").exists()
    assert list((settings.data_dir / "uploads").iterdir()) == []
    releases = admin.get(f"{env_path(service, 'staging')}/releases").json()
    assert [(r["version"], r["status"]) for r in releases] == [("v1", "live")]
