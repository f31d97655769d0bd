"""supervisord runs app processes, restarts crashed ones and outlives Podium's objects."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from podium.errors import Conflict, Invalid, NotFound
from podium.runtime import RuntimeFailure
from podium.runtime.ports import free_port, port_accepts, wait_for_port
from podium.runtime.supervisor import ProcessInfo, Supervisor

from .conftest import StartApp, app_spec, stop_supervisor


def wait_for_restart(sup: Supervisor, group: str, old_pid: int, timeout: float = 15) -> ProcessInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (info,) = sup.group_status(group)
        if info.state == "RUNNING" and info.pid not in (None, old_pid):
            return info
        time.sleep(0.05)
    raise AssertionError(f"{group} was not restarted: {sup.group_status(group)}")


def test_runs_an_app_and_restarts_it_when_it_is_killed(supervisor: Supervisor, start_app: StartApp) -> None:
    app = start_app(supervisor, "hello-v1", "A")
    (info,) = supervisor.group_status("hello-v1")
    assert (info.group, info.name, info.state) == ("hello-v1", "web-1", "RUNNING")
    assert info.pid is not None
    assert info.started_at is not None
    assert info.exit_status is None
    assert httpx.get(f"http://127.0.0.1:{app.port}/", trust_env=False).text == "A"

    os.kill(info.pid, signal.SIGKILL)
    restarted = wait_for_restart(supervisor, "hello-v1", info.pid)
    assert wait_for_port(app.port, timeout=10)
    assert httpx.get(f"http://127.0.0.1:{app.port}/", trust_env=False).text == "A"
    assert "A listening on" in Path(restarted.log_file).read_text()


def test_stops_and_starts_one_process(supervisor: Supervisor, start_app: StartApp) -> None:
    start_app(supervisor, "hello-v1", "A")
    supervisor.stop_process("hello-v1", "web-1")
    assert [i.state for i in supervisor.group_status("hello-v1")] == ["STOPPED"]
    supervisor.stop_process("hello-v1", "web-1")  # already stopped: no error
    supervisor.start_process("hello-v1", "web-1")
    assert [i.state for i in supervisor.group_status("hello-v1")] == ["RUNNING"]
    with pytest.raises(NotFound):
        supervisor.stop_process("hello-v1", "web-9")


def test_supervisord_outlives_the_object_that_started_it(tmp_path: Path, start_app: StartApp) -> None:
    run_dir = tmp_path / "sv"
    try:
        first = Supervisor(run_dir)
        first.ensure_running()
        start_app(first, "hello-v1", "A")
        del first
        gc.collect()

        pid = int((run_dir / "supervisord.pid").read_text())
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()  # daemonized: not a child of this process
        second = Supervisor(run_dir)
        second.ensure_running()  # finds the running one
        assert int((run_dir / "supervisord.pid").read_text()) == pid
        assert second.groups() == ["hello-v1"]
        assert [i.state for i in second.wait_running("hello-v1", timeout=5)] == ["RUNNING"]
    finally:
        stop_supervisor(run_dir)


def test_wait_running_reports_the_log_of_a_process_that_exits(supervisor: Supervisor, tmp_path: Path) -> None:
    crash = f"{sys.executable} -c \"print('boom: DATABASE_URL is not set'); raise SystemExit(3)\""
    supervisor.add_group("crash-v1", [app_spec(tmp_path, "crash", free_port(), command=crash, startretries=0)])
    with pytest.raises(RuntimeFailure) as failure:
        supervisor.wait_running("crash-v1", timeout=15)
    assert "FATAL" in str(failure.value)
    assert "boom: DATABASE_URL is not set" in str(failure.value)


def test_environment_reaches_the_app_unchanged(supervisor: Supervisor, tmp_path: Path, start_app: StartApp) -> None:
    tricky = 'it\'s "quoted", 100% $HOME `id` \\ and,commas=1'
    port = free_port()
    supervisor.add_group("env-v1", [app_spec(tmp_path, "env", port, environment={"TRICKY": tricky})])
    supervisor.wait_running("env-v1", timeout=15)
    assert wait_for_port(port, timeout=10)
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"http://127.0.0.1:{port}/env/TRICKY").text == tricky
        assert client.get(f"http://127.0.0.1:{port}/env/PODIUM_DATA_DIR").text == ""
    env_file = supervisor.env_dir / "env-v1" / "web-1.sh"
    assert env_file.stat().st_mode & 0o777 == 0o600


def test_groups_are_added_once_and_removed_quietly(supervisor: Supervisor, tmp_path: Path, start_app: StartApp) -> None:
    app = start_app(supervisor, "hello-v1", "A")
    with pytest.raises(Conflict):
        supervisor.add_group("hello-v1", [app_spec(tmp_path, "A", free_port())])
    with pytest.raises(Invalid):
        supervisor.add_group("bad name", [app_spec(tmp_path, "A", free_port())])

    supervisor.remove_group("hello-v1")
    assert supervisor.groups() == []
    assert not (supervisor.programs_dir / "hello-v1.conf").exists()
    assert not wait_for_port(app.port, timeout=0)
    supervisor.remove_group("hello-v1")  # absent: no error
    with pytest.raises(NotFound):
        supervisor.group_status("hello-v1")


def test_a_compound_procfile_command_runs_whole(supervisor: Supervisor, tmp_path: Path) -> None:
    """`cd sub && …` and `a; b` run as Heroku runs them, through a shell; a stop still stops the app."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "marker.txt").write_text("served from sub")
    port = free_port()
    command = f"cd sub && true; {sys.executable} -m http.server $PORT --bind 127.0.0.1"
    spec = app_spec(tmp_path, "compound", port, command=command, environment={"PORT": str(port)})
    supervisor.add_group("compound-v1", [spec])
    [info] = supervisor.wait_running("compound-v1", timeout=15)
    assert wait_for_port(port, timeout=10)
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"http://127.0.0.1:{port}/marker.txt").text == "served from sub"
    supervisor.remove_group("compound-v1")
    assert info.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)
    # The shell is gone; the server it started got the same signal (stopasgroup) and closes its
    # port as it exits, which a loaded machine may take a moment to schedule.
    assert port_closes(port, timeout=10)


def port_closes(port: int, timeout: float) -> bool:
    """Poll until nothing accepts connections on ``port``; False if it still does after ``timeout``."""
    deadline = time.monotonic() + timeout
    while port_accepts(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
