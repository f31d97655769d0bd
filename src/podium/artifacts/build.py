"""Virtualenvs for a slug's ``requirements.txt``, built once per distinct content and cached.

With a ``confine`` function (the local runtime's sandbox), ``venv`` and ``pip`` run as the
service environment's own user in its sandbox, into a cache of that environment: a
package's build code never runs as Podium, and no team can plant code in a virtualenv
another team's identical requirements would import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from podium.errors import Invalid

PIP_OUTPUT_LINES = 20
"""How much of pip's output a failed build reports."""

Confine = Callable[[list[str], Path], list[str]]
"""``confine(argv, build_dir)``: ``argv`` as it runs confined, with ``build_dir`` writable."""


def ensure_venv(
    requirements: Path, cache_dir: Path, *, python: str = sys.executable, confine: Confine | None = None
) -> tuple[Path, bool]:
    """Build (or reuse) a virtualenv for ``requirements``; return ``(venv_path, built_now)``.

    The venv lives at ``cache_dir/<sha256 of the file's content>``, so unchanged
    requirements cost one ``stat`` the next time. A venv cannot be moved once built (its
    scripts name their interpreter by absolute path), so it is built in a directory of its
    own beside that name, and the name is then published atomically as a symlink to it:
    a failed or interrupted build is never seen under the name. A failed ``pip install``
    raises ``Invalid`` with the last lines of pip's output and leaves nothing behind.

    The venv gets no pip of its own; ``python``'s pip (22.3 or later) installs into it.
    Confined, both run without Podium's own settings in their environment.
    """
    content = requirements.read_bytes()
    venv = cache_dir / hashlib.sha256(content).hexdigest()
    if venv.exists():
        return venv, False
    if venv.is_symlink():  # published, but its build directory has since been removed
        venv.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f"{venv.name}.", dir=cache_dir))
    try:
        run = _confined(confine, build)
        created = run([python, "-m", "venv", "--without-pip", str(build)], requirements.parent)
        if created.returncode != 0:
            raise RuntimeError(f"{python} -m venv failed: {created.stdout.strip()[-2000:]}")
        if _lists_anything(content):
            _pip_install(python, build, requirements, run)
        build.chmod(0o755)
        os.symlink(build.name, venv)
    except FileExistsError:
        # A concurrent build of the same requirements published first; use that one.
        shutil.rmtree(build, ignore_errors=True)
        return venv, False
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return venv, True


def _lists_anything(content: bytes) -> bool:
    """Whether the file names anything to install (not only blanks and comments)."""
    lines = (line.strip() for line in content.decode("utf-8", errors="replace").splitlines())
    return any(line and not line.startswith("#") for line in lines)


def _pip_install(
    python: str, venv: Path, requirements: Path, run: Callable[[list[str], Path], subprocess.CompletedProcess[str]]
) -> None:
    # pip resolves relative paths in a requirements file from its working directory,
    # so it runs beside the file.
    target = str(venv / "bin" / "python")
    options = ["--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    command = [python, "-m", "pip", "--python", target, "install", *options, "-r", requirements.name]
    result = run(command, requirements.parent)
    if result.returncode == 0:
        return
    if "No module named pip" in result.stdout:
        # The platform's interpreter is at fault, not the app's requirements.
        raise RuntimeError(f"{python} has no pip to install requirements with")
    tail = "\n".join(result.stdout.strip().splitlines()[-PIP_OUTPUT_LINES:])
    raise Invalid(f"{requirements.name}: pip install failed:\n{tail}")


def _confined(confine: Confine | None, build: Path) -> Callable[[list[str], Path], subprocess.CompletedProcess[str]]:
    if confine is None:
        return lambda command, cwd: _run(command, cwd=cwd)
    # Podium's settings (keys among them) stay out of code a requirement's build runs.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PODIUM_")}
    env.update(HOME="/tmp", PIP_NO_CACHE_DIR="1")  # noqa: S108 - the sandbox's own private /tmp
    return lambda command, cwd: _run(confine(command, build), cwd=cwd, env=env)


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with no input; its output, stderr included, is in ``stdout``."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        check=False,
    )
