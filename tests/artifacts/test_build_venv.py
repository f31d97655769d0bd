"""Virtualenvs per requirements: built once, reused for free, and nothing left by a failed build."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from podium.artifacts import ensure_venv
from podium.errors import Invalid


def write_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, made by hand, so pip needs neither network nor build backend."""
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(content.encode())}")
    files["tinypkg-0.1.dist-info/RECORD"] = "\n".join([*record, "tinypkg-0.1.dist-info/RECORD,,"]) + "\n"
    wheel = directory / "tinypkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return wheel


def test_requirements_without_packages_get_a_venv_reused_next_time(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing to install yet\n\n")
    cache = tmp_path / "cache"

    venv, built = ensure_venv(requirements, cache)

    assert built
    assert venv == cache / hashlib.sha256(requirements.read_bytes()).hexdigest()
    assert (venv / "bin" / "python").exists()
    # A second call must not build: with no interpreter at all it would fail.
    assert ensure_venv(requirements, cache, python="/nonexistent/python") == (venv, False)


def test_a_local_package_is_installed_and_importable(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    wheel = write_wheel(app)
    requirements = app / "requirements.txt"
    requirements.write_text(f"./{wheel.name}\n")  # relative to the requirements file

    venv, built = ensure_venv(requirements, tmp_path / "cache")

    assert built
    command = [venv / "bin" / "python", "-c", "import tinypkg; print(tinypkg.VALUE)"]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    assert run.stdout == "42\n"


def test_a_failed_install_says_why_and_leaves_no_cache_entry(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("./no-such-package-dir\n")
    cache = tmp_path / "cache"

    with pytest.raises(Invalid) as refused:
        ensure_venv(requirements, cache)

    assert str(refused.value).startswith("requirements.txt: pip install failed:\n")
    assert "no-such-package-dir" in str(refused.value)
    assert list(cache.iterdir()) == []


def test_different_requirements_get_different_venvs(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("# a\n")
    second.write_text("# b\n")
    venv_a, _ = ensure_venv(first, tmp_path / "cache")
    venv_b, built = ensure_venv(second, tmp_path / "cache")
    assert built
    assert venv_a != venv_b
