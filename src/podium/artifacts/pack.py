"""Packing a directory into a slug, deterministically: the same tree gives the same digest."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
import tempfile
from pathlib import Path

from podium.errors import Invalid

SKIPPED = frozenset({".git", "__pycache__", ".venv"})
"""Directory names never packed: history, bytecode and local environments."""


def pack_directory(src: Path, out: Path) -> Path:
    """Pack ``src`` into the slug format at ``out`` and return ``out``.

    If ``src/Procfile`` exists, the contents of ``src`` go under ``app/``; if
    ``src/app/Procfile`` exists, ``src/app`` is packed as the slug's ``app/``. ``.git``,
    ``__pycache__`` and ``.venv`` directories are skipped. Entries are sorted, with mtime
    0 and owner 0, so the same tree always packs to the same bytes. Raises ``Invalid``
    when there is no Procfile. ``out`` is written whole or not at all.
    """
    if (src / "Procfile").is_file():
        app = src
    elif (src / "app" / "Procfile").is_file():
        app = src / "app"
    else:
        raise Invalid(f"{src}: no Procfile (looked for {src}/Procfile and {src}/app/Procfile)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with (
            os.fdopen(fd, "wb") as file,
            gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add(tar, app, "app", skip=out.parent.resolve() / out.name)
        os.chmod(partial, 0o644)
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return out


def _add(tar: tarfile.TarFile, path: Path, name: str, *, skip: Path) -> None:
    """Add ``path`` as ``name``, then, for a directory, its children in sorted order."""
    info = path.lstat()
    entry = tarfile.TarInfo(name)
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    if stat.S_ISLNK(info.st_mode):
        entry.type, entry.linkname, entry.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        tar.addfile(entry)
    elif stat.S_ISDIR(info.st_mode):
        entry.type, entry.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(entry)
        here = path.resolve()
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            if child.name in SKIPPED or here / child.name == skip:
                continue
            _add(tar, child, f"{name}/{child.name}", skip=skip)
    elif stat.S_ISREG(info.st_mode):
        entry.mode = 0o755 if info.st_mode & stat.S_IXUSR else 0o644
        entry.size = info.st_size
        with path.open("rb") as content:
            tar.addfile(entry, content)
    else:
        raise Invalid(f"{path}: not a file, directory or symlink; a slug cannot hold it")
