"""A sandboxed process under a real supervisord: born in its cgroups, as its user, and
stopped gracefully by the keeper's forwarding, or killed whole after stopwaitsecs.

Needs root, bubblewrap and cgroup v1 (as ``make test`` runs); the intruder tests in
tests/security check the same sandbox against attacks.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.config import Settings
from podium.runtime.ports import free_port, wait_for_port
from podium.runtime.sandbox import Sandbox, Size
from podium.runtime.supervisor import ProcessSpec, Supervisor

from .conftest import stop_supervisor

SERVICE, ENV = "sbx", "runtime"
# Serves its pid's view of itself; on TERM says so and ends 0, unless told to ignore TERM.
APP = """\
import http.server, os, signal, sys

def stop(signum, frame):
    print("stopping gracefully", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("IGNORE_TERM") else stop)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getuid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def sandboxed(tmp_path: Path) -> Iterator[tuple[Supervisor, Sandbox, Path]]:
    """A supervisord with the node's sandbox over ``tmp_path`` and an app dir the user owns."""
    sizes = {name: Size(*numbers) for name, numbers in Settings().size_table.items()}
    sandbox = Sandbox(enabled=True, hidden=[tmp_path], state_dir=tmp_path / "node" / "sandbox", sizes=sizes,
                      default_size="standard-1x")
    user = sandbox.ensure_user(SERVICE, ENV)
    app = tmp_path / "deploy" / "app"
    app.mkdir(parents=True)
    (app / "app.py").write_text(APP)
    sandbox.hand_over(app, user)
    supervisor = Supervisor(tmp_path / "sv", sandbox)
    supervisor.ensure_running()
    yield supervisor, sandbox, app
    stop_supervisor(supervisor.run_dir)
    for group in sandbox.state_dir.iterdir() if sandbox.state_dir.is_dir() else ():  # each group's cgroups, now empty
        sandbox.forget(group.name)
    sandbox.remove_user(SERVICE, ENV)


def start(supervisor: Supervisor, sandbox: Sandbox, app: Path, group: str, **environment: str) -> tuple[int, int]:
    """Start the app sandboxed as ``group``; its port and its pid as the host sees it."""
    port = free_port()
    confinement = sandbox.confinement(sandbox.ensure_user(SERVICE, ENV), "basic", readable=(app,), chdir=app)
    spec = ProcessSpec(
        name="web-1", command=f"{sys.executable} app.py", directory=app, stopwaitsecs=1,
        environment={"PORT": str(port), **environment}, log_file=app.parent / "logs" / f"{group}.log",
        confinement=confinement,
    )
    supervisor.add_group(group, [spec])
    supervisor.wait_running(group, timeout=15)
    assert wait_for_port(port, timeout=15)
    (info,) = supervisor.group_status(group)
    assert info.pid is not None
    return port, info.pid


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def emptied(cgroup: Path, timeout: float = 10) -> bool:
    """Whether the last process of ``cgroup`` left it within ``timeout`` (the kernel has no event for it in v1)."""
    deadline = time.monotonic() + timeout
    while (cgroup / "cgroup.procs").read_text().split():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_app_is_born_in_its_own_cgroups_as_its_user(sandboxed: tuple[Supervisor, Sandbox, Path]) -> None:
    supervisor, sandbox, app = sandboxed
    port, pid = start(supervisor, sandbox, app, "sbx_runtime_v1")
    uid = pwd.getpwnam(sandbox.ensure_user(SERVICE, ENV) or "").pw_uid
    assert httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).text == str(uid)
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in Path(f"/proc/{pid}/status").read_text()
    # Each controller: the process's own cgroup below Podium's, holding the limits of its size.
    joined = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            joined[controller] = path
    basic = Settings().size_table["basic"]
    for controller, base in sandbox.cgroups.items():
        assert base / "sbx_runtime_v1" / "web-1" == Path("/sys/fs/cgroup", controller, joined[controller].lstrip("/"))
    folder = {controller: base / "sbx_runtime_v1" / "web-1" for controller, base in sandbox.cgroups.items()}
    assert set(folder) == {"memory", "cpu", "pids"}
    assert int((folder["memory"] / "memory.limit_in_bytes").read_text()) == basic[0] * 1024 * 1024
    assert int((folder["cpu"] / "cpu.shares").read_text()) == basic[1]
    assert int((folder["pids"] / "pids.max").read_text()) == basic[2]
    # Everything of the process is in them, from the keeper down, and nothing else.
    members = {int(p) for p in (folder["pids"] / "cgroup.procs").read_text().split()}
    assert pid in members
    assert len(members) == 4  # the keeper, bwrap, the sandbox's pid 1, the app


@pytest.mark.parametrize("helper", ["podium-drop", "setpriv and env"])
def test_the_app_has_no_privilege_left_and_takes_int_and_quit(
    sandboxed: tuple[Supervisor, Sandbox, Path], helper: str,
) -> None:
    """podium-drop (built by ``make install``) and the setpriv + env it stands in for leave the
    same process: its user and group only, no capability in any set, no new privileges, and
    INT and QUIT at their defaults although the keeper starts the sandbox as a background job."""
    supervisor, sandbox, app = sandboxed
    if helper == "podium-drop":
        assert sandbox.helper is not None, "make install builds .venv/libexec/podium-drop"
    else:
        sandbox.helper = None
    group = f"sbx_runtime_{helper[:3]}"
    _, pid = start(supervisor, sandbox, app, group)
    entry = pwd.getpwnam(sandbox.ensure_user(SERVICE, ENV) or "")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split() == [str(entry.pw_uid)] * 4
    assert status["Gid"].split() == [str(entry.pw_gid)] * 4
    assert status["Groups"].split() == []
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, capabilities
    assert status["NoNewPrivs"].strip() == "1"
    ignored = int(status["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGINT - 1))
    assert not ignored & (1 << (signal.SIGQUIT - 1))
    supervisor.stop_process(group, "web-1")
    assert gone(pid)


SCRATCH = """\
import multiprocessing, os, sys, tempfile
for folder in ("/tmp", "/var/tmp", "/dev/shm"):
    assert not os.path.exists(os.path.join(folder, sys.argv[1])), folder  # the host's file is not there
    with open(os.path.join(folder, sys.argv[2]), "w") as file:
        file.write("written")
tempfile.mkdtemp()
multiprocessing.Lock()  # a POSIX semaphore in /dev/shm
with open("/dev/null", "w") as null:
    null.write("x")
with open("/dev/urandom", "rb") as random:
    assert len(random.read(16)) == 16
print(" ".join(sorted(os.listdir("/dev"))))
"""


def test_the_app_writes_its_own_tmp_and_shared_memory(sandboxed: tuple[Supervisor, Sandbox, Path]) -> None:
    """/tmp, /var/tmp and /dev/shm are the process's own, writable as on the host: what a web
    server's temporary files and Python's multiprocessing need; the host's stay unseen and untouched.
    Its /dev has the usual device nodes and none of the host's others."""
    _, sandbox, app = sandboxed
    host_files = [Path(folder) / f"podium-host-{os.getpid()}" for folder in ("/tmp", "/var/tmp", "/dev/shm")]
    for path in host_files:
        path.write_text("the host's")
    written = f"podium-app-{os.getpid()}"
    try:
        confinement = sandbox.confinement(sandbox.ensure_user(SERVICE, ENV), "basic", readable=(app,), chdir=app)
        done = subprocess.run(
            sandbox.wrap(["/usr/bin/python3", "-c", SCRATCH, host_files[0].name, written], confinement),
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        # A /dev of its own: the usual nodes, none of the host's others.
        assert set(done.stdout.split()) >= {"null", "zero", "full", "random", "urandom", "tty", "shm", "fd"}
        assert not set(done.stdout.split()) & {"kmsg", "fuse", "kvm", "loop-control", "mem", "net"}
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):
            assert not (Path(folder) / written).exists()
    finally:
        for path in host_files:
            path.unlink()


def test_after_a_reboot_the_keeper_makes_its_cgroups_again(sandboxed: tuple[Supervisor, Sandbox, Path]) -> None:
    supervisor, sandbox, app = sandboxed
    port, pid = start(supervisor, sandbox, app, "sbx_runtime_v4")
    supervisor.stop_process("sbx_runtime_v4", "web-1")
    assert gone(pid)
    for base in sandbox.cgroups.values():  # the keeper and bwrap may end just after the app
        assert emptied(base / "sbx_runtime_v4" / "web-1")
    for base in sandbox.cgroups.values():  # what a reboot leaves: the program, and no cgroups
        (base / "sbx_runtime_v4" / "web-1").rmdir()
        (base / "sbx_runtime_v4").rmdir()
    supervisor.start_process("sbx_runtime_v4", "web-1")
    assert wait_for_port(port, timeout=15)  # the app answers: its keeper has joined the cgroups made again
    (info,) = supervisor.group_status("sbx_runtime_v4")
    assert info.pid is not None
    pids = sandbox.cgroups["pids"] / "sbx_runtime_v4" / "web-1"
    assert info.pid in {int(p) for p in (pids / "cgroup.procs").read_text().split()}
    assert int((pids / "pids.max").read_text()) == Settings().size_table["basic"][2]
    memory = sandbox.cgroups["memory"] / "sbx_runtime_v4" / "web-1"
    assert int((memory / "memory.limit_in_bytes").read_text()) == Settings().size_table["basic"][0] * 1024 * 1024


def test_a_stop_reaches_the_app_through_the_keeper(sandboxed: tuple[Supervisor, Sandbox, Path]) -> None:
    supervisor, sandbox, app = sandboxed
    _, pid = start(supervisor, sandbox, app, "sbx_runtime_v2")
    supervisor.stop_process("sbx_runtime_v2", "web-1")
    assert gone(pid)
    (info,) = supervisor.group_status("sbx_runtime_v2")
    assert info.state == "STOPPED"
    assert info.last_exit == "exit 0"
    assert "stopping gracefully" in Path(info.log_file).read_text()


def test_an_app_that_ignores_the_stop_is_killed_with_its_whole_sandbox(
    sandboxed: tuple[Supervisor, Sandbox, Path],
) -> None:
    supervisor, sandbox, app = sandboxed
    _, pid = start(supervisor, sandbox, app, "sbx_runtime_v3", IGNORE_TERM="1")
    init = parent(pid)  # the sandbox's pid 1, below bwrap's outer process, below the keeper
    outer = parent(init)
    supervisor.stop_process("sbx_runtime_v3", "web-1")  # TERM, ignored; SIGKILL after stopwaitsecs (1 s)
    assert gone(pid)
    assert gone(init)
    assert gone(outer)
    (info,) = supervisor.group_status("sbx_runtime_v3")
    assert info.state == "STOPPED"
    assert "stopping gracefully" not in Path(info.log_file).read_text()


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_on_a_nodev_filesystem_the_sandbox_makes_its_own_dev(tmp_path: Path) -> None:
    """A data dir on a filesystem mounted ``nodev`` cannot hold device nodes that work: bwrap's
    ``--dev`` stands in, and the app's /dev works all the same."""
    data = tmp_path / "nodev"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nodev,mode=0700", "tmpfs", str(data)], check=True)
    try:
        sizes = {name: Size(*numbers) for name, numbers in Settings().size_table.items()}
        sandbox = Sandbox(enabled=True, hidden=[data], state_dir=data / "node" / "sandbox", sizes=sizes,
                          default_size="standard-1x")
        confinement = sandbox.confinement(sandbox.ensure_user(SERVICE, ENV), "basic")
        command = sandbox.wrap(["/bin/sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c"], confinement)
        assert command[command.index("--dev") + 1] == "/dev"
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, "4"), done.stderr
    finally:
        subprocess.run(["umount", str(data)], check=True)
        sandbox.remove_user(SERVICE, ENV)


def test_a_stopped_node_leaves_no_cgroup_and_its_apps_start_again_in_new_ones(
    sandboxed: tuple[Supervisor, Sandbox, Path],
) -> None:
    supervisor, sandbox, app = sandboxed
    port, _ = start(supervisor, sandbox, app, "sbx_runtime_v5")
    supervisor.shutdown()  # what `podium node stop` does
    for base in sandbox.cgroups.values():
        assert not (base / "sbx_runtime_v5").exists()
    supervisor.ensure_running()  # the next start: supervisord starts the program, its keeper makes the cgroups
    assert wait_for_port(port, timeout=15)
    supervisor.wait_running("sbx_runtime_v5", timeout=15)
    (info,) = supervisor.group_status("sbx_runtime_v5")
    pids = sandbox.cgroups["pids"] / "sbx_runtime_v5" / "web-1"
    assert info.pid in {int(p) for p in (pids / "cgroup.procs").read_text().split()}
