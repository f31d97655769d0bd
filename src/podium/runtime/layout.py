"""Where the local runtime keeps a service environment's unpacked apps and logs."""

from __future__ import annotations

from pathlib import Path


class EnvLayout:
    """``<root>/<service>/<env>/``: ``apps/<digest>/app`` per unpacked slug, ``logs/v<N>.<process>.log``."""

    def __init__(self, root: Path, service: str, env: str) -> None:
        self.base = root / service / env
        self.apps = self.base / "apps"
        self.logs = self.base / "logs"

    def app_dir(self, digest: str) -> Path:
        return self.apps / digest.removeprefix("sha256:")[:16]

    def log_file(self, version: int, process: str) -> Path:
        return self.logs / f"v{version}.{process}.log"

    def release_log(self, version: int) -> Path:
        return self.logs / f"v{version}.release.log"

    @property
    def release_pid(self) -> Path:
        """``<pid> <start time>`` of the release command while it runs."""
        return self.base / "release.pid"

    def log_files(self, process: str | None = None) -> list[Path]:
        """Current log files (not their rotated backups), oldest release first; only those
        of ``process`` (``web-1``) or of a type (``web``) when given."""
        if not self.logs.exists():
            return []

        def version(path: Path) -> tuple[int, str]:
            head = path.name.split(".", 1)[0]
            return (int(head[1:]) if head[1:].isdigit() else 0, path.name)

        files = [p for p in self.logs.glob("v*.log") if process is None or f".{process}" in p.name]
        return sorted(files, key=version)
