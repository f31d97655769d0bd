"""Inspecting slugs: a good one is read whole, a bad one is refused with the offending entry named."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from podium.artifacts import AppJson, SlugLimits, inspect_slug
from podium.config import Settings
from podium.errors import Invalid, NotFound, TooLarge

MakeSlug = Callable[..., Path]
TarEntry = Callable[..., tarfile.TarInfo]


def test_a_good_slug_is_described_without_writing_anything(
    make_slug: MakeSlug, limits: SlugLimits, tmp_path: Path
) -> None:
    procfile = "web: gunicorn app:app\nrelease: flask db upgrade\n"
    path = make_slug(("app/requirements.txt", "flask\n"), ("app/app.py", "app = 1\n"), procfile=procfile)
    before = sorted(tmp_path.iterdir())

    slug = inspect_slug(path, limits)

    assert slug.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert slug.size == path.stat().st_size
    assert slug.entries == 3
    assert slug.unpacked_size == len(procfile) + len("flask\n") + len("app = 1\n")
    assert slug.processes == {"web": "gunicorn app:app", "release": "flask db upgrade"}
    assert slug.app_json == AppJson()
    assert slug.requirements_hash == hashlib.sha256(b"flask\n").hexdigest()
    assert sorted(tmp_path.iterdir()) == before


def test_app_json_is_read_when_present(make_slug: MakeSlug, limits: SlugLimits) -> None:
    app_json = '{"formation": {"web": {"quantity": 2}}, "env": {"MODE": "fast"}}'
    slug = inspect_slug(make_slug(("app/app.json", app_json)), limits)
    assert slug.app_json.formation["web"].quantity == 2
    assert slug.app_json.env_defaults() == {"MODE": "fast"}
    assert slug.requirements_hash is None


@pytest.mark.parametrize("prefix", ["./", ""])
def test_entries_may_be_named_with_or_without_a_leading_dot(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, prefix: str
) -> None:
    root = tar_entry(".", type=tarfile.DIRTYPE, mode=0o755)
    app = tar_entry(f"{prefix}app", type=tarfile.DIRTYPE, mode=0o755)
    path = make_slug(root, app, (f"{prefix}app/Procfile", "web: run\n"), procfile=None)
    assert inspect_slug(path, limits).processes == {"web": "run"}


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs the tar command")
def test_a_slug_made_by_hand_with_tar_czf_is_accepted(tmp_path: Path, limits: SlugLimits) -> None:
    (tmp_path / "app" / "bin").mkdir(parents=True)
    (tmp_path / "app" / "Procfile").write_text("web: bin/serve\n")
    (tmp_path / "app" / "bin" / "serve").write_text("#!/bin/sh\n")
    (tmp_path / "app" / "current").symlink_to("bin")
    subprocess.run(["tar", "czf", "slug.tgz", "./app"], cwd=tmp_path, check=True)
    slug = inspect_slug(tmp_path / "slug.tgz", limits)
    assert slug.processes == {"web": "bin/serve"}
    assert slug.entries == 5


def test_limits_come_from_settings() -> None:
    settings = Settings(slug_max_bytes=1, slug_max_entries=2, slug_max_unpacked_bytes=3, slug_max_ratio=4.5)
    assert SlugLimits.from_settings(settings) == SlugLimits(1, 2, 3, 4.5)


def test_a_missing_file_is_not_found(tmp_path: Path, limits: SlugLimits) -> None:
    with pytest.raises(NotFound, match="no such file"):
        inspect_slug(tmp_path / "nothing.tgz", limits)


# Paths: everything lives under app/, nothing escapes.


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("app/../../etc/passwd", "app/../../etc/passwd: path escapes the slug"),
        ("../evil.sh", "../evil.sh: path escapes the slug"),
        ("/etc/cron.d/evil", "/etc/cron.d/evil: absolute path"),
        ("app/lib/../server.py", "app/lib/../server.py: '..' is not allowed"),
        ("README.md", "README.md: outside app/"),
        ("other/app/x", "other/app/x: outside app/"),
    ],
)
def test_paths_outside_app_are_refused(
    make_slug: MakeSlug, limits: SlugLimits, name: str, reason: str
) -> None:
    with pytest.raises(Invalid, match=re.escape(reason)):
        inspect_slug(make_slug((name, "x")), limits)


def test_a_duplicate_entry_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match=r"\./app/x: appears twice"):
        inspect_slug(make_slug(("app/x", "1"), ("./app/x", "2")), limits)


def test_app_itself_must_be_a_directory(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match="app: app must be a directory"):
        inspect_slug(make_slug(("app", "not a dir"), procfile=None), limits)


# Links: they may point anywhere inside app/, nowhere else.


@pytest.mark.parametrize("target", ["Procfile", "./lib/../Procfile", "lib", ".", "../app/Procfile"])
def test_a_symlink_within_app_is_accepted(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, target: str
) -> None:
    lib = tar_entry("app/lib", type=tarfile.DIRTYPE, mode=0o755)
    link = tar_entry("app/link", type=tarfile.SYMTYPE, linkname=target, mode=0o777)
    assert inspect_slug(make_slug(lib, link), limits).entries == 3


@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/passwd", "..", "../other", "lib/../../.."])
def test_a_symlink_leaving_app_is_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, target: str
) -> None:
    link = tar_entry("app/link", type=tarfile.SYMTYPE, linkname=target, mode=0o777)
    with pytest.raises(Invalid, match=re.escape(f"app/link: symlink to {target} points outside app/")):
        inspect_slug(make_slug(link), limits)


def test_a_chain_of_symlinks_that_each_look_harmless_is_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    # Read as text, app/b -> a/.. is app itself; on disk, a is app, so a/.. is the slug's root.
    a = tar_entry("app/a", type=tarfile.SYMTYPE, linkname=".", mode=0o777)
    b = tar_entry("app/b", type=tarfile.SYMTYPE, linkname="a/..", mode=0o777)
    with pytest.raises(Invalid, match=re.escape("app/b: symlink to a/.. points outside app/")):
        inspect_slug(make_slug(a, b), limits)


def test_a_symlink_loop_is_refused(make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry) -> None:
    a = tar_entry("app/a", type=tarfile.SYMTYPE, linkname="b", mode=0o777)
    b = tar_entry("app/b", type=tarfile.SYMTYPE, linkname="a", mode=0o777)
    with pytest.raises(Invalid, match="app/a: symlink to b loops"):
        inspect_slug(make_slug(a, b), limits)


def test_an_entry_inside_a_symlink_is_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    lib = tar_entry("app/lib", type=tarfile.DIRTYPE, mode=0o755)
    link = tar_entry("app/link", type=tarfile.SYMTYPE, linkname="lib", mode=0o777)
    with pytest.raises(Invalid, match="app/link/x: lies inside app/link, which is a symlink"):
        inspect_slug(make_slug(lib, link, ("app/link/x", "written through the link")), limits)


def test_a_hard_link_to_a_file_in_app_is_accepted(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    link = tar_entry("app/Procfile.copy", type=tarfile.LNKTYPE, linkname="app/Procfile")
    assert inspect_slug(make_slug(link), limits).entries == 2


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/etc/shadow", "absolute hard link"),
        ("app/../../etc/shadow", "hard link escapes the slug"),
        ("etc/shadow", "points outside app/"),
        ("app/later", "points outside app/ or ahead of itself"),
    ],
)
def test_a_hard_link_outside_app_is_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, target: str, reason: str
) -> None:
    link = tar_entry("app/link", type=tarfile.LNKTYPE, linkname=target)
    with pytest.raises(Invalid, match=re.escape(reason)):
        inspect_slug(make_slug(link, ("app/later", "x")), limits)


# Entry types and modes.


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_devices_and_fifos_are_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, kind: bytes
) -> None:
    with pytest.raises(Invalid, match="app/dev: device files and FIFOs are not allowed"):
        inspect_slug(make_slug(tar_entry("app/dev", type=kind, devmajor=1, devminor=3)), limits)


@pytest.mark.parametrize(
    ("mode", "kind"), [(0o4755, tarfile.REGTYPE), (0o2755, tarfile.REGTYPE), (0o1777, tarfile.DIRTYPE)]
)
def test_setuid_setgid_and_sticky_bits_are_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, mode: int, kind: bytes
) -> None:
    reason = f"app/x: setuid, setgid and sticky bits are not allowed (mode {mode:o})"
    with pytest.raises(Invalid, match=re.escape(reason)):
        inspect_slug(make_slug(tar_entry("app/x", type=kind, mode=mode)), limits)


# What the app says about itself: Procfile and app.json.


def test_a_slug_without_a_procfile_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match="app/Procfile: missing"):
        inspect_slug(make_slug(("app/server.py", "x"), procfile=None), limits)


def test_a_procfile_at_the_top_instead_of_in_app_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match="Procfile: outside app/"):
        inspect_slug(make_slug(("Procfile", "web: run\n"), procfile=None), limits)


@pytest.mark.parametrize(
    ("procfile", "reason"),
    [
        ("# nothing here\n\n", "app/Procfile: no processes to run"),
        ("release: migrate\n", r"app/Procfile: no processes to run \(only a release command\)"),
        ("web: run\nthis is not a process\n", "app/Procfile line 2: expected 'type: command'"),
        ("web: run\nweb: again\n", "app/Procfile line 2: process type 'web' is defined twice"),
    ],
)
def test_a_broken_procfile_is_refused(make_slug: MakeSlug, limits: SlugLimits, procfile: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        inspect_slug(make_slug(procfile=procfile), limits)


def test_a_procfile_that_is_not_utf8_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match="app/Procfile: not UTF-8 text"):
        inspect_slug(make_slug(("app/Procfile", b"web: \xff\xfe\n"), procfile=None), limits)


def test_a_procfile_that_is_a_symlink_is_refused(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    link = tar_entry("app/Procfile", type=tarfile.SYMTYPE, linkname="Procfile.real", mode=0o777)
    with pytest.raises(Invalid, match="app/Procfile: must be a regular file, not a symlink"):
        inspect_slug(make_slug(("app/Procfile.real", "web: run\n"), link, procfile=None), limits)


def test_a_huge_procfile_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    roomy = dataclasses.replace(limits, max_ratio=10_000)  # a megabyte of "#" compresses very well
    with pytest.raises(TooLarge, match="app/Procfile: larger than 1048576 bytes"):
        inspect_slug(make_slug(procfile="web: run\n" + "#" * 1024 * 1024), roomy)


@pytest.mark.parametrize(
    ("app_json", "reason"),
    [
        ('{"formation": {"web": {"quantity": 1}', r"app/app.json: not valid JSON \(line 1, column 38"),
        ("[1, 2]", "app/app.json: must be a JSON object, not list"),
        ('{"formation": {"web": {"quantity": "lots"}}}', "app/app.json: formation.web.quantity: Input should be"),
        ('{"env": {"PORT": {"required": "maybe"}}}', "app/app.json: env.PORT.required: Input should be"),
        ('{"healthchecks": {"web": [{"path": "health"}]}}', "app/app.json: healthchecks.web.0.path: must start"),
        ('{"formation": {"worker": {"quantity": 1}}}', "app/app.json: formation.worker: no such process type"),
    ],
)
def test_an_invalid_app_json_is_refused_naming_the_field(
    make_slug: MakeSlug, limits: SlugLimits, app_json: str, reason: str
) -> None:
    with pytest.raises(Invalid, match=reason):
        inspect_slug(make_slug(("app/app.json", app_json)), limits)
