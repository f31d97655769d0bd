"""Packing a directory: the slug layout, skipped directories, and the same digest for the same tree."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from podium.artifacts import SlugLimits, inspect_slug, pack_directory, unpack_slug
from podium.errors import Invalid


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small app as a team keeps it: Procfile at the top, plus clutter that must not ship."""
    src = tmp_path / "project"
    (src / "lib").mkdir(parents=True)
    (src / "Procfile").write_text("web: bin/serve\n")
    (src / "lib" / "core.py").write_text("VALUE = 1\n")
    (src / "bin").mkdir()
    (src / "bin" / "serve").write_text("#!/bin/sh\n")
    (src / "bin" / "serve").chmod(0o755)
    (src / "current").symlink_to("lib")
    for clutter in [".git/objects", "lib/__pycache__", ".venv/bin"]:
        (src / clutter).mkdir(parents=True)
        (src / clutter / "junk").write_text("x")
    return src


def names(slug: Path) -> list[str]:
    with tarfile.open(slug) as tar:
        return tar.getnames()


def test_a_procfile_at_the_top_puts_the_tree_under_app(project: Path, tmp_path: Path, limits: SlugLimits) -> None:
    out = pack_directory(project, tmp_path / "slug.tgz")
    assert out == tmp_path / "slug.tgz"
    expected = ["app", "app/Procfile", "app/bin", "app/bin/serve", "app/current", "app/lib", "app/lib/core.py"]
    assert names(out) == expected
    with tarfile.open(out) as tar:
        serve = tar.getmember("app/bin/serve")
        assert (serve.mode, serve.mtime, serve.uid, serve.gid, serve.uname) == (0o755, 0, 0, 0, "")
        assert tar.getmember("app/lib/core.py").mode == 0o644
        assert tar.getmember("app/current").linkname == "lib"
    assert inspect_slug(out, limits).processes == {"web": "bin/serve"}


def test_a_tree_with_app_inside_is_taken_as_is(tmp_path: Path) -> None:
    (tmp_path / "src" / "app").mkdir(parents=True)
    (tmp_path / "src" / "app" / "Procfile").write_text("web: run\n")
    (tmp_path / "src" / "notes.txt").write_text("not part of the app")
    assert names(pack_directory(tmp_path / "src", tmp_path / "slug.tgz")) == ["app", "app/Procfile"]


def test_the_same_tree_packs_to_the_same_bytes(project: Path, tmp_path: Path, limits: SlugLimits) -> None:
    first = pack_directory(project, tmp_path / "first.tgz")
    os.utime(project / "lib" / "core.py", (1_000_000, 1_000_000))
    (project / "lib" / "__pycache__" / "core.pyc").write_bytes(b"new bytecode")
    second = pack_directory(project, tmp_path / "second.tgz")
    assert first.read_bytes() == second.read_bytes()
    assert inspect_slug(first, limits).digest == inspect_slug(second, limits).digest


def test_a_changed_file_changes_the_digest(project: Path, tmp_path: Path, limits: SlugLimits) -> None:
    first = inspect_slug(pack_directory(project, tmp_path / "first.tgz"), limits)
    (project / "lib" / "core.py").write_text("VALUE = 2\n")
    second = inspect_slug(pack_directory(project, tmp_path / "second.tgz"), limits)
    assert first.digest != second.digest


def test_the_output_inside_the_tree_is_not_packed_into_itself(project: Path) -> None:
    out = pack_directory(project, project / "dist" / "slug.tgz")
    assert "app/dist" in names(out)
    assert "app/dist/slug.tgz" not in names(out)


def test_no_procfile_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x")
    with pytest.raises(Invalid, match="src: no Procfile"):
        pack_directory(tmp_path / "src", tmp_path / "slug.tgz")
    assert not (tmp_path / "slug.tgz").exists()


def test_a_packed_slug_unpacks_to_the_same_tree(project: Path, tmp_path: Path, limits: SlugLimits) -> None:
    dest = tmp_path / "release"
    unpack_slug(pack_directory(project, tmp_path / "slug.tgz"), dest, limits)
    assert (dest / "app" / "current" / "core.py").read_text() == "VALUE = 1\n"
    assert os.access(dest / "app" / "bin" / "serve", os.X_OK)
    assert not (dest / "app" / ".git").exists()
