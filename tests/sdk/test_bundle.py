"""The SDK bundle deployed apps import: complete on its own, and nothing else of Podium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from podium.sdk.bundle import install_bundle

CODE = """
import sys
from podium.sdk import Client
from podium.experiments.evaluate import Evaluator
doc = {"experiments": [{"key": "e", "status": "running", "variants": ["a", "b"], "weights": [0.5, 0.5],
        "coverage": 1.0, "seed": "e", "hash_version": 2, "namespace": None, "conditions": {}, "force": None}]}
print(Evaluator(doc).variant("e", "u1"))
try:
    import podium.core
except ImportError:
    print("no podium.core")
print(sorted(m for m in ("fastapi", "sqlalchemy", "numpy", "httpx") if m in sys.modules))
"""


def test_the_bundle_imports_alone_in_a_bare_interpreter(tmp_path: Path) -> None:
    bundle = install_bundle(tmp_path / "sdk")
    assert install_bundle(tmp_path / "sdk") == bundle  # content-addressed: written once
    # -S: no site-packages, so only the standard library and the bundle are importable.
    env = {"PYTHONPATH": str(bundle), "PATH": os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-S", "-c", CODE], env=env, capture_output=True, text=True, check=True)
    from podium.experiments.assign import assign

    expected = assign("e", "u1", ["a", "b"], [0.5, 0.5], 1.0, "e", 2)
    assert out.stdout.split("\n")[:3] == [expected, "no podium.core", "[]"]
    shipped = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*.py"))
    assert shipped == [
        "podium/__init__.py", "podium/experiments/__init__.py", "podium/experiments/assign.py",
        "podium/experiments/conditions.py", "podium/experiments/evaluate.py", "podium/sdk/__init__.py",
        "podium/sdk/client.py", "podium/sdk/openfeature.py",
    ]  # fmt: skip
