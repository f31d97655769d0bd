"""Unpacking: the release directory appears whole, or not at all."""

from __future__ import annotations

import dataclasses
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from podium.artifacts import SlugLimits, inspect_slug, unpack_slug
from podium.artifacts import slug as slug_module
from podium.errors import Conflict, Invalid, TooLarge

MakeSlug = Callable[..., Path]
TarEntry = Callable[..., tarfile.TarInfo]


def test_unpacking_makes_dest_with_the_app_inside(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, tmp_path: Path
) -> None:
    script = tar_entry("app/bin/serve", mode=0o755)
    link = tar_entry("app/current", type=tarfile.SYMTYPE, linkname="bin", mode=0o777)
    copy = tar_entry("app/Procfile.copy", type=tarfile.LNKTYPE, linkname="app/Procfile")
    path = make_slug((script, "#!/bin/sh\n"), link, copy, procfile="web: bin/serve\n")
    dest = tmp_path / "releases" / "v1"

    slug = unpack_slug(path, dest, limits)

    assert slug == inspect_slug(path, limits)
    assert (dest / "app" / "Procfile").read_text() == "web: bin/serve\n"
    assert (dest / "app" / "current" / "serve").read_text() == "#!/bin/sh\n"
    assert (dest / "app" / "bin" / "serve").stat().st_mode & 0o777 == 0o755
    assert (dest / "app" / "Procfile.copy").stat().st_nlink == 2
    assert sorted(p.name for p in dest.parent.iterdir()) == ["v1"]


def test_unpacking_drops_group_and_other_write_bits(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry, tmp_path: Path
) -> None:
    shared = tar_entry("app/shared", mode=0o666)
    unpack_slug(make_slug((shared, "x")), tmp_path / "v1", limits)
    assert (tmp_path / "v1" / "app" / "shared").stat().st_mode & 0o777 == 0o644


def test_an_existing_dest_is_left_alone(make_slug: MakeSlug, limits: SlugLimits, tmp_path: Path) -> None:
    dest = tmp_path / "v1"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(Conflict, match="already exists"):
        unpack_slug(make_slug(), dest, limits)
    assert [p.name for p in dest.iterdir()] == ["keep"]


@pytest.mark.parametrize("problem", ["escape", "bomb", "procfile"])
def test_a_refused_slug_leaves_nothing_behind(
    make_slug: MakeSlug, limits: SlugLimits, tmp_path: Path, problem: str
) -> None:
    path = {
        "escape": lambda: make_slug(("app/../../etc/passwd", "root::0:0::/:/bin/sh\n")),
        "bomb": lambda: make_slug(("app/zeros", bytes(4 * 1024 * 1024))),
        "procfile": lambda: make_slug(("app/server.py", "x"), procfile="web run\n"),
    }[problem]()
    releases = tmp_path / "releases"
    releases.mkdir()
    with pytest.raises(Invalid):
        unpack_slug(path, releases / "v1", dataclasses.replace(limits, max_ratio=50))
    assert list(releases.iterdir()) == []


@pytest.mark.parametrize("content", ["print('ho')\n", "print('a longer one')\n"], ids=["same-size", "resized"])
def test_a_slug_that_changes_between_inspection_and_extraction_leaves_nothing(
    make_slug: MakeSlug, limits: SlugLimits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    good = make_slug(("app/server.py", "print('hi')\n"))
    swapped = make_slug(("app/server.py", content), name="swapped.tgz")
    releases = tmp_path / "releases"
    releases.mkdir()
    inspect = slug_module._inspect

    def inspect_then_swap(path: Path, limits: SlugLimits) -> object:
        result = inspect(path, limits)
        path.write_bytes(swapped.read_bytes())
        return result

    monkeypatch.setattr(slug_module, "_inspect", inspect_then_swap)
    with pytest.raises(Conflict, match="changed while it was being unpacked"):
        unpack_slug(good, releases / "v1", limits)
    assert list(releases.iterdir()) == []


def test_unpacking_a_slug_over_the_limits_raises_too_large(
    make_slug: MakeSlug, limits: SlugLimits, tmp_path: Path
) -> None:
    small = dataclasses.replace(limits, max_unpacked_bytes=1000)
    with pytest.raises(TooLarge):
        unpack_slug(make_slug(("app/big", bytes(2000))), tmp_path / "v1", small)
    assert not (tmp_path / "v1").exists()
