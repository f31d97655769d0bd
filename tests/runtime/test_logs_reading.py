"""Reading process logs: merged by time across files and their backups, followed through rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

from podium.runtime import logs
from podium.runtime.logs import follow_logs, last_lines, read_logs
from podium.runtime.stamp import LogFile


def at(second: int, micro: int = 0) -> str:
    return f"2026-11-28T04:20:{second:02d}.{micro:06d}Z"


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.writelines(f"{line}\n" for line in lines)
    return path


def test_read_logs_merges_two_files_by_time(tmp_path: Path) -> None:
    web = write(tmp_path / "v3.web-1.log", f"{at(1)} GET /", f"{at(3)} GET /a", f"{at(5)} GET /b")
    worker = write(tmp_path / "v3.worker-1.log", f"{at(2)} job 1", f"{at(4)} job 2", f"{at(6)} job 3")

    assert read_logs([web, worker], 100) == [
        f"{at(1)} v3 web-1: GET /\n",
        f"{at(2)} v3 worker-1: job 1\n",
        f"{at(3)} v3 web-1: GET /a\n",
        f"{at(4)} v3 worker-1: job 2\n",
        f"{at(5)} v3 web-1: GET /b\n",
        f"{at(6)} v3 worker-1: job 3\n",
    ]
    assert read_logs([web, worker], 2) == [f"{at(5)} v3 web-1: GET /b\n", f"{at(6)} v3 worker-1: job 3\n"]


def test_lines_of_the_same_instant_keep_the_order_they_were_printed_in(tmp_path: Path) -> None:
    burst = [f"{at(1)} {text}" for text in ("zebra", "apple", "mango")]
    web = write(tmp_path / "v1.web-1.log", *burst)
    other = write(tmp_path / "v1.web-2.log", f"{at(1)} between")
    assert [line.split(": ", 1)[1] for line in read_logs([web, other], 10)] == [
        "zebra\n",
        "apple\n",
        "mango\n",
        "between\n",
    ]


def test_backups_are_read_when_more_lines_are_asked_for(tmp_path: Path) -> None:
    log = tmp_path / "v2.web-1.log"
    write(log.with_name("v2.web-1.log.2"), f"{at(1)} one", f"{at(2)} two")
    write(log.with_name("v2.web-1.log.1"), f"{at(3)} three")
    write(log, f"{at(4)} four", f"{at(5)} five")

    def texts(count: int) -> list[str]:
        return [line.rsplit(" ", 1)[1].strip() for line in read_logs([log], count)]

    assert texts(2) == ["four", "five"]
    assert texts(3) == ["three", "four", "five"]
    assert texts(100) == ["one", "two", "three", "four", "five"]
    assert read_logs([log], 1) == [f"{at(5)} v2 web-1: five\n"]  # tagged with the file, not the backup


def test_what_a_log_file_holds_besides_stamped_lines(tmp_path: Path) -> None:
    log = tmp_path / "v1.web-1.log"
    log.write_bytes(
        b"unstamped, from before lines were stamped\n"
        + f"{at(1)} ok\r\n".encode()
        + b"Traceback (most recent call last):\n"
        + f"{at(2)} bytes \xff\n".encode("latin-1")
        + f"{at(3)} \n".encode()
    )
    assert read_logs([log], 10) == [
        "- v1 web-1: unstamped, from before lines were stamped\n",
        f"{at(1)} v1 web-1: ok\n",
        f"{at(1)} v1 web-1: Traceback (most recent call last):\n",
        f"{at(2)} v1 web-1: bytes \ufffd\n",
        f"{at(3)} v1 web-1: \n",
    ]
    assert read_logs([tmp_path / "v9.web-1.log"], 10) == []


def test_last_lines_reads_back_across_blocks(tmp_path: Path) -> None:
    log = write(tmp_path / "big.log", *(f"{at(0, i)} line {i}" for i in range(5000)))
    assert log.stat().st_size > logs.BLOCK_BYTES
    assert last_lines(log, 3) == [f"{at(0, i)} line {i}".encode() for i in (4997, 4998, 4999)]
    assert len(last_lines(log, 4000)) == 4000
    assert last_lines(log, 4000)[0] == f"{at(0, 1000)} line 1000".encode()
    assert len(last_lines(log, 10_000)) == 5000
    assert last_lines(log, 0) == []


async def next_line(stream: AsyncGenerator[str, None]) -> str:
    return await asyncio.wait_for(anext(stream), timeout=10)


def test_follow_picks_up_new_lines_and_new_files(tmp_path: Path) -> None:
    web = write(tmp_path / "v1.web-1.log", f"{at(1)} already there")
    files = [web]

    async def follow() -> list[str]:
        stream = follow_logs(lambda: list(files))
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # the stream has opened the files it follows, at their end
        write(web, f"{at(3)} new")
        with web.open("a") as handle:
            handle.write(f"{at(4)} a line still being")
        files.append(write(tmp_path / "v2.web-1.log", f"{at(2)} from v2"))
        got = [await asyncio.wait_for(first, 10), await next_line(stream)]
        with web.open("a") as handle:
            handle.write(" written\n")
        got.append(await next_line(stream))
        await stream.aclose()
        return got

    assert asyncio.run(follow()) == [
        f"{at(2)} v2 web-1: from v2\n",
        f"{at(3)} v1 web-1: new\n",
        f"{at(4)} v1 web-1: a line still being written\n",
    ]


def test_follow_loses_no_line_when_the_file_rotates(tmp_path: Path) -> None:
    path = tmp_path / "v1.web-1.log"
    log = LogFile(path, max_bytes=200)  # five lines a file
    log.write(f"{at(0)} before following\n".encode())

    def lines(first: int, count: int) -> bytes:
        return b"".join(f"{at(1, i)} line {i:02d}\n".encode() for i in range(first, first + count))

    async def follow() -> list[str]:
        stream = follow_logs(lambda: [path])
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        log.write(lines(0, 6))  # rotates once
        got = [await asyncio.wait_for(first, 10)] + [await next_line(stream) for _ in range(5)]
        log.write(lines(6, 12))  # rotates twice before the next look
        got += [await next_line(stream) for _ in range(12)]
        await stream.aclose()
        return got

    got = asyncio.run(follow())
    log.close()
    assert path.with_name(f"{path.name}.2").exists()
    assert [line.rsplit(" ", 1)[1] for line in got] == [f"{i:02d}\n" for i in range(18)]
