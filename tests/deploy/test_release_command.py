"""The release command starts only once Podium has recorded its pid: if Podium dies before
that, the command never runs, so nothing runs that start-up recovery could not find."""

from __future__ import annotations

import subprocess
from pathlib import Path

from podium.runtime.release_command import RELEASE_COMMAND_GATE


def gated(command: str, tmp_path: Path, stdin: bytes) -> int:
    """Run ``command`` behind the gate, feeding it ``stdin`` and then end of file."""
    done = subprocess.run(
        ["/bin/sh", "-c", RELEASE_COMMAND_GATE, command], input=stdin, cwd=tmp_path, timeout=30, check=False
    )
    return done.returncode


def test_without_go_the_command_never_runs(tmp_path: Path) -> None:
    assert gated("touch ran", tmp_path, b"") != 0  # Podium died: the pipe closed without a word
    assert not (tmp_path / "ran").exists()


def test_with_go_the_command_runs_and_its_status_is_kept(tmp_path: Path) -> None:
    assert gated("touch ran; cat; exit 4", tmp_path, b"go\n") == 4
    assert (tmp_path / "ran").exists()
