"""Progress on stderr: an upload bar in bytes, and the stages of a rollout.

On a terminal these are live Rich displays; anywhere else (a pipe, a CI log) they are
plain lines, one per change, so logs stay readable and nothing depends on a TTY.
Everything goes to stderr, so stdout keeps only results (and JSON with ``--json``).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

STAGES = (
    "pending", "unpacking", "building", "releasing", "starting", "health_check", "switching", "draining", "done",
)
"""The order every rollout goes through (``building`` and ``releasing`` only when needed)."""


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def size_text(size: int) -> str:
    """Bytes the way people read them: ``812 B``, ``14.2 kB``, ``3.1 MB``."""
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


class UploadBar:
    """Bytes sent of an upload; pass ``update`` as ``ApiClient.upload``'s progress callback."""

    def __init__(self, label: str, total: int, console: Console | None = None) -> None:
        self.console = console or err_console()
        self.label = label
        self.total = total
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> UploadBar:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"uploading {self.label}", total=self.total)
        else:
            self.console.print(Text(f"uploading {self.label} ({size_text(self.total)})"))
        return self

    def update(self, sent: int, total: int | None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=sent, total=total)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            if exc is None:
                self.console.print(Text(f"uploaded {self.label} ({size_text(self.total)})"))


class StageDisplay:
    """The stages of one release's rollout as its events arrive.

    On a terminal: a line per finished stage with its duration, and a spinner and bar
    for the current one. Elsewhere: one plain line per event.
    """

    def __init__(self, version: str, console: Console | None = None) -> None:
        self.console = console or err_console()
        self.version = version
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._stage: str | None = None
        self._since = time.monotonic()

    def __enter__(self) -> StageDisplay:
        if self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"{self.version} pending", total=len(STAGES) - 1)
        return self

    def event(self, event: dict[str, Any]) -> None:
        """Show one event of the rollout: ``{"stage": ..., "status": ..., "message": ...}``."""
        stage, status, message = str(event.get("stage", "")), str(event.get("status", "")), event.get("message")
        detail = f": {message}" if message else ""
        if self._progress is None or self._task is None:
            # The stage says where the rollout is; of the statuses only a failure adds news.
            said = "failed" if status == "failed" else ""
            words = [self.version, f"{stage:<12}", said, str(message or "")]
            self.console.print(Text(" ".join(filter(None, words)).rstrip()))
            return
        now = time.monotonic()
        if self._stage is not None and stage != self._stage:
            self.console.print(Text(f"  ✓ {self._stage:<12} {now - self._since:5.1f}s", style="green"))
            self._since = now
        self._stage = stage
        step = STAGES.index(stage) if stage in STAGES else 0
        if status == "failed":
            self.console.print(Text(f"  ✗ {stage:<12} {message or ''}", style="red"))
        self._progress.update(self._task, completed=step, description=f"{self.version} {stage}{detail}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
