"""A deleted service's last record: its logs and audit trail in one tarball.

Deleting a service stops everything it ran; what it printed and what was done to it
stay readable in ``<data dir>/archive/<service>-<UTC time>.tar.gz``, so the name can be
used again by a new service that starts clean.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.store.db import utcnow


def archive_service(
    archive_dir: Path, service: str, files_dir: Path, audit: Sequence[dict[str, Any]]
) -> Path:
    """Write ``<service>-<time>.tar.gz`` with every ``*.log*`` file under ``files_dir`` (as
    ``logs/<env>/…``) and ``audit.json``, then remove ``files_dir``. Returns the tarball."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    path = archive_dir / f"{service}-{stamp}.tar.gz"
    partial = path.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        if files_dir.is_dir():
            for log in sorted(files_dir.rglob("*.log*")):
                if log.is_file():
                    relative = log.relative_to(files_dir)
                    env = relative.parts[0]
                    tar.add(log, arcname=f"{service}/logs/{env}/{log.name}")
        body = json.dumps(list(audit), indent=2, default=str).encode()
        info = tarfile.TarInfo(f"{service}/audit.json")
        info.size = len(body)
        info.mtime = int(utcnow().timestamp())
        tar.addfile(info, io.BytesIO(body))
    partial.rename(path)  # a tarball under its final name is complete
    shutil.rmtree(files_dir, ignore_errors=True)
    return path
