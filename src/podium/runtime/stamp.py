"""Process logs: every line timestamped, files rotated by size.

supervisord starts each app process as::

    python -I -m podium.runtime.stamp --max-bytes N [--wake SOCKET] LOG -- COMMAND...

(or the equivalent ``python -I -S -c`` line of ``start_command``, which starts faster).

That process opens ``LOG``, forks a *stamper*, points its own stdout and stderr at a pipe
to it and then ``exec``s ``COMMAND``. So the app keeps the pid supervisord started:
signals, ``stopasgroup``/``killasgroup``, exit statuses and the pid Podium reports are
exactly what they would be without the stamper. The stamper reads the pipe and appends
every line to ``LOG`` as ``2026-11-28T04:20:00.123456Z <text>`` (UTC, the time it read
the line); it ignores the signals a stop sends to the process group and ends at
end-of-file, once the app and everything that inherited its output are gone, after
writing the last lines. A slow disk slows the app down (the pipe fills up) rather than
losing lines. With ``--wake``, the stamper's last act is a call on supervisord's socket:
supervisord notices a dead child only when something wakes its loop (otherwise once a
second), so the call gets a crashed app restarted, or a stopped one reported, at once.

``StampedOutput`` does the same, from a thread, for a command the caller runs to
completion (the release command). ``wait_closed`` waits until no stamper writes to a log
any more.
"""

from __future__ import annotations

import fcntl
import math
import os
import select
import sys
import time

# Every app starts through this module, so it imports little: neither typing, pathlib,
# collections nor contextlib, which together would double the start-up. (mypy takes any
# name TYPE_CHECKING to be true.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    StrPath = str | os.PathLike[str]

if TYPE_CHECKING:
    import signal
else:  # the same functions and numbers, without the enums that would add a third to the start-up
    import _signal as signal

READ_BYTES = 64 * 1024
PIPE_BYTES = 1024 * 1024  # absorbs a burst before the app has to wait for the stamper
MAX_LINE_BYTES = 64 * 1024  # a longer line without a newline is cut and stamped in pieces
PARTIAL_FLUSH_SECONDS = 0.5  # a line still missing its newline is written after this long
BACKUPS = 2
WAKE_SECONDS = 1.0  # how long the last call on supervisord's socket may take
USAGE = "[--max-bytes N] [--backups K] [--wake SOCKET] LOG -- COMMAND..."
# Sent by supervisord (stop, killasgroup) or a terminal to the app's whole process group;
# the stamper keeps reading until the app has closed its output, so it ignores them all.
IGNORED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGPIPE,
    signal.SIGALRM,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


def stamp(now: float) -> bytes:
    """``2026-11-28T04:20:00.123456Z `` for the Unix time ``now``: what begins every line."""
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%06dZ " % micros


class LineStamper:
    """Cuts a byte stream into lines and puts the time before each one.

    Bytes pass through as they are (invalid UTF-8 included); only ``\\n`` ends a line.
    Times never go backwards within one stamper, so each log file stays in time order.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._partial = bytearray()
        self._last = 0.0

    @property
    def has_partial(self) -> bool:
        """Whether bytes of a line without its newline are waiting."""
        return bool(self._partial)

    def feed(self, data: bytes, now: float) -> bytes:
        """The complete lines ``data`` ends (with what earlier chunks left), stamped."""
        self._partial += data
        cut = self._partial.rfind(b"\n") + 1
        if cut == 0:
            return self.flush(now) if len(self._partial) >= self.max_line else b""
        block = bytes(self._partial[:cut])
        del self._partial[:cut]
        prefix = self._prefix(now)
        return prefix + block[:-1].replace(b"\n", b"\n" + prefix) + b"\n"

    def flush(self, now: float) -> bytes:
        """The waiting partial line, stamped and ended with a newline; empty if none."""
        if not self._partial:
            return b""
        line = self._prefix(now) + bytes(self._partial) + b"\n"
        self._partial.clear()
        return line

    def _prefix(self, now: float) -> bytes:
        self._last = max(self._last, now)
        return stamp(self._last)


class LogFile:
    """An append-only log rotated by size: ``path`` → ``path.1`` → ``path.2`` (``backups``).

    ``max_bytes`` 0 means never rotate. Several writers may share a path (an app restarted
    while the stamper of its previous run still writes its last lines): every write is
    ``O_APPEND``, a rotation happens under a lock on the directory and only by a writer
    that still holds the current file, and the others reopen. Each writer holds a shared
    ``flock`` on its file while it lives; ``wait_closed`` waits for those to go.
    """

    def __init__(self, path: StrPath, max_bytes: int, backups: int = BACKUPS) -> None:
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped_bytes = 0
        self._fd: int | None = None
        self._fd = self._open()

    def write(self, data: bytes) -> None:
        """Append whole lines, rotating first where they would pass ``max_bytes``.

        I/O errors (a full disk, a deleted directory) drop the lines and are counted in
        ``dropped_bytes``; they never raise, since an app must not die of its log.
        """
        if not data:
            return
        try:
            self._write(data)
        except OSError:
            self.dropped_bytes += len(data)
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _write(self, data: bytes) -> None:
        while data:
            size = self._size()
            room = self.max_bytes - size if self.max_bytes else len(data)
            if len(data) <= room:
                _write_all(self._current(), data)
                return
            cut = data.rfind(b"\n", 0, max(room, 0)) + 1
            if cut == 0 and size == 0:  # one line longer than the limit: it gets a file of its own
                cut = data.find(b"\n") + 1 or len(data)
            if cut:
                _write_all(self._current(), data[:cut])
                data = data[cut:]
            if data:
                self._rotate()

    def _current(self) -> int:
        if self._fd is None:
            self._fd = self._open()
        return self._fd

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def _holds_current(self) -> bool:
        mine = os.fstat(self._current())
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)

    def _size(self) -> int:
        """The current file's size, reopening first if another writer rotated it away."""
        if not self._holds_current():
            self.close()
        return os.fstat(self._current()).st_size

    def _rotate(self) -> None:
        directory = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(directory, fcntl.LOCK_EX)
            if self._holds_current():
                if self.backups == 0:
                    os.unlink(self.path)
                for index in range(self.backups, 0, -1):
                    older = f"{self.path}.{index - 1}" if index > 1 else self.path
                    if os.path.exists(older):  # under the lock: no other writer moves it now
                        os.replace(older, f"{self.path}.{index}")
            self.close()
            self._fd = self._open()
        finally:
            os.close(directory)


def backups_of(path: Path, backups: int = BACKUPS) -> list[Path]:
    """``path.1``, ``path.2``…: where ``LogFile`` keeps older lines, newest first."""
    return [path.with_name(f"{path.name}.{index}") for index in range(1, backups + 1)]


def wait_closed(path: StrPath, timeout: float) -> bool:
    """Wait until no writer holds ``path`` (its app and stamper are gone); False on timeout."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)  # flock offers no timeout to wait on
                continue
            return True
    finally:
        os.close(fd)


def pump(fd: int, log: LogFile, stamper: LineStamper) -> None:
    """Copy the pipe ``fd`` into ``log``, stamped, until end-of-file. A line still missing
    its newline is written once it has waited ``PARTIAL_FLUSH_SECONDS``."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    partial_due: float | None = None
    while True:
        now = time.monotonic()
        if partial_due is not None and now >= partial_due:  # even if more keeps coming without a newline
            log.write(stamper.flush(time.time()))
            partial_due = None
        if not poller.poll(None if partial_due is None else math.ceil((partial_due - now) * 1000)):
            continue
        data = os.read(fd, READ_BYTES)
        if not data:
            log.write(stamper.flush(time.time()))
            return
        log.write(stamper.feed(data, time.time()))
        if not stamper.has_partial:
            partial_due = None
        elif partial_due is None:
            partial_due = time.monotonic() + PARTIAL_FLUSH_SECONDS


class StampedOutput:
    """A pipe for a child's stdout and stderr whose lines a thread of this process appends,
    stamped, to ``log_file``: what a command run to completion (the release command) gets.

    Pass ``fileno()`` as ``stdout=`` to ``subprocess.Popen``. ``close()``, or leaving its ``with``,
    drops this process's copy of the write end once the child has its own; ``drain()``
    waits until every process holding it has closed it and every line is written.
    """

    def __init__(self, log_file: StrPath, max_bytes: int = 0) -> None:
        import threading  # here rather than above: the start of every app does without it

        self._log = LogFile(log_file, max_bytes)
        self._read_end, self._write_end = os.pipe()
        self._thread = threading.Thread(target=self._pump, name=f"log {log_file}", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        if self._write_end < 0:
            raise ValueError("the write end of this output is closed")
        return self._write_end

    def close(self) -> None:
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1

    def drain(self, timeout: float) -> bool:
        """Wait until the output is closed everywhere and written; False if still open after
        ``timeout`` (a process that escaped its killing still holds it)."""
        self.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> StampedOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pump(self) -> None:
        try:
            pump(self._read_end, self._log, LineStamper())
        except Exception:  # whatever broke, the command must not die writing its output
            _drain(self._read_end)
        finally:
            os.close(self._read_end)
            self._log.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _drain(fd: int) -> None:
    """Read and forget: the app must never block on, or die of, a log nobody writes."""
    try:
        while os.read(fd, READ_BYTES):
            pass
    except OSError:
        pass


def wake(socket_path: str) -> None:
    """Call supervisord on its unix socket (``getState``) and read the answer, so that its
    loop runs now and reaps the app that just ended; no error if it does not answer."""
    import socket  # at the end of the stamper's life, never on an app's start

    body = b"<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName></methodCall>"
    request = b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(WAKE_SECONDS)
            conn.connect(socket_path)
            conn.sendall(request + body)
            while conn.recv(READ_BYTES):  # HTTP/1.0: supervisord closes once it has answered
                pass
    except OSError:
        pass


def _start_stamper(read_end: int, write_end: int, log: LogFile, wake_socket: str | None) -> None:
    """Fork the stamper, detached from this process (which becomes the app): it is not the
    app's child, so an app that waits for all its children does not wait for it."""
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                for signum in IGNORED_SIGNALS:
                    signal.signal(signum, signal.SIG_IGN)
                os.close(write_end)
                null = os.open(os.devnull, os.O_RDWR)
                for std in (0, 1, 2):
                    os.dup2(null, std)
                try:
                    pump(read_end, log, LineStamper())
                except BaseException:  # whatever broke, keep the app's pipe drained
                    _drain(read_end)
                if wake_socket:  # the app and all that shared its output are gone
                    wake(wake_socket)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _complain(message: str, *, stamped: bool) -> None:
    """Say what went wrong on stderr: supervisord's capture of the log (which needs the
    time added) or, once the stamper runs, its pipe (which adds it)."""
    line = f"podium: {message}\n".encode(errors="replace")
    try:  # noqa: SIM105 - contextlib stays out of the start-up
        os.write(2, stamp(time.time()) + line if stamped else line)
    except OSError:
        pass


class Arguments:
    """What the command line says: the log, its rotation, the socket to wake, the command."""

    def __init__(self, log: str, max_bytes: int, backups: int, wake: str | None, command: list[str]) -> None:
        self.log = log
        self.max_bytes = max_bytes
        self.backups = backups
        self.wake = wake
        self.command = command


def parse_arguments(argv: Sequence[str]) -> Arguments:
    """``[--max-bytes N] [--backups K] [--wake SOCKET] LOG -- COMMAND...``

    Parsed by hand: argparse would add a third to the start-up every app waits for.
    """
    options = {"--max-bytes": "0", "--backups": str(BACKUPS), "--wake": ""}
    words = list(argv)
    try:
        split = words.index("--")
        while words[0] in options:
            options[words[0]] = words[1]
            del words[:2]
            split -= 2
        (log,) = words[:split]
        command = words[split + 1 :]
        max_bytes, backups = int(options["--max-bytes"]), int(options["--backups"])
    except (ValueError, IndexError):
        command, max_bytes, backups = [], 0, 0
    if not command or min(max_bytes, backups) < 0:
        raise SystemExit(f"usage: python -m podium.runtime.stamp {USAGE}")
    return Arguments(log, max_bytes, backups, options["--wake"] or None, command)


def start_command(python: str, arguments: Sequence[str]) -> list[str]:
    """The command line that runs ``main`` with ``arguments``: this file run by ``python``
    without ``site`` and without the package around it, which halves the start-up that
    every app start waits for (``python -I -m podium.runtime.stamp`` does the same, slower)."""
    here = os.path.dirname(os.path.abspath(__file__))
    # Appended, not prepended: the standard library's modules win over any file next to this one.
    code = f"import sys; sys.path.append({here!r}); import stamp; stamp.main()"
    return [python, "-I", "-S", "-c", code, *arguments]


def main(args: Sequence[str] | None = None) -> None:
    """``python -m podium.runtime.stamp [--max-bytes N] [--backups K] [--wake SOCKET] LOG -- COMMAND...``"""
    parsed = parse_arguments(sys.argv[1:] if args is None else args)
    log_path, max_bytes, backups, command = parsed.log, parsed.max_bytes, parsed.backups, parsed.command
    try:
        log = LogFile(log_path, max_bytes, backups)
        read_end, write_end = os.pipe()
    except OSError as err:
        _complain(f"cannot write the log {log_path}: {err}; the output stays unstamped", stamped=True)
        piped = False
    else:
        try:  # noqa: SIM105 - contextlib stays out of the start-up
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # the kernel's limit is lower: the default size works, with less slack
        _start_stamper(read_end, write_end, log, parsed.wake)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        os.close(read_end)
        log.close()
        piped = True
    # Python ignores these at start-up; an exec keeps ignored signals ignored, so give the
    # app the defaults it would have had (what subprocess's restore_signals does).
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 - argv Podium wrote into the supervisord config
    except OSError as err:
        _complain(f"cannot run {command[0]}: {err}", stamped=not piped)
        os._exit(127)


if __name__ == "__main__":
    main()
