"""A system user, a bubblewrap sandbox and limits for every app process.

When Podium runs as root, each service environment gets an unprivileged system user of its
own (``pd-<service>-<env>``, made with ``useradd`` on first deploy, removed with the
service). supervisord starts each app process as root through a small ``/bin/sh`` *keeper*
(``Sandbox.program``, a file next to the process's environment file) which:

1. moves itself into the process's own cgroups (memory, cpu, pids: limits from its formation
   size; made again if a reboot removed them; nothing starts if one cannot be joined) and
   sets the rlimits (open files; processes and address space where no cgroup
   stands in for them), so that everything it starts is born inside them;
2. opens the process's environment file (root's, mode 0600) on fd 3;
3. starts ``bwrap``, which mounts the OS read-only, a private ``/tmp``, ``/run``, ``/proc``
   and ``/dev``, an empty tmpfs over Podium's data dir with only the release's app directory
   and virtualenv bound back (read-only), copies fd 3 to ``/run/podium/env`` and, in a new
   PID namespace and a new session, runs ``podium-drop`` (the app's user, no groups, no
   capabilities, no new privileges, and INT and QUIT back to their defaults, which a shell's
   background job ignores) → ``/bin/sh``, which reads the environment and runs the Procfile
   command;
4. forwards the signals supervisord sends (TERM, INT, QUIT, HUP, USR1, USR2) to the app's
   own process group inside the sandbox, and exits with bwrap's status, after writing how
   the app ended (``oom`` when its memory cgroup killed something, else the status) to a
   state file Podium reads for ``last_exit``.

Why the keeper: bwrap's outer process stays the parent of the sandbox but dies of any
signal it gets (it forwards none), and the sandbox's pid 1 ignores what it has no handler
for; a stop signal to bwrap would end it at once and, through ``--die-with-parent``, SIGKILL
the app mid-shutdown. So supervisord sends the stop signal to the keeper alone (its program
has ``stopasgroup = false``), and the keeper's forwarding is what reaches the app; a SIGKILL
(``killasgroup`` after ``stopwaitsecs``) still takes the keeper and bwrap, and through
``--die-with-parent`` everything below them. ``app_pid`` finds the app's host pid below the
keeper.

Every step costs milliseconds of every start, so the chain is as short as it can be kept:
no ``setsid`` (the stop signal reaches the keeper alone anyway), no ``prlimit`` (the keeper's
shell sets the rlimits), and the cgroups are joined by the keeper's own thread (``echo 0 >
tasks``), the one way to join a cgroup v1 without waiting for an RCU grace period.

``podium-drop`` is a small static C program (``podium-drop.c`` here, built by ``make install``
into ``<venv>/libexec``): one exec instead of ``setpriv`` then ``env --default-signal``, the
same properties, about 1.5 ms less. Where it was not built, those two run instead.

Without root, users cannot be switched: the sandbox (bwrap in a user namespace, when the
kernel allows) and rlimits still apply; ``notice`` says so in one line. ``enabled=False``
(``PODIUM_SANDBOX=off``) runs processes exactly as before: the baseline of the benchmark.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import re
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from podium.config import Settings
from podium.errors import Invalid
from podium.runtime import RuntimeFailure

log = logging.getLogger(__name__)

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
ENV = "/usr/bin/env"
PRLIMIT = "/usr/bin/prlimit"
USER_PREFIX = "pd-"
USER_MAX = 32  # useradd's limit on a user name
ROUTER_USER = "podium-router"
ENV_INSIDE = "/run/podium/env"
ULIMIT_FLAGS = {"nofile": "n", "nproc": "p", "as": "v"}  # dash's ulimit flags (-v in KiB)
FORWARDED_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2")
CONTROLLERS = ("memory", "cpu", "pids")
# Hidden from every app in any case: other users' homes and the host's runtime sockets.
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/run", "/home", "/root")  # noqa: S108 - mounted over, not written
# Where an app writes its temporary files and shared memory: each process's own tmpfs,
# world-writable and sticky as on the host, each at most the process's memory in size.
SCRATCH_DIRS = ("/tmp", "/var/tmp")  # noqa: S108 - each process's own tmpfs
SHARED_MEMORY = "/dev/shm"  # noqa: S108 - each process's own tmpfs
USER_RE = re.compile(r"[a-z][a-z0-9-]*")
# Every sandbox's /dev: what bwrap's --dev makes (name, major, minor), without a devpts.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
# Built by `make install` from podium-drop.c next to this module; setpriv + env stand in without it.
DROP_HELPER = Path(sys.prefix) / "libexec" / "podium-drop"
Knobs = list[tuple[str, int]]  # a cgroup's limits: (file, value)


@dataclass(frozen=True)
class Size:
    """A formation size: what one process of that size may use."""

    memory_mb: int
    cpu_shares: int
    processes: int
    open_files: int


@dataclass(frozen=True)
class Confinement:
    """How one process runs: as ``user`` (None: Podium's own), at ``size``, seeing only
    ``readable`` (bound read-only) and ``writable`` (bound read-write) of Podium's data."""

    user: str | None
    size_name: str
    size: Size
    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    chdir: Path | None = None


def user_name(service: str, env: str) -> str:
    """``pd-<service>-<env>``; a digest replaces the tail when that is over 32 characters."""
    name = f"{USER_PREFIX}{service}-{env}".lower()
    if len(name) > USER_MAX or not USER_RE.fullmatch(name):
        digest = hashlib.sha256(f"{service}/{env}".encode()).hexdigest()[:8]
        head = re.sub(r"[^a-z0-9-]", "-", f"{service}-{env}".lower())[: USER_MAX - len(USER_PREFIX) - 9]
        name = f"{USER_PREFIX}{head}-{digest}"
    return name


class Sandbox:
    """Users, cgroups and the bwrap command line of every app process on this node."""

    def __init__(
        self,
        *,
        enabled: bool,
        hidden: Sequence[Path],
        state_dir: Path,
        sizes: Mapping[str, Size],
        default_size: str,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        helper: Path | None = DROP_HELPER,
    ) -> None:
        if default_size not in sizes:
            raise Invalid(f"the default size {default_size!r} is not one of the sizes: {sorted(sizes)}")
        self.enabled = enabled and shutil.which(BWRAP) is not None
        self.wanted = enabled
        self.privileged = os.geteuid() == 0
        self.hidden = tuple(p.absolute() for p in hidden)
        self.state_dir = state_dir.absolute()
        self.sizes = dict(sizes)
        self.default_size = default_size
        self.cgroups = _cgroup_bases(cgroup_root) if self.enabled else {}
        self.helper = helper if helper is not None and os.access(helper, os.X_OK) else None
        # Podium's Python (virtualenvs are built with it) may live under a hidden folder
        # (a pyenv in /root): bound back read-only, it stays usable by every app.
        self.interpreter = tuple(dict.fromkeys(Path(p).absolute() for p in (sys.base_prefix, sys.prefix)))
        self._covered_kept: tuple[list[Path], list[Path]] | None = None
        self._dev_kept: list[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sandbox:
        """The node's sandbox: hides the data dir (and a backup dir outside it) from every app."""
        data_dir = settings.data_dir.absolute()
        hidden = [data_dir, *([settings.addons_backup_dir.absolute()] if settings.addons_backup_dir else [])]
        return cls(
            enabled=settings.sandbox == "on", hidden=hidden, state_dir=data_dir / "node" / "sandbox",
            sizes={name: Size(*numbers) for name, numbers in settings.size_table.items()},
            default_size=settings.default_size,
        )

    # -- what the operator is told ----------------------------------------------------------

    def notice(self) -> str | None:
        """One line on what cannot be isolated here, or None when everything is."""
        if not self.wanted:
            return "sandbox off (PODIUM_SANDBOX=off): apps run as Podium's own user, unconfined"
        if not self.enabled:
            return f"sandbox off: {BWRAP} is missing (apt-get install bubblewrap); apps run unconfined"
        if not self.privileged:
            limits = "cgroups" if self.cgroups else "rlimits"
            return f"not root: apps run as {pwd.getpwuid(os.getuid()).pw_name} in bwrap with {limits}; no user per app"
        return None

    # -- users ----------------------------------------------------------------------------

    def ensure_user(self, service: str, env: str) -> str | None:
        """The environment's system user, made now if missing; None when users cannot be switched."""
        if not (self.enabled and self.privileged):
            return None
        name = user_name(service, env)
        _ensure_system_user(name)
        return name

    def remove_user(self, service: str, env: str) -> None:
        """Remove the environment's user (its processes must be gone); no error if it has none.

        A user that still runs a process this node does not know of (another Podium on the
        same machine, a login) is left in place with a warning: the service is gone all the
        same, and a service made again with that name takes the user over."""
        if not (self.enabled and self.privileged):
            return
        name = user_name(service, env)
        if not _user_exists(name):
            return
        try:
            _run(["userdel", name])
        except RuntimeFailure as exc:
            log.warning("%s kept: %s", name, exc.detail)

    def hand_over(self, path: Path, user: str | None) -> None:
        """Give ``path`` (a release's app dir or virtualenv) to ``user``: readable by it, and by no other app."""
        if user is None or not path.exists():
            return
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)):
                os.lchown(name, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def confinement(
        self,
        user: str | None,
        size: str | None,
        *,
        readable: tuple[Path, ...] = (),
        writable: tuple[Path, ...] = (),
        chdir: Path | None = None,
    ) -> Confinement:
        """The confinement of a process of ``size`` (None: the default); Invalid for an unknown size."""
        name = size or self.default_size
        if name not in self.sizes:
            raise Invalid(f"unknown formation size {name!r}: use one of {', '.join(sorted(self.sizes))}")
        return Confinement(user, name, self.sizes[name], readable, writable, chdir)

    # -- one supervisord program ------------------------------------------------------------

    def program(self, group: str, name: str, confinement: Confinement, env_file: Path, command: str) -> str:
        """The keeper script for one process: supervisord runs it from a file (``/bin/sh FILE``)."""
        cgroups, limits_written = self._make_cgroups(group, name, confinement.size)
        state = self.state_dir / group / f"{name}.exit"
        state.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        memory = cgroups.get("memory")
        inner = f"exec 3<&-; . {ENV_INSIDE} && {command}"
        sandboxed = [
            BWRAP, *self._bwrap_args(confinement), "--",
            *self._drop(confinement.user), "/bin/sh", "-c", inner,
        ]
        q = shlex.quote
        lines = []
        for controller, folder in cgroups.items():
            # A cgroup made now is gone after a reboot, while supervisord still starts the
            # program: the keeper then makes it again (an exec only in that case), and starts
            # nothing outside it. "0" into ``tasks`` moves the writing thread itself: the kernel
            # then needs no global lock and no RCU grace period (a pid into cgroup.procs waits
            # one, 5-15 ms). The keeper is a single-threaded shell, so its thread is the whole
            # process, and everything it starts from here on is born in these cgroups.
            again = " && ".join([f"mkdir -p {q(str(folder))}", *(
                f"echo {value} > {q(str(folder / knob))}" for knob, value in limits_written[controller])])
            complaint = q(f"podium: cannot join the {controller} cgroup {folder}")
            lines.append(
                f"{{ [ -d {q(str(folder))} ] || {{ {again}; }}; }} && echo 0 > {q(str(folder / 'tasks'))}"
                f" || {{ echo {complaint} >&2; exit 125; }}"
            )
        # The rlimits, set by the keeper's shell (one exec less than prlimit), pass to the app.
        limits = self._rlimits(confinement.size, memory is not None, confinement.user)
        for name, value in limits.items():
            lines.append(f"ulimit -{ULIMIT_FLAGS[name]} {value // 1024 if name == 'as' else value}")
        counter = ""
        if memory is not None:  # the OOM kills of the process's cgroup, read before and after it runs
            control = q(str(memory / "memory.oom_control"))
            counter = f"o=0; while read -r k v; do [ \"$k\" = oom_kill ] && o=$v; done < {control}"
            lines.append(counter.replace("o=", "o0="))
        lines += [
            f"exec 3< {q(str(env_file))}",
            f"{shlex.join(sandboxed)} &",
            "b=$!",
            "exec 3<&-",
            # supervisord signals the keeper alone (stopasgroup is off for a sandboxed process):
            # bwrap (b) → the sandbox's pid 1, which leads the session and process group the app
            # is in; pid 1 itself ignores the signals it has no handler for, so only the app
            # (and what it started) gets them. Before the sandbox is up, bwrap itself gets them.
            # (/proc's children file has no newline at its end: read fails there, yet sets i.)
            "fwd() { i=; read -r i _ < /proc/$b/task/$b/children;"
            " [ -n \"$i\" ] && kill -s $1 -- -$i 2>/dev/null || kill -s $1 $b 2>/dev/null; }",
            *(f"trap 'fwd {sig}' {sig}" for sig in FORWARDED_SIGNALS),
            "while :; do wait $b; s=$?; kill -0 $b 2>/dev/null || break; done",
        ]
        if counter:
            lines += [counter, 'if [ "$o" -gt "$o0" ]; then r=oom; else r="exit $s"; fi']
        else:
            lines.append('r="exit $s"')
        lines += [f"echo \"$r\" > {q(str(state))}", "exit $s"]
        return "\n".join(lines) + "\n"

    def confines(self, group: str) -> bool:
        """Whether ``group``'s processes run sandboxed (platform processes, like PostgreSQL, do not)."""
        return (self.state_dir / group).is_dir()

    def last_exit(self, group: str, name: str) -> str | None:
        """How the process last ended: ``oom`` (killed at its memory limit), ``exit N``; None if it never did."""
        try:
            text = (self.state_dir / group / f"{name}.exit").read_text().strip()
        except OSError:
            return None
        if text.startswith("exit ") and text[5:].isdigit() and int(text[5:]) > 128:
            return f"signal {int(text[5:]) - 128}"
        return text or None

    def forget(self, group: str) -> None:
        """Remove a stopped group's cgroups and state files."""
        self.release_cgroups(group)
        shutil.rmtree(self.state_dir / group, ignore_errors=True)

    def release_cgroups(self, group: str, *, wait: float = 0) -> None:
        """Remove a stopped group's cgroups, keeping what it ran as: a keeper started again makes
        them again. ``wait``: seconds to give processes still ending (a sandbox killed with its keeper)."""
        deadline = time.monotonic() + wait
        for base in self.cgroups.values():
            folder = base / group
            if folder.is_dir():
                for child in folder.iterdir():
                    if child.is_dir():
                        # cgroup v1 has no event for "empty": looked at every 10 ms, for ``wait`` at most
                        while _has_processes(child) and time.monotonic() < deadline:
                            time.sleep(0.01)
                        _rmdir(child)
                _rmdir(folder)

    def groups(self) -> list[str]:
        """The groups that have run sandboxed on this node (and not been forgotten)."""
        if not self.state_dir.is_dir():
            return []
        return sorted(entry.name for entry in self.state_dir.iterdir() if entry.is_dir())

    # -- a command run to its end (virtualenv build, release command) ------------------------

    def wrap(self, argv: Sequence[str], confinement: Confinement) -> list[str]:
        """``argv`` in the sandbox (without a keeper: the caller waits for it and kills its session)."""
        if not self.enabled:
            return list(argv)
        return [
            BWRAP, *self._bwrap_args(confinement, env_file=False), "--",
            *self._limits(confinement.size, False, confinement.user), *self._drop(confinement.user), *argv,
        ]

    # -- what ps shows ------------------------------------------------------------------------

    def app_pid(self, pid: int | None) -> int | None:
        """The host pid of the app below supervisord's ``pid`` (the keeper's); ``pid`` itself when
        unsandboxed; None while there is no app below the keeper (starting, or just ended)."""
        if pid is None or not self.enabled:
            return pid
        # keeper → bwrap (its only child) → the sandbox's pid 1 (a session of its own) → the app
        outers = _children(pid)
        inits = _children(outers[0]) if outers else []
        apps = _children(inits[0]) if inits else []
        return apps[0] if apps else None

    # -- internals ---------------------------------------------------------------------------

    def _bwrap_args(self, confinement: Confinement, *, env_file: bool = True) -> list[str]:
        args = ["--ro-bind", "/", "/", *self._dev, "--proc", "/proc"]
        covered, hidden_interpreter = self._covered
        scratch = str(confinement.size.memory_mb * 1024 * 1024)
        for folder in covered:
            if str(folder) in SCRATCH_DIRS:
                args += ["--perms", "1777", "--size", scratch]
            args += ["--tmpfs", str(folder)]
        args += ["--perms", "1777", "--size", scratch, "--tmpfs", SHARED_MEMORY]
        made: set[Path] = set()
        readable = (*confinement.readable, *hidden_interpreter)
        for path in (*readable, *confinement.writable):
            # bwrap makes the folders leading to a bind mount in a tmpfs 0700 (under a
            # umask of 077): the app's user could not reach its own files. Make them 0755.
            under = [c for c in covered if path.is_relative_to(c) and path != c]
            if under:
                top = max(under, key=lambda c: len(c.parts))
                for parent in reversed(path.parents):
                    if parent.is_relative_to(top) and parent != top and parent not in made:
                        made.add(parent)
                        args += ["--perms", "0755", "--dir", str(parent)]
        for path in readable:
            args += ["--ro-bind", str(path), str(path)]
        for path in confinement.writable:
            args += ["--bind", str(path), str(path)]
        if env_file:
            args += ["--perms", "0444", "--file", "3", ENV_INSIDE]
        if confinement.chdir is not None:
            args += ["--chdir", str(confinement.chdir)]
        # PID and IPC namespaces of its own; the hostname and the cgroup path are no secret,
        # and each namespace more costs milliseconds of every start.
        args += ["--unshare-pid", "--unshare-ipc"]
        return [*args, "--new-session", "--die-with-parent"]

    @property
    def _covered(self) -> tuple[list[Path], list[Path]]:
        """The folders each sandbox mounts an empty tmpfs over, and the parts of Podium's Python
        under them (bound back): the same for every process, so kept once every hidden folder exists."""
        if self._covered_kept is not None:
            return self._covered_kept
        covered: list[Path] = []
        for folder in map(Path, (*PRIVATE_DIRS, *map(str, self.hidden))):
            # Each mount costs milliseconds of every start: none inside a tmpfs already there.
            if folder.is_dir() and not any(folder.is_relative_to(c) for c in covered):
                covered.append(folder)
        found = covered, [p for p in self.interpreter if any(p.is_relative_to(c) for c in covered)]
        if all(folder.is_dir() for folder in self.hidden):
            self._covered_kept = found
        return found

    @property
    def _dev(self) -> list[str]:
        """How a sandbox gets its /dev: never the host's (its world-writable nodes, ``kvm`` and ``fuse``
        among them, would be every app's). As root, a folder made once next to the groups' state
        with bwrap's six device nodes, bound in one mount: 0.7 ms less of every start than bwrap
        making its own (``--dev``: a tmpfs, six bind mounts and a devpts), which is what runs
        without root, or where the data dir's filesystem is mounted ``nodev``. No pseudo-terminals."""
        if self._dev_kept is None:
            self._dev_kept = ["--dev", "/dev"]
            folder = self.state_dir.parent / "sandbox-dev"
            try:
                if self.privileged:
                    if not (folder / "tty").exists():
                        _make_dev(folder)
                    with (folder / "null").open("wb") as null:  # refused where the filesystem is nodev
                        null.write(b"")
                    self._dev_kept = ["--dev-bind", str(folder), "/dev"]
            except OSError as err:
                log.warning("sandboxes make their own /dev (slower): %s cannot serve as one: %s", folder, err)
        return self._dev_kept

    def _rlimits(self, size: Size, memory_cgroup: bool, user: str | None) -> dict[str, int]:
        """prlimit's resource names → limits (address space in bytes)."""
        # Never above the hard limit Podium itself has: raising it may not be allowed here.
        limits = {"nofile": _at_most(resource.RLIMIT_NOFILE, size.open_files)}
        # RLIMIT_NPROC counts every process of the user: only an app's own user can have it
        # (then shared by the environment's processes); the pids cgroup is exact per process.
        if "pids" not in self.cgroups and user is not None:
            limits["nproc"] = _at_most(resource.RLIMIT_NPROC, size.processes)
        if not memory_cgroup:  # address space is a rough stand-in for memory
            limits["as"] = size.memory_mb * 4 * 1024 * 1024
        return limits

    def _limits(self, size: Size, memory_cgroup: bool, user: str | None) -> list[str]:
        limits = self._rlimits(size, memory_cgroup, user)
        return [PRLIMIT, *(f"--{name}={value}" for name, value in limits.items()), "--"]

    def _drop(self, user: str | None) -> list[str]:
        """What becomes ``user`` (None: stays), without capabilities, groups or new privileges,
        INT and QUIT at their defaults, then execs the rest of the command line."""
        if self.helper is not None:
            if user is None:
                return [str(self.helper), "-", "-", "--"]
            entry = pwd.getpwnam(user)
            return [str(self.helper), str(entry.pw_uid), str(entry.pw_gid), "--"]
        signals = [ENV, "--default-signal=INT,QUIT"]
        if user is None:
            return [SETPRIV, "--no-new-privs", "--", *signals]
        return [
            SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--", *signals,
        ]

    def _make_cgroups(self, group: str, name: str, size: Size) -> tuple[dict[str, Path], dict[str, Knobs]]:
        """Each controller's folder for the process, made now with the size's limits; and the
        limits written (a knob the kernel lacks, like memsw without swap accounting, is not)."""
        made: dict[str, Path] = {}
        written: dict[str, Knobs] = {}
        values = {
            "memory": [("memory.limit_in_bytes", size.memory_mb * 1024 * 1024),
                       ("memory.memsw.limit_in_bytes", size.memory_mb * 1024 * 1024)],
            "cpu": [("cpu.shares", size.cpu_shares)],
            "pids": [("pids.max", size.processes)],
        }
        for controller, base in self.cgroups.items():
            folder = base / group / name
            written[controller] = []
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for knob, value in values[controller]:
                    if (folder / knob).exists():
                        (folder / knob).write_text(str(value))
                        written[controller].append((knob, value))
            except OSError as err:
                raise RuntimeFailure(f"cannot set up the {controller} cgroup {folder}: {err}") from err
            made[controller] = folder
        return made, written


def router_user() -> str | None:
    """The user nginx's workers run as when Podium is root (made now if missing); None otherwise."""
    if os.geteuid() != 0:
        return None
    _ensure_system_user(ROUTER_USER)
    return ROUTER_USER


def _make_dev(folder: Path) -> None:
    """``folder`` as a sandbox's /dev (root's, 0755: an app can use the nodes and change nothing),
    made beside it and renamed into place, so that it is whole or absent."""
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    build = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".sandbox-dev-"))
    try:
        build.chmod(0o755)
        for name, major, minor in DEVICES:
            os.mknod(build / name, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            (build / name).chmod(0o666)  # past the umask
        for name in ("shm", "pts"):  # mount points: a tmpfs on shm; nothing on pts
            (build / name).mkdir(mode=0o755)
        for name, target in DEV_LINKS.items():
            (build / name).symlink_to(target)
        build.rename(folder)
    except OSError:
        shutil.rmtree(build, ignore_errors=True)
        if not (folder / "tty").exists():  # made meanwhile by another Podium: fine
            raise


def _at_most(limit: int, wanted: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def _cgroup_bases(root: Path) -> dict[str, Path]:
    """``<controller root>/<this process's cgroup>/podium`` for each v1 controller we may write."""
    bases: dict[str, Path] = {}
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return bases
    paths = {}
    for line in own:
        _, names, path = line.split(":", 2)
        for controller in names.split(","):
            paths[controller] = path
    for controller in CONTROLLERS:
        if controller not in paths or not (root / controller).is_dir():
            continue
        base = root / controller / paths[controller].lstrip("/") / "podium"
        try:
            base.mkdir(exist_ok=True)
        except OSError:
            continue
        if os.access(base, os.W_OK):
            bases[controller] = base
    return bases


def _ensure_system_user(name: str) -> None:
    if _user_exists(name):
        return
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
         "--user-group", name],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0 and not _user_exists(name):  # 9: made meanwhile by another Podium
        raise RuntimeFailure(f"useradd {name} failed: {done.stderr.strip()}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeFailure(f"{' '.join(command)} failed: {done.stderr.strip()}")


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):  # still has a process (being reaped); the next forget removes it
        path.rmdir()


def _has_processes(cgroup: Path) -> bool:
    try:
        return bool((cgroup / "cgroup.procs").read_text().strip())
    except OSError:  # removed meanwhile
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []

