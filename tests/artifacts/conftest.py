"""Fixtures for slug tests: limits, and archives each test builds for itself in tmp_path."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podium.artifacts import SlugLimits

PROCFILE = "web: python -m http.server $PORT\nrelease: python manage.py migrate\n"

Entry = tarfile.TarInfo | tuple[str | tarfile.TarInfo, str | bytes]
"""A tar entry: a header alone, or a name (or header) with its content."""


@pytest.fixture
def limits() -> SlugLimits:
    """Small limits, so tests stay fast; each check's test goes past one of them."""
    return SlugLimits(max_bytes=10_000_000, max_entries=100, max_unpacked_bytes=100_000_000, max_ratio=100)


@pytest.fixture
def tar_entry() -> Callable[..., tarfile.TarInfo]:
    """``tar_entry("app/x", type=tarfile.SYMTYPE, linkname="y")``: a header with those attributes."""

    def make(name: str, **attributes: Any) -> tarfile.TarInfo:
        entry = tarfile.TarInfo(name)
        entry.mode = 0o644
        for key, value in attributes.items():
            setattr(entry, key, value)
        return entry

    return make


def tar_bytes(entries: tuple[Entry, ...], procfile: str | None) -> bytes:
    """An uncompressed tar holding ``app/Procfile`` (unless None) and then ``entries``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if procfile is not None:
            entries = (("app/Procfile", procfile), *entries)
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
                continue
            header, content = entry
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(header) if isinstance(header, str) else header
            if isinstance(header, str):
                info.mode = 0o644
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def make_slug(tmp_path: Path) -> Callable[..., Path]:
    """``make_slug(*entries, procfile=..., compress=True, name="slug.tgz")``: write an archive.

    ``app/Procfile`` comes first unless ``procfile=None``; ``compress=False`` writes a
    plain tar.
    """

    def make(
        *entries: Entry, procfile: str | None = PROCFILE, compress: bool = True, name: str = "slug.tgz"
    ) -> Path:
        data = tar_bytes(entries, procfile)
        path = tmp_path / name
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        return path

    return make
