"""The progress board: followers get every event in order, and finished rollouts are let go."""

from __future__ import annotations

import threading

from podium.deploy.progress import ProgressBoard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_follower_reads_what_came_before_and_what_comes_after() -> None:
    board = ProgressBoard()
    board.post(1, stage="pending", status="pending")
    seen: list[str] = []
    reading = board.follow(1)
    seen.append(next(reading)["stage"])
    later = threading.Thread(target=lambda: board.post(1, stage="done", status="live", done=True))
    later.start()
    seen.extend(event["stage"] for event in reading)
    later.join()
    assert seen == ["pending", "done"]


def test_a_finished_rollout_is_forgotten_after_a_while_and_a_running_one_never() -> None:
    clock = Clock()
    board = ProgressBoard(keep_done=300.0, clock=clock)
    board.post(1, stage="pending", status="pending")
    board.post(1, stage="done", status="live", done=True)
    board.post(2, stage="pending", status="pending")
    reading = board.follow(1)  # a follower who came in time reads to the end, whatever happens meanwhile
    first = next(reading)

    clock.now += 299.0
    assert board.known(1)
    clock.now += 1.0
    assert not board.known(1)
    assert list(board.follow(1)) == []
    assert [event["stage"] for event in [first, *reading]] == ["pending", "done"]

    clock.now += 10_000.0
    assert board.known(2)
    board.post(2, stage="done", status="failed", done=True)
    clock.now += 300.0
    board.post(3, stage="pending", status="pending")
    assert (board.known(2), board.known(3)) == (False, True)
