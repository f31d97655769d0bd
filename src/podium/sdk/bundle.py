"""The SDK as a directory deployed apps find on their ``PYTHONPATH``.

An app's virtualenv holds its own requirements, not Podium. So that ``from podium.sdk
import Client`` works in any app with no requirement to add, Podium copies the SDK's
files — ``podium.sdk`` and the standard-library-only part of ``podium.experiments``
(``assign``, ``evaluate``, ``conditions``) under a stub ``podium`` package — into a
directory named by the SHA-256 of their content, and puts that directory on every
process's ``PYTHONPATH``. Nothing else of Podium (FastAPI, SQLAlchemy, NumPy) is
reachable from there. A directory, once written, never changes: a Podium upgrade writes
a new one, and processes started before keep theirs.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
from pathlib import Path

import podium.experiments
import podium.sdk

STUB = '"""Podium\'s application SDK, as deployed apps see it (podium.sdk)."""\n'
PACKAGE_STUB = '"""What the SDK needs of Podium\'s experiments: assignment, conditions, evaluation."""\n'
EXPERIMENT_MODULES = ("assign.py", "evaluate.py", "conditions.py")
SDK_MODULES = ("__init__.py", "client.py", "openfeature.py")


def bundle_files() -> dict[str, bytes]:
    """Relative path → content of every file of the bundle."""
    sdk = Path(podium.sdk.__file__).parent
    experiments = Path(podium.experiments.__file__).parent
    files = {
        "podium/__init__.py": STUB.encode(),
        "podium/experiments/__init__.py": PACKAGE_STUB.encode(),
    }
    for name in EXPERIMENT_MODULES:
        files[f"podium/experiments/{name}"] = (experiments / name).read_bytes()
    for name in SDK_MODULES:
        files[f"podium/sdk/{name}"] = (sdk / name).read_bytes()
    return files


def install_bundle(root: Path) -> Path:
    """The bundle's directory under ``root`` (the thing to put on ``PYTHONPATH``), written if missing."""
    files = bundle_files()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    target = root / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    compileall.compile_dir(tmp, quiet=1)  # so apps never write next to the files
    try:
        tmp.rename(target)
    except OSError:  # another process wrote the same bundle first
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():
            raise
    return target
