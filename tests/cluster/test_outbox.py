"""The paging outbox on PostgreSQL, with two workers at once (as when a deposed leader has
not stopped yet): every page is sent, and none twice. And the loop runner's order."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.support import fresh_database
from tests.support.receiver import Receiver

from podium.cluster.loops import Loop, Runner
from podium.config import Settings
from podium.health.models import Notification
from podium.health.paging import Pager
from podium.store.db import Store

PAGES = 60


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    with fresh_database(postgres_url) as url:
        store = Store(url)
        store.migrate()
        yield store
        store.dispose()


@pytest.mark.postgres
def test_two_workers_on_one_outbox_send_each_page_once(pg_store: Store, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        with pg_store.session() as session:
            session.add_all(
                Notification(kind="trigger", recipient=f"p{i}", url=receiver.url(f"p{i}"), title=f"page {i}", body="-")
                for i in range(PAGES)
            )
        settings = Settings(data_dir=tmp_path, database_url=pg_store.url)
        workers = [Pager(settings, pg_store), Pager(settings, pg_store)]
        sent: list[int] = []
        start = threading.Barrier(len(workers))

        def work(pager: Pager) -> None:
            start.wait()
            sent.append(pager.deliver_due())

        threads = [threading.Thread(target=work, args=(pager,)) for pager in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        receiver.wait_for(PAGES)
        per_path = Counter(page.path for page in receiver.pages)
        assert sorted(per_path) == sorted(f"/p{i}" for i in range(PAGES))
        assert set(per_path.values()) == {1}, [p for p, n in per_path.items() if n > 1]
        assert sum(sent) == PAGES
        assert all(n > 0 for n in sent), f"one worker sent everything: {sent}; the claim did not let both work"
    finally:
        receiver.stop()


def test_the_runner_stops_one_set_of_loops_before_starting_the_other() -> None:
    events: list[str] = []

    def loop(name: str) -> Loop:
        return Loop(name, lambda: events.append(f"start {name}"), lambda: events.append(f"stop {name}"))

    runner = Runner([loop("checker"), loop("pager")], [loop("requests")])
    runner.follow()
    runner.lead()
    runner.follow()
    runner.stop()
    assert events == [
        "start requests",
        "stop requests", "start checker", "start pager",
        "stop pager", "stop checker", "start requests",
        "stop requests",
    ]
