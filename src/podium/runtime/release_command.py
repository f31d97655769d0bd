"""The Procfile's ``release`` command on this machine: run once per release, before any
of its processes start, and never left running by a Podium that died meanwhile.

The command runs in a session of its own, so that it can be killed with every process it
started: on a timeout here, or by start-up recovery (through the pid file) if Podium
itself dies meanwhile. It starts only once the pid file is written: until then it waits
for "go" on its stdin, and a Podium that dies first closes the pipe, so the command never
runs. Nothing of it runs on unwatched. Its output is stamped line by line, like every
process's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from podium.osutil import atomic_write, start_time, tail
from podium.runtime.interface import ReleaseFailed
from podium.runtime.stamp import StampedOutput

# Run "$0" (the release command) once Podium says "go" on stdin; the command gets stdin at its end.
RELEASE_COMMAND_GATE = 'read -r go && [ "$go" = go ] && exec /bin/sh -c "$0"'
DRAIN_SECONDS = 5


def run_release_command(
    command: str, *, app: Path, environment: Mapping[str, str], log: Path, pid_file: Path,
    timeout: float, log_max_bytes: int, confine: Callable[[list[str]], list[str]] | None = None,
) -> None:
    """Run ``command`` in ``app`` to its end; ``ReleaseFailed`` with its last lines when it
    exits non-zero or outlives ``timeout`` (then it is killed with its children). ``confine``
    turns the command line into its sandboxed form (``Sandbox.wrap``)."""
    argv = ["/bin/sh", "-c", RELEASE_COMMAND_GATE, command]
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(app), **environment}
    with StampedOutput(log, log_max_bytes) as sink:
        process = subprocess.Popen(
            confine(argv) if confine is not None else argv, cwd=app, env=env, stdin=subprocess.PIPE,
            stdout=sink.fileno(), stderr=subprocess.STDOUT, start_new_session=True,
        )
    assert process.stdin is not None
    try:
        with process.stdin:
            atomic_write(pid_file, f"{process.pid} {start_time(process.pid)}\n")
            process.stdin.write(b"go\n")
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            process.wait()
            sink.drain(DRAIN_SECONDS)
            raise ReleaseFailed(f"release command timed out after {timeout:.0f}s", last_lines(log)) from None
    finally:
        pid_file.unlink(missing_ok=True)
    sink.drain(DRAIN_SECONDS)  # every line written before the log is read or the next stage starts
    if returncode != 0:
        raise ReleaseFailed(f"release command exited with status {returncode}", last_lines(log))


def stop_orphan_release_command(pid_file: Path) -> int | None:
    """Kill the release command (and its children) a killed Podium left running; its pid, if one was."""
    try:
        pid_text, started_text = pid_file.read_text().split()
        pid, started = int(pid_text), int(started_text)
    except (OSError, ValueError):
        return None
    finally:
        pid_file.unlink(missing_ok=True)
    if start_time(pid) != started:  # gone, and the pid may belong to another process by now
        return None
    kill_group(pid)
    return pid


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def last_lines(path: Path) -> str:
    """The last lines of a log, as a failed release shows them."""
    return "\n".join(tail(path))
