"""Process logs under a real supervisord: stamped, in order, across restarts, rotated, complete."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from podium.runtime.supervisor import ProcessSpec, Supervisor

# The app of these tests: `logger.py MODE [COUNT]`.
#   lines N     N numbered lines, alternating stdout and stderr, then "done"
#   odd         raw bytes that are not UTF-8, then a line left without its newline
#   pid         "started <pid>", then a line every 20 ms
#   graceful    on SIGTERM: "stopping", then exit 0
#   stubborn    ignores SIGTERM
# Every mode then stays up until it is stopped.
LOGGER_SOURCE = """\
import os, signal, sys, time

mode = sys.argv[1]
if mode == "lines":
    for i in range(int(sys.argv[2])):
        print(f"line {i:05d}", file=sys.stderr if i % 2 else sys.stdout, flush=True)
    print("done", flush=True)
elif mode == "odd":
    sys.stdout.buffer.write(b"bytes \\xff\\xfe\\x00 end\\nwaiting for no newline")
    sys.stdout.flush()
elif mode == "pid":
    print(f"started {os.getpid()}", flush=True)
    for i in range(10**6):
        print(f"tick {i}", flush=True)
        time.sleep(0.02)
elif mode == "graceful":
    def stop(signum, frame):
        print("stopping", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
elif mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def logger(
    tmp_path: Path, name: str, mode: str, *args: object, log_max_bytes: int = 1 << 20, stopwaitsecs: int = 10
) -> ProcessSpec:
    script = tmp_path / "logger.py"
    script.write_text(LOGGER_SOURCE)
    return ProcessSpec(
        name=name,
        command=" ".join([sys.executable, str(script), mode, *map(str, args)]),
        directory=tmp_path,
        environment={},
        log_file=tmp_path / "logs" / f"v1.{name}.log",
        log_max_bytes=log_max_bytes,
        stopwaitsecs=stopwaitsecs,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 15) -> None:
    """Poll ``condition``: the stamper writes a plain file, which offers no event to await."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def wait_for_line(path: Path, text: str) -> None:
    wait_until(lambda: text in texts(path))


def wait_gone(pids: list[int]) -> None:
    wait_until(lambda: all(process_state(pid) is None for pid in pids))


def lines_of(path: Path) -> list[tuple[datetime, str]]:
    """Each line's time and text; fails unless every line starts with a UTC time."""
    result = []
    for raw in path.read_bytes().splitlines():
        head, space, text = raw.partition(b" ")
        assert space, raw
        assert head.endswith(b"Z"), raw
        result.append((datetime.strptime(head.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC), text.decode()))
    return result


def texts(path: Path) -> list[str]:
    return [text for _, text in lines_of(path)] if path.exists() else []


def process_state(pid: int) -> str | None:
    """``R``, ``S``… for a live process; None once it is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return None if state in ("Z", "X") else state


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``: an app and its stamper."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def test_every_line_of_stdout_and_stderr_is_stamped_in_order(supervisor: Supervisor, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    specs = [logger(tmp_path, "web-1", "lines", 200), logger(tmp_path, "odd-1", "odd")]
    supervisor.add_group("logs-v1", specs)
    supervisor.wait_running("logs-v1", timeout=15)
    web, odd = (spec.log_file for spec in specs)
    wait_for_line(web, "done")

    stamped = lines_of(web)
    assert [text for _, text in stamped] == [f"line {i:05d}" for i in range(200)] + ["done"]
    times = [at for at, _ in stamped]
    assert times == sorted(times)
    assert before <= times[0] <= times[-1] <= datetime.now(UTC)
    assert {i.name: i.log_file for i in supervisor.group_status("logs-v1")} == {"web-1": str(web), "odd-1": str(odd)}

    # Not UTF-8: stored as it came. A line without its newline: written after a moment.
    wait_until(lambda: odd.read_bytes().endswith(b"waiting for no newline\n"))
    assert [raw.partition(b" ")[2] for raw in odd.read_bytes().splitlines()] == [
        b"bytes \xff\xfe\x00 end",
        b"waiting for no newline",
    ]


def test_a_killed_process_logs_to_the_same_file_after_its_restart(supervisor: Supervisor, tmp_path: Path) -> None:
    spec = logger(tmp_path, "worker-1", "pid")
    supervisor.add_group("logs-v1", [spec])
    (first,) = supervisor.wait_running("logs-v1", timeout=15)
    assert first.pid is not None
    wait_for_line(spec.log_file, f"started {first.pid}")
    (stamper,) = set(group_members(first.pid)) - {first.pid}

    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: supervisor.group_status("logs-v1")[0].pid not in (None, first.pid))
    (second,) = supervisor.wait_running("logs-v1", timeout=15)
    wait_for_line(spec.log_file, f"started {second.pid}")
    wait_gone([stamper])  # ended at end-of-file, reaped by supervisord

    logged = texts(spec.log_file)
    assert logged.index(f"started {first.pid}") < logged.index(f"started {second.pid}")
    assert all(text.startswith(("started ", "tick ")) for text in logged)
    assert not spec.log_file.with_name(spec.log_file.name + ".1").exists()


def test_rotation_keeps_two_backups_and_the_newest_lines(supervisor: Supervisor, tmp_path: Path) -> None:
    spec = logger(tmp_path, "web-1", "lines", 600, log_max_bytes=4096)
    supervisor.add_group("logs-v1", [spec])
    supervisor.wait_running("logs-v1", timeout=15)
    wait_for_line(spec.log_file, "done")

    log = spec.log_file
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == [log.name, f"{log.name}.1", f"{log.name}.2"]
    assert all(p.stat().st_size <= 4096 for p in log.parent.iterdir())
    kept = texts(log.with_name(f"{log.name}.2")) + texts(log.with_name(f"{log.name}.1")) + texts(log)
    first = int(kept[0].split()[1])
    assert first > 0  # the oldest lines are gone…
    assert kept == [f"line {i:05d}" for i in range(first, 600)] + ["done"]  # …the newest all kept, in order


def test_a_stop_reaches_the_app_and_leaves_no_process_behind(supervisor: Supervisor, tmp_path: Path) -> None:
    graceful = logger(tmp_path, "web-1", "graceful")
    stubborn = logger(tmp_path, "worker-1", "stubborn", stopwaitsecs=1)
    supervisor.add_group("logs-v1", [graceful, stubborn])
    infos = supervisor.wait_running("logs-v1", timeout=15)
    for spec in (graceful, stubborn):
        wait_for_line(spec.log_file, "ready")
    members = {info.name: group_members(info.pid) for info in infos if info.pid is not None}
    assert all(len(pids) == 2 for pids in members.values()), members  # each app and its stamper

    started = time.monotonic()
    supervisor.stop_process("logs-v1", "web-1")
    assert time.monotonic() - started < graceful.stopwaitsecs  # SIGTERM did it, not the SIGKILL after
    supervisor.stop_process("logs-v1", "worker-1")  # ignores SIGTERM: killed, with its group

    assert [info.state for info in supervisor.group_status("logs-v1")] == ["STOPPED", "STOPPED"]
    for pids in members.values():
        wait_gone(pids)
    assert texts(graceful.log_file)[-1] == "stopping"  # the app's last words were written


def test_a_burst_of_20000_lines_is_stored_completely(supervisor: Supervisor, tmp_path: Path) -> None:
    spec = logger(tmp_path, "web-1", "lines", 20_000)
    supervisor.add_group("logs-v1", [spec])
    supervisor.wait_running("logs-v1", timeout=15)
    wait_until(lambda: spec.log_file.read_bytes().endswith(b" done\n"), timeout=30)
    assert texts(spec.log_file) == [f"line {i:05d}" for i in range(20_000)] + ["done"]
