"""The stamper's parts on their own: lines and times, rotation, commands run to completion."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from podium.runtime.stamp import LineStamper, LogFile, StampedOutput, stamp, start_command, wait_closed

T0 = 1_795_839_600.25  # 2026-11-28T04:20:00.25Z


def parse(line: bytes) -> tuple[datetime, bytes]:
    head, _, text = line.partition(b" ")
    return datetime.strptime(head.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC), text


def test_a_stamp_is_utc_iso_8601_with_microseconds() -> None:
    assert stamp(T0) == b"2026-11-28T04:20:00.250000Z "
    assert parse(stamp(T0) + b"x")[0] == datetime.fromtimestamp(T0, UTC)


def test_lines_are_stamped_and_a_partial_line_waits_for_its_end() -> None:
    stamper = LineStamper()
    assert stamper.feed(b"one\ntwo\nthr", T0) == stamp(T0) + b"one\n" + stamp(T0) + b"two\n"
    assert stamper.has_partial
    assert stamper.feed(b"ee\n\n", T0 + 1) == stamp(T0 + 1) + b"three\n" + stamp(T0 + 1) + b"\n"
    assert stamper.feed(b"no newline", T0 + 2) == b""
    assert stamper.flush(T0 + 3) == stamp(T0 + 3) + b"no newline\n"
    assert not stamper.has_partial
    assert stamper.flush(T0 + 4) == b""


def test_bytes_pass_through_and_times_never_go_back() -> None:
    stamper = LineStamper()
    assert stamper.feed(b"\xff\xfe\x00 raw\r\n", T0) == stamp(T0) + b"\xff\xfe\x00 raw\r\n"
    assert stamper.feed(b"later, by a clock set back\n", T0 - 60) == stamp(T0) + b"later, by a clock set back\n"


def test_a_line_longer_than_the_limit_is_cut() -> None:
    stamper = LineStamper(max_line=10)
    assert stamper.feed(b"0123456", T0) == b""
    assert stamper.feed(b"789abc", T0) == stamp(T0) + b"0123456789abc\n"
    assert stamper.feed(b"tail\n", T0) == stamp(T0) + b"tail\n"


def running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (its parent gone and nobody reaping) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def numbered(first: int, count: int) -> bytes:
    return b"".join(stamp(T0) + b"line %05d\n" % i for i in range(first, first + count))


def read_all(path: Path) -> list[bytes]:
    """Every line of ``path`` and its backups, oldest first."""
    files = [path.with_name(f"{path.name}.{i}") for i in (2, 1)] + [path]
    return [line for f in files if f.exists() for line in f.read_bytes().splitlines()]


def test_rotation_keeps_two_backups_of_whole_lines_under_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "v1.web-1.log"
    log = LogFile(path, max_bytes=1000)
    for first in range(0, 200, 7):
        log.write(numbered(first, 7))
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.web-1.log", "v1.web-1.log.1", "v1.web-1.log.2"]
    for file in tmp_path.iterdir():
        assert 0 < file.stat().st_size <= 1000
        assert file.read_bytes().endswith(b"\n")
    kept = [int(line.rsplit(b" ", 1)[1]) for line in read_all(path)]
    assert kept == list(range(kept[0], 203))  # the newest lines, none missing, in order
    assert log.dropped_bytes == 0


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    log = LogFile(path, max_bytes=100)
    log.write(b"small\n" + b"x" * 300 + b"\nafter\n")
    log.close()
    assert path.read_bytes() == b"after\n"
    assert path.with_name("big.log.1").read_bytes() == b"x" * 300 + b"\n"
    assert path.with_name("big.log.2").read_bytes() == b"small\n"


def test_two_writers_of_one_log_rotate_it_once_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.log"
    old, new = LogFile(path, max_bytes=2000), LogFile(path, max_bytes=2000)
    for first in range(0, 120, 2):
        old.write(numbered(first, 1))
        new.write(numbered(first + 1, 1))
    old.close()
    new.close()
    kept = sorted(int(line.rsplit(b" ", 1)[1]) for line in read_all(path))
    assert kept == list(range(120))
    assert not path.with_name("shared.log.3").exists()


def test_a_log_that_cannot_be_written_drops_lines_without_raising(tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    log = LogFile(directory / "a.log", max_bytes=100)
    (directory / "a.log").unlink()
    directory.rmdir()
    log.write(numbered(0, 10))
    assert log.dropped_bytes == len(numbered(0, 10))
    log.close()


def test_wait_closed_waits_for_every_writer(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = LogFile(path, max_bytes=0)
    assert not wait_closed(path, timeout=0.05)
    log.close()
    assert wait_closed(path, timeout=1)
    assert wait_closed(tmp_path / "never-written.log", timeout=0)


def test_a_command_run_to_completion_gets_its_lines_stamped(tmp_path: Path) -> None:
    path = tmp_path / "v1.release.log"
    script = "echo migrating; echo warning >&2; printf 'no newline'; exit 3"
    with StampedOutput(path) as output:
        process = subprocess.Popen(["/bin/sh", "-c", script], stdout=output.fileno(), stderr=subprocess.STDOUT)
    assert process.wait(timeout=30) == 3
    assert output.drain(timeout=10)
    assert [parse(line)[1] for line in path.read_bytes().splitlines()] == [b"migrating", b"warning", b"no newline"]
    assert wait_closed(path, timeout=0)


def test_drain_waits_for_every_process_that_holds_the_output(tmp_path: Path) -> None:
    path = tmp_path / "v1.release.log"
    with StampedOutput(path) as output:
        shell = subprocess.Popen(
            ["/bin/sh", "-c", "echo started; sleep 60 & echo $!"],
            stdout=output.fileno(),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    assert shell.wait(timeout=30) == 0
    assert not output.drain(timeout=0.2)  # the background sleep still holds it
    os.killpg(shell.pid, signal.SIGKILL)
    assert output.drain(timeout=10)
    started, background = (parse(line)[1] for line in path.read_bytes().splitlines())
    assert started == b"started"
    deadline = time.monotonic() + 5  # its output is closed; it may still be on its way out
    while running(int(background)):
        assert time.monotonic() < deadline, f"{background!r} outlived the kill"
        time.sleep(0.01)


def test_a_line_without_its_newline_is_written_while_more_of_it_keeps_coming(tmp_path: Path) -> None:
    path = tmp_path / "v1.release.log"
    progress = "for i in 1 2 3 4 5 6 7 8 9 10; do printf .; sleep 0.1; done; sleep 60"
    with StampedOutput(path) as output:
        process = subprocess.Popen(["/bin/sh", "-c", progress], stdout=output.fileno(), start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not path.read_bytes():
            assert time.monotonic() < deadline, "the partial line was never written"
            time.sleep(0.05)
        assert parse(path.read_bytes().splitlines()[0])[1].startswith(b".")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        output.drain(timeout=10)


def test_the_wrapper_runs_the_command_even_when_its_log_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    result = subprocess.run(
        [sys.executable, "-I", "-m", "podium.runtime.stamp", str(tmp_path / "dir"), "--", "/bin/echo", "hello"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == b"hello\n"
    assert b"podium: cannot write the log" in parse(result.stderr)[1]


def test_the_stamper_wakes_supervisord_once_the_app_and_its_output_are_gone(tmp_path: Path) -> None:
    # supervisord reaps (and restarts) a dead app only when its loop runs: the stamper's last
    # act is a call on supervisord's socket, so the loop runs at once. A stand-in socket here
    # records the call; the command line is the one supervisord runs.
    path, calls = str(tmp_path / "sv.sock"), []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                calls.append(conn.recv(65536))
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")

        listener = threading.Thread(target=answer)
        listener.start()
        log = tmp_path / "web-1.log"
        command = start_command(sys.executable, ["--wake", path, str(log), "--", "/bin/echo", "bye"])
        assert subprocess.run(command, check=False).returncode == 0
        listener.join(timeout=10)
    assert not listener.is_alive(), "the stamper never called"
    assert b"POST /RPC2 " in calls[0]
    assert b"<methodName>supervisor.getState</methodName>" in calls[0]
    assert parse(log.read_bytes())[1] == b"bye\n"  # written before the call
