"""One supervisord per node: started detached by Podium, controlled over its unix socket.

supervisord daemonizes into its own session, so it and the apps it runs outlive the
Podium process that started it; a later ``Supervisor`` on the same ``run_dir`` finds it
through its socket. A process group is one file ``programs/<group>.conf`` that
supervisord includes; each process's environment lives in ``env/<group>/<name>.sh``
(mode 0600) and is sourced by ``/bin/sh`` before ``exec`` of the Procfile command, so
values never have to survive supervisord's ``environment=`` quoting and never show up
in ``ps``. Each process starts through ``podium.runtime.stamp``, which writes its output
to ``ProcessSpec.log_file`` with a UTC timestamp on every line and rotates it by size,
then ``exec``s the command, so supervisord still signals the app itself; once the app's
output closes, the stamper wakes supervisord, which then reaps (and restarts) it at once.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import Faults, SupervisorTransport

from podium.errors import Conflict, Invalid, NotFound
from podium.osutil import alive, atomic_write, proc_stat, tail, write_private
from podium.runtime import RuntimeFailure
from podium.runtime.sandbox import Confinement, Sandbox
from podium.runtime.stamp import BACKUPS, start_command, wait_closed

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SOCKET_PATH_MAX = 100  # Linux limits AF_UNIX paths to 108 bytes
START_TIMEOUT = 15.0
RPC_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
FIRST_STOP_POLL = 0.002  # a stopped app is usually gone within milliseconds: look soon, then back off
EXIT_POLL = 0.001  # /proc reads only, while a stopped group's processes exit
STOP_TIMEOUT = 30.0  # longer than any process's stopwaitsecs, after which supervisord kills it
STOPPED_STATES = {"STOPPED", "EXITED", "FATAL", "UNKNOWN"}
LOG_TAIL_LINES = 20
LOG_CLOSE_SECONDS = 1.0  # how long a failure report waits for a dead process's last lines
# supervisord, and so every app, starts from this environment rather than from the
# environment of whichever Podium process happened to start it: the same on every start,
# and none of Podium's own settings leak into apps. Apps add to it through ProcessSpec.
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ProcessSpec:
    """One process of a group: a Procfile command with its directory, environment and log.

    ``log_file`` gets stdout and stderr, every line timestamped; at ``log_max_bytes`` (0:
    never) it moves to ``<log_file>.1``, and that one to ``.2``, the oldest kept.
    """

    name: str
    command: str
    directory: Path
    environment: dict[str, str]
    log_file: Path
    log_max_bytes: int = 10 * 1024 * 1024
    autorestart: bool = True
    stopwaitsecs: int = 10
    startretries: int = 3
    confinement: Confinement | None = None  # its user, size and view of the files (runtime.sandbox)

    def __post_init__(self) -> None:
        _check_name("process", self.name)
        if not self.command.strip() or any(c in self.command for c in "\n\r\0"):
            raise Invalid(f"process {self.name!r}: the command must be one non-empty line")
        for key, value in self.environment.items():
            if not ENV_KEY_RE.fullmatch(key):
                raise Invalid(f"process {self.name!r}: {key!r} is not a valid environment variable name")
            if "\0" in value:
                raise Invalid(f"process {self.name!r}: the value of {key} contains a NUL byte")
        if self.log_max_bytes < 0 or self.stopwaitsecs < 1 or self.startretries < 0:
            raise Invalid(f"process {self.name!r}: log_max_bytes and startretries must be >= 0, stopwaitsecs >= 1")


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord reports about one process; ``state`` is its statename."""

    group: str
    name: str
    state: str
    pid: int | None
    started_at: float | None
    exit_status: int | None
    log_file: str
    description: str = field(default="", compare=False)
    last_exit: str | None = field(default=None, compare=False)  # "oom", "exit 1", "signal 9"


class Supervisor:
    """The node's supervisord, found (or started) through ``run_dir``."""

    def __init__(self, run_dir: Path, sandbox: Sandbox | None = None) -> None:
        self.run_dir = run_dir.absolute()
        self.sandbox = sandbox
        self.conf_path = self.run_dir / "supervisord.conf"
        self.socket_path = self.run_dir / "supervisor.sock"
        self.pid_path = self.run_dir / "supervisord.pid"
        self.log_path = self.run_dir / "supervisord.log"
        self.programs_dir = self.run_dir / "programs"
        self.env_dir = self.run_dir / "env"
        if len(os.fsencode(self.socket_path)) > SOCKET_PATH_MAX:
            raise Invalid(f"{self.socket_path} is too long for a unix socket; use a shorter run directory")

    def ensure_running(self) -> None:
        """Start supervisord unless its socket answers; return once it does (bounded)."""
        self.programs_dir.mkdir(parents=True, exist_ok=True)
        self.env_dir.mkdir(exist_ok=True)
        with self._lock():
            if self._answers():
                return
            atomic_write(self.conf_path, self._config_text())
            start_log = self.run_dir / "supervisord.start.log"
            supervisord = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf_path)]
            with start_log.open("wb") as sink:
                started = subprocess.run(
                    [sys.executable, "-I", "-m", "podium.runtime.detach", str(self.socket_path), "--", *supervisord],
                    cwd=self.run_dir,
                    env=_base_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    timeout=START_TIMEOUT,
                    check=False,
                )
            if started.returncode != 0:
                raise RuntimeFailure(f"supervisord did not start: {_tail(start_log)}")
            deadline = time.monotonic() + START_TIMEOUT
            while not self._answers():
                if time.monotonic() >= deadline:
                    raise RuntimeFailure(f"supervisord did not answer on {self.socket_path}; see {self.log_path}")
                time.sleep(POLL_INTERVAL)

    def add_group(self, group: str, processes: list[ProcessSpec]) -> None:
        """Write the group's config and start its processes; Conflict if the group exists."""
        _check_name("group", group)
        if not processes:
            raise Invalid(f"process group {group!r} has no processes")
        names = [spec.name for spec in processes]
        if len(set(names)) != len(names):
            raise Invalid(f"process group {group!r} names a process twice: {names}")
        conf = self.programs_dir / f"{group}.conf"
        with self._lock():
            if conf.exists() or group in self.groups():
                raise Conflict(f"process group {group!r} already exists on this node")
            group_env = self.env_dir / group
            group_env.mkdir(parents=True, exist_ok=True)
            for spec in processes:
                _write_env_file(group_env / f"{spec.name}.sh", spec)
                spec.log_file.absolute().parent.mkdir(parents=True, exist_ok=True)
            atomic_write(conf, self._group_text(group, processes))
            try:
                with self._server() as rpc:
                    rpc.reloadConfig()
                    rpc.addProcessGroup(group)
            except (xmlrpc.client.Fault, RuntimeFailure) as err:
                conf.unlink(missing_ok=True)
                shutil.rmtree(group_env, ignore_errors=True)
                if self.sandbox is not None:
                    self.sandbox.forget(group)
                if isinstance(err, RuntimeFailure):
                    raise
                raise RuntimeFailure(f"supervisord refused group {group!r}: {err.faultString}") from err

    def remove_group(self, group: str) -> None:
        """Stop the group's processes (each within its stopwaitsecs), forget the group, delete its files."""
        _check_name("group", group)
        with self._server(timeout=None) as rpc:
            children = _running_children(rpc.getAllProcessInfo(), group)
            _ignore_faults(lambda: rpc.stopProcessGroup(group, False), Faults.BAD_NAME)
            deadline = time.monotonic() + STOP_TIMEOUT
            # Each child's exit is seen in /proc within a millisecond, at no cost to supervisord.
            while any(alive(pid, started) for pid, started in children) and time.monotonic() < deadline:
                time.sleep(EXIT_POLL)
            # supervisord notices a stopped child on its next main-loop pass, once a second
            # unless something wakes it: the app's stamper does as it ends, and so does each
            # status call here, so a stop that takes milliseconds is seen in milliseconds.
            # Looked at at once, then after 2 ms, then less often; bounded by the longest stopwaitsecs.
            pause = FIRST_STOP_POLL
            while time.monotonic() < deadline:
                states = [p["statename"] for p in rpc.getAllProcessInfo() if p["group"] == group]
                if all(state in STOPPED_STATES for state in states):
                    break
                time.sleep(pause)
                pause = min(pause * 1.5, POLL_INTERVAL)
            else:
                _ignore_faults(lambda: rpc.stopProcessGroup(group, True), Faults.BAD_NAME)
            _ignore_faults(lambda: rpc.removeProcessGroup(group), Faults.BAD_NAME)
        with self._lock():
            (self.programs_dir / f"{group}.conf").unlink(missing_ok=True)
            shutil.rmtree(self.env_dir / group, ignore_errors=True)
            if self.sandbox is not None:
                self.sandbox.forget(group)

    def group_status(self, group: str) -> list[ProcessInfo]:
        """The group's processes as supervisord sees them now; NotFound if it has none."""
        infos = [info for info in self._all_info() if info.group == group]
        if not infos:
            raise NotFound(f"process group {group!r} is not running on this node")
        return infos

    def groups(self) -> list[str]:
        """Names of the process groups supervisord runs."""
        return sorted({info.group for info in self._all_info()})

    def all_status(self) -> list[ProcessInfo]:
        """Every process of every group, as supervisord sees them now (one call)."""
        return self._all_info()

    def wait_running(self, group: str, timeout: float) -> list[ProcessInfo]:
        """Poll until every process of the group is RUNNING; RuntimeFailure, with the
        failing processes' last log lines, when one is FATAL or EXITED or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            infos = self.group_status(group)
            failed = [info for info in infos if info.state in ("FATAL", "EXITED")]
            if failed:
                for info in failed:  # its last words may still be on their way to the log
                    wait_closed(Path(info.log_file), LOG_CLOSE_SECONDS)
                raise RuntimeFailure(f"process group {group!r} did not start:\n{_describe(failed)}")
            if all(info.state == "RUNNING" for info in infos):
                return infos
            if time.monotonic() >= deadline:
                waiting = [info for info in infos if info.state != "RUNNING"]
                raise RuntimeFailure(
                    f"process group {group!r} was not RUNNING after {timeout:g}s:\n{_describe(waiting)}"
                )
            time.sleep(POLL_INTERVAL)

    def stop_process(self, group: str, name: str) -> None:
        """Stop one process and wait until it has stopped; no error if it was not running."""
        with self._server(timeout=None) as rpc:
            self._call_process(lambda: rpc.stopProcess(f"{group}:{name}", True), group, name, Faults.NOT_RUNNING)

    def start_process(self, group: str, name: str) -> None:
        """Start one process and wait until it is RUNNING; no error if it already runs."""
        with self._server(timeout=None) as rpc:
            self._call_process(lambda: rpc.startProcess(f"{group}:{name}", True), group, name, Faults.ALREADY_STARTED)

    def shutdown(self) -> None:
        """Stop every process, then supervisord itself, and wait until it is gone; no-op if not running."""
        if not self._answers():
            return
        with self._server() as rpc:
            pid = int(rpc.getPID())
            rpc.shutdown()
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        while alive(pid):
            if time.monotonic() >= deadline:
                raise RuntimeFailure(f"supervisord (pid {pid}) still runs {SHUTDOWN_TIMEOUT:g}s after shutdown")
            time.sleep(POLL_INTERVAL)
        # Every process is gone: so are the cgroups they ran in (their keepers make them again
        # when the node starts), rather than be left in the kernel for good.
        if self.sandbox is not None:
            for group in self.sandbox.groups():
                self.sandbox.release_cgroups(group, wait=STOP_TIMEOUT)

    # -- internals -------------------------------------------------------------------

    def _call_process(self, call: Callable[[], object], group: str, name: str, harmless: int) -> None:
        try:
            call()
        except xmlrpc.client.Fault as err:
            if err.faultCode == harmless:
                return
            if err.faultCode == Faults.BAD_NAME:
                raise NotFound(f"process {group}:{name} is not on this node") from err
            infos = [info for info in self.group_status(group) if info.name == name]
            raise RuntimeFailure(f"process {group}:{name}: {err.faultString}\n{_describe(infos)}") from err

    def _all_info(self) -> list[ProcessInfo]:
        with self._server() as rpc:
            raw = cast(list[dict[str, Any]], rpc.getAllProcessInfo())
        infos = [_process_info(item) for item in raw]
        if self.sandbox is None or not self.sandbox.enabled:
            return infos
        sandbox = self.sandbox  # the pid of the app below its keeper, as the host sees it
        confined = {group for group in {info.group for info in infos} if sandbox.confines(group)}
        return [
            replace(info, pid=sandbox.app_pid(info.pid), last_exit=sandbox.last_exit(info.group, info.name))
            if info.group in confined else info
            for info in infos
        ]

    def _answers(self) -> bool:
        try:
            with self._server(timeout=2.0) as rpc:
                state = cast(dict[str, Any], rpc.getState())
        except RuntimeFailure:
            return False
        return state.get("statename") == "RUNNING"

    @contextmanager
    def _server(self, timeout: float | None = RPC_TIMEOUT) -> Iterator[Any]:
        """supervisord's ``supervisor`` RPC namespace over a fresh connection."""
        path = str(self.socket_path)
        transport = SupervisorTransport(serverurl=f"unix://{path}")
        transport._get_connection = lambda: _UnixConnection(path, timeout)
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        try:
            yield proxy.supervisor
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as err:
            raise RuntimeFailure(f"supervisord does not answer on {path}: {err}") from err
        finally:
            transport.close()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise starts and config changes across threads and Podium processes."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "supervisord.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _config_text(self) -> str:
        run = _ini(str(self.run_dir))
        return f"""; Written by Podium each time it starts supervisord.
[unix_http_server]
file = {_ini(str(self.socket_path))}
chmod = 0700

[supervisord]
; in the foreground of the session podium.runtime.detach made for it, reaping orphans
nodaemon = true
silent = true
logfile = {_ini(str(self.log_path))}
logfile_maxbytes = 10MB
logfile_backups = 2
loglevel = info
pidfile = {_ini(str(self.pid_path))}
childlogdir = {run}
directory = {run}
umask = 022
identifier = podium

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{_ini(str(self.socket_path))}

[include]
files = programs/*.conf
"""

    def _group_text(self, group: str, processes: list[ProcessSpec]) -> str:
        # Program sections are global in supervisord, so each is named <group>@<name>;
        # process_name keeps the name inside the group plain (`group:web-1`).
        programs = [f"{group}@{spec.name}" for spec in processes]
        lines = [
            f"; Written by Podium: process group {group}.",
            f"[group:{group}]",
            f"programs = {','.join(programs)}",
        ]
        for program, spec in zip(programs, processes, strict=True):
            env_file = self.env_dir / group / f"{spec.name}.sh"
            if self.sandbox is not None and self.sandbox.enabled and spec.confinement is not None:
                # The keeper is a few kilobytes of shell: in a file of its own (root's, 0600), since
                # supervisord splits a program's command line with shlex on every start, about
                # 2 ms for one that long.
                keeper = self.env_dir / group / f"{spec.name}.keeper"
                write_private(keeper, self.sandbox.program(
                    group, spec.name, spec.confinement, env_file, shell_line(spec.command)))
                shell = ["/bin/sh", str(keeper)]
                # The sandbox's keeper forwards the stop signal to the app (runtime.sandbox): sent
                # to the whole group, it would also end bwrap, and with it the app at once.
                stop_as_group = "false"
            else:
                shell = ["/bin/sh", "-c", f". {shlex.quote(str(env_file))} && {shell_line(spec.command)}"]
                stop_as_group = "true"
            log_file = str(spec.log_file.absolute())
            command = start_command(sys.executable, [
                *("--max-bytes", str(spec.log_max_bytes), "--backups", str(BACKUPS)),
                *("--wake", str(self.socket_path), log_file, "--", *shell),
            ])
            lines += [
                "",
                f"[program:{program}]",
                f"process_name = {spec.name}",
                f"command = {_ini(_command_line(command))}",
                f"directory = {_ini(str(spec.directory.absolute()))}",
                "autostart = true",
                f"autorestart = {'true' if spec.autorestart else 'false'}",
                "startsecs = 1",
                f"startretries = {spec.startretries}",
                "stopsignal = TERM",
                f"stopwaitsecs = {spec.stopwaitsecs}",
                f"stopasgroup = {stop_as_group}",
                "killasgroup = true",
                # The stamper writes and rotates the log; supervisord only catches what is
                # printed before it takes over (a stamper that cannot start says why there).
                "redirect_stderr = true",
                f"stdout_logfile = {_ini(log_file)}",
                "stdout_logfile_maxbytes = 0",
                "stdout_logfile_backups = 0",
            ]
        return "\n".join(lines) + "\n"


def _running_children(infos: list[dict[str, Any]], group: str) -> list[tuple[int, int]]:
    """(pid, starttime) of the group's processes that run, from supervisord's process info."""
    children = []
    for info in infos:
        fields = proc_stat(int(info["pid"])) if info["group"] == group and info["pid"] else None
        if fields is not None:
            children.append((int(info["pid"]), int(fields[19])))
    return children


def shell_line(command: str) -> str:
    """How ``/bin/sh`` runs a Procfile command: ``exec`` it when it is one simple command,
    so supervisord's pid is the app's; otherwise (``cd x && app``, ``a; b``, ``VAR=1 app``)
    hand it whole to a shell, as Heroku does. stopasgroup/killasgroup reach the app either way."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say what is wrong
        return f"exec /bin/sh -c {shlex.quote(command)}"
    compound = any(token and set(token) <= set("();<>|&") for token in tokens)
    assignment = bool(tokens) and ENV_KEY_RE.fullmatch(tokens[0].split("=", 1)[0]) is not None and "=" in tokens[0]
    if compound or assignment:
        return f"exec /bin/sh -c {shlex.quote(command)}"
    return f"exec {command}"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over supervisord's unix socket, with a timeout (supervisor's own has none)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _check_name(kind: str, name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise Invalid(f"{kind} name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)")


def _command_line(argv: list[str]) -> str:
    """``argv`` quoted for supervisord, which cuts a line at ``;`` or ``#`` after whitespace
    (its inline comments) even inside quotes: each such character starts a quoted piece of
    its own, right after the previous piece's closing quote, so no whitespace precedes it
    and its shlex split still gives ``argv`` back."""
    return " ".join(
        "".join(shlex.quote(piece) for piece in re.split(r"(?<=\s)(?=[;#])", arg)) if arg else "''"
        for arg in argv
    )


def _ini(value: str) -> str:
    """A value for supervisord's config: one line, '%' escaped from its interpolation."""
    if any(c in value for c in "\n\r\0"):
        raise Invalid(f"{value!r} cannot be written to a supervisord config")
    return value.replace("%", "%%")


def _ignore_faults(call: Callable[[], object], *codes: int) -> None:
    try:
        call()
    except xmlrpc.client.Fault as err:
        if err.faultCode not in codes:
            raise RuntimeFailure(f"supervisord: {err.faultString}") from err


def _base_environment() -> dict[str, str]:
    user = pwd.getpwuid(os.getuid())
    return {"PATH": BASE_PATH, "LANG": "C.UTF-8", "HOME": user.pw_dir, "USER": user.pw_name}


def _write_env_file(path: Path, spec: ProcessSpec) -> None:
    lines = [f"# Written by Podium: the environment of process {spec.name}."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(spec.environment.items())]
    write_private(path, "\n".join(lines) + "\n")


def _process_info(item: dict[str, Any]) -> ProcessInfo:
    state = str(item["statename"])
    stopped = state not in ("RUNNING", "STARTING") and int(item.get("stop", 0)) > 0
    return ProcessInfo(
        group=str(item["group"]),
        name=str(item["name"]),
        state=state,
        pid=int(item["pid"]) or None,
        started_at=float(item["start"]) or None,
        exit_status=int(item["exitstatus"]) if stopped else None,
        log_file=str(item.get("stdout_logfile", "")),
        description=str(item.get("description", "")),
    )


def _describe(infos: list[ProcessInfo]) -> str:
    """Each process's state and the last lines of its log: what a failed deploy shows."""
    return "\n".join(
        f"{i.group}:{i.name} is {i.state} ({i.description}); last lines of {i.log_file}:\n{_tail(Path(i.log_file))}"
        for i in infos
    )


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(f"  | {line}" for line in tail(path, lines)) or "  (empty)"
