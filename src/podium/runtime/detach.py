"""Start supervisord detached from Podium, as the reaper of its apps' orphans.

``python -I -m podium.runtime.detach SOCKET -- SUPERVISORD-ARGV...`` forks; the child
leaves the caller's session, becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``,
which ``exec`` keeps) and execs supervisord in the foreground (``nodaemon``). A process
whose parent dies is handed to its nearest subreaper instead of to PID 1: the log stamper
of each app (see ``stamp.py``), which outlives its app by design, and whatever an app
daemonized are reaped by supervisord, rather than left as zombies on machines whose PID 1
reaps nothing (containers, sandboxes). The parent exits once supervisord answers on
``SOCKET`` (status 0) or has exited (status 1), so a bad configuration is reported at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import time
from collections.abc import Sequence

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.02


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def main(args: Sequence[str] | None = None) -> None:
    """``python -m podium.runtime.detach SOCKET -- COMMAND...``"""
    argv = list(sys.argv[1:] if args is None else args)
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -m podium.runtime.detach SOCKET -- COMMAND...")
    socket_path, command = argv[0], argv[2:]
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            os.umask(0o022)
            become_subreaper()
            os.execv(command[0], command)  # noqa: S606 - supervisord argv built by Supervisor
        finally:
            os._exit(127)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        done, _ = os.waitpid(child, os.WNOHANG)
        if done:
            raise SystemExit(1)
        if _answers(socket_path):
            return
        time.sleep(POLL_SECONDS)  # supervisord offers nothing to wait on before its socket
    # Still starting: the caller keeps waiting for the socket and reports if it never answers.


def _answers(path: str) -> bool:
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


if __name__ == "__main__":
    main()
