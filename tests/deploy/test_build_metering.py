"""A release whose virtualenv is built is billed the build's seconds; one that finds it cached is not."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.deploy.support import await_change, deploy, env_path, probe_app, slug_of

from podium.billing.models import Meter, UsageRecord
from podium.core import Podium


def build_records(core: Podium, env: str) -> list[UsageRecord]:
    with core.store.session() as session:
        return list(session.scalars(select(UsageRecord).where(
            UsageRecord.meter == Meter.BUILD_SECONDS.value, UsageRecord.environment == env,
        )))


def test_a_built_virtualenv_is_metered_once_and_a_cached_one_not_at_all(
    core: Podium, admin: TestClient, service: str, tmp_path: Path
) -> None:
    app = probe_app(tmp_path / "app")
    (app / "requirements.txt").write_text("# nothing to install: the virtualenv alone is built\n")

    first = deploy(admin, service, "staging", slug_of(app))
    assert first.release["status"] == "live", first.release
    [built] = build_records(core, "staging")
    assert (built.service, built.team) == (service, "web")
    assert built.start <= built.end
    assert built.quantity == int((built.end - built.start).total_seconds()) >= 1  # each started second counts

    # The same requirements again (a config change rebuilds nothing): no second record.
    again = await_change(
        admin.patch(env_path(service, "staging") + "/config", json={"set": {"X": "1"}}), admin, service, "staging"
    )
    assert again.release["status"] == "live", again.release
    assert len(build_records(core, "staging")) == 1
