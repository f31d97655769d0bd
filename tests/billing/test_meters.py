"""The meters against a real store and real files: process-seconds, log bytes, storage, API requests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text
from tests.billing.support import actor_of, at, go_live

from podium.billing.models import Meter, UsageRecord
from podium.billing.service import BillingService
from podium.catalog.models import Environment, Service
from podium.core import Podium
from podium.errors import NotFound


def records(core: Podium, meter: Meter) -> list[tuple[str, str, str, str, Decimal, str, str]]:
    """(service, env, type, size, quantity, start, end) of each record of ``meter``, in order."""
    with core.store.session() as session:
        rows = session.scalars(select(UsageRecord).where(UsageRecord.meter == meter.value).order_by(
            UsageRecord.start, UsageRecord.process_type, UsageRecord.id))
        return [(r.service, r.environment, r.process_type, r.size, r.quantity, f"{r.start:%m-%d %H:%M:%S}",
                 f"{r.end:%m-%d %H:%M:%S}") for r in rows]


def test_process_seconds_are_recorded_per_type_and_size_and_split_at_midnight(
    core: Podium, teams: dict[str, TestClient]
) -> None:
    go_live(core, "cart", "production", at("2026-01-31 23:59:30.400"), formation={"web": 2, "worker": 1},
            sizes={"worker": "Performance"})
    core.billing.collect(now=at("2026-02-01 00:00:30.900"))
    assert records(core, Meter.PROCESS_SECONDS) == [
        ("cart", "production", "web", "standard", Decimal(60), "01-31 23:59:30", "02-01 00:00:00"),
        ("cart", "production", "worker", "performance", Decimal(30), "01-31 23:59:30", "02-01 00:00:00"),
        ("cart", "production", "web", "standard", Decimal(60), "02-01 00:00:00", "02-01 00:00:30"),
        ("cart", "production", "worker", "performance", Decimal(30), "02-01 00:00:00", "02-01 00:00:30"),
    ]
    checkout = actor_of(core, "checkout")
    january = core.billing.invoice(checkout, "checkout", "2026-01", now=at("2026-03-01 00:00:00"))
    assert [(line["process_type"], line["quantity"], line["amount_cents"]) for line in january["lines"]] == [
        ("web", 60, 6), ("worker", 30, 12)  # 60 s at 0.001; 30 s at 0.004
    ]


def test_a_superseded_release_stops_where_the_next_one_starts_and_ticks_never_count_twice(
    core: Podium, teams: dict[str, TestClient]
) -> None:
    go_live(core, "cart", "production", at("2026-02-01 00:00:00"), formation={"web": 2})
    core.billing.collect(now=at("2026-02-01 00:00:40"))
    go_live(core, "cart", "production", at("2026-02-01 00:01:00"), formation={"web": 1, "worker": 0})
    core.billing.collect(now=at("2026-02-01 00:02:00"))
    core.billing.collect(now=at("2026-02-01 00:02:00"))
    # A restart: a new service over the same store carries on from the cursors.
    BillingService(core.settings, core.store).collect(now=at("2026-02-01 00:03:00"))
    rows = records(core, Meter.PROCESS_SECONDS)
    assert [(quantity, start, end) for *_, quantity, start, end in rows] == [
        (Decimal(120), "02-01 00:00:00", "02-01 00:01:00"),  # v1: 2 x 60 s, the tick at :40 extended
        (Decimal(120), "02-01 00:01:00", "02-01 00:03:00"),  # v2: 1 x 120 s, no worker
    ]
    # A service transferred to another team: its usage from then on is that team's.
    core.catalog.transfer_service(actor_of(core, "platform"), "cart", "search")
    core.billing.collect(now=at("2026-02-01 00:04:00"))
    with core.store.session() as session:
        owners = session.execute(select(UsageRecord.team, UsageRecord.quantity).order_by(UsageRecord.id)).all()
    assert owners[-1] == ("search", Decimal(60))


def test_log_bytes_follow_each_file_through_rotation(core: Podium, teams: dict[str, TestClient]) -> None:
    logs = core.settings.data_dir / "deploy" / "cart" / "staging" / "logs"
    logs.mkdir(parents=True)
    current = logs / "v1.web.log"
    current.write_bytes(b"x" * 1000)
    core.billing.collect(now=at("2026-02-01 10:00:00"))
    with current.open("ab") as handle:
        handle.write(b"y" * 500)
    core.billing.collect(now=at("2026-02-01 10:01:00"))
    current.rename(logs / "v1.web.log.1")  # rotated: the same bytes under another name
    current.write_bytes(b"z" * 200)
    core.billing.collect(now=at("2026-02-01 10:02:00"))
    core.billing.collect(now=at("2026-02-01 10:03:00"))  # nothing written
    (logs / "v1.web.log.1").unlink()  # dropped by the rotation: nothing to take back
    core.billing.collect(now=at("2026-02-01 10:04:00"))
    assert records(core, Meter.LOG_BYTES) == [  # first seen at 10:00: written in the tick before
        ("cart", "staging", "", "", Decimal(1700), "02-01 09:59:00", "02-01 10:02:00"),
    ]
    core.billing.collect(now=at("2026-02-02 00:00:30"))  # a new day starts a new record
    with current.open("ab") as handle:
        handle.write(b"w" * 10)
    core.billing.collect(now=at("2026-02-02 00:01:00"))
    assert records(core, Meter.LOG_BYTES)[-1] == (
        "cart", "staging", "", "", Decimal(10), "02-02 00:00:30", "02-02 00:01:00"
    )


def test_storage_byte_hours_come_from_the_add_ons_samples(core: Podium, teams: dict[str, TestClient]) -> None:
    with core.store.session() as session:
        existing = inspect(session.connection()).has_table("addon_storage_samples")
    if existing:
        pytest.skip("the add-ons' own tables are in the store: their tests sample real databases")
    assert core.billing.collect(now=at("2026-02-01 00:00:00")).storage_samples is None  # no tables: skipped
    with core.store.engine.begin() as connection:
        connection.execute(text("CREATE TABLE addons (id INTEGER PRIMARY KEY, environment_id INTEGER NOT NULL)"))
        connection.execute(text("CREATE TABLE addon_storage_samples (addon_id INTEGER, at DATETIME, bytes BIGINT)"))
        env_id = connection.execute(text(
            "SELECT e.id FROM environments e JOIN services s ON s.id = e.service_id "
            "WHERE s.name = 'cart' AND e.name = 'production'"
        )).scalar_one()
        connection.execute(text("INSERT INTO addons (id, environment_id) VALUES (7, :env)"), {"env": env_id})

    def sample(moment: str, size: int) -> None:
        with core.store.engine.begin() as connection:
            connection.execute(text("INSERT INTO addon_storage_samples VALUES (7, :at, :bytes)"),
                               {"at": f"{moment}.000000", "bytes": size})

    sample("2026-01-31 23:00:00", 10**9)
    sample("2026-02-01 01:00:00", 2 * 10**9)
    sample("2026-02-01 02:30:00", 2 * 10**9)
    assert core.billing.collect(now=at("2026-02-01 03:00:00")).storage_samples == 2
    assert records(core, Meter.STORAGE_BYTE_HOURS) == [
        ("cart", "production", "", "", Decimal(10**9), "01-31 23:00:00", "02-01 00:00:00"),
        ("cart", "production", "", "", Decimal(10**9 + 3 * 10**9), "02-01 00:00:00", "02-01 02:30:00"),
    ]
    assert core.billing.collect(now=at("2026-02-01 04:00:00")).storage_samples == 0  # nothing new
    sample("2026-02-01 02:30:36", 0)
    core.billing.collect(now=at("2026-02-01 05:00:00"))
    assert records(core, Meter.STORAGE_BYTE_HOURS)[-1][4] == Decimal(4 * 10**9) + Decimal(2 * 10**9) / 100


def test_api_requests_are_counted_per_team_service_and_hour(
    core: Podium, teams: dict[str, TestClient]
) -> None:
    checkout = teams["checkout"]
    for _ in range(3):
        assert checkout.get("/api/v1/services/cart").status_code == 200
    assert checkout.get("/api/v1/services/cart/environments/staging/releases").status_code == 200
    assert checkout.get("/api/v1/services/no-such-service").status_code == 404
    assert checkout.get("/api/v1/teams").status_code == 200
    assert checkout.get("/api/v1/services/cart", headers={"Authorization": "Bearer nope"}).status_code == 401
    core.billing.collect()
    checkout.get("/api/v1/services/cart")
    core.billing.close()  # writes what was counted since
    answer = checkout.get("/api/v1/billing/usage").json()
    requests = {(row["service"], row["env"]): row["quantity"] for row in answer["usage"]
                if row["meter"] == "api_requests"}
    # The failed lookup counts, but towards no service; the unauthenticated one not at all.
    assert requests == {("cart", ""): 4, ("cart", "staging"): 1, ("", ""): 2}
    with core.store.session() as session:
        hours = session.execute(select(UsageRecord.start, UsageRecord.end).where(
            UsageRecord.meter == "api_requests", UsageRecord.service == "cart", UsageRecord.environment == "")).all()
    assert len(hours) == 1
    assert (hours[0][1] - hours[0][0]).total_seconds() == 3600


def test_requests_made_with_an_app_token_are_metered_for_the_owning_team(
    core: Podium, teams: dict[str, TestClient], admin: TestClient
) -> None:
    with core.store.session() as session:
        environment = session.scalar(select(Environment).join(Service).where(
            Service.name == "cart", Environment.name == "production"))
        assert environment is not None
        environment_id = environment.id
    app = {"Authorization": f"Bearer {core.app_tokens.token_for(environment_id)}"}
    env = "/api/v1/services/cart/environments/production"
    assert admin.get(env + "/definitions", headers=app).status_code == 200
    assert admin.get(env + "/evaluate", params={"user_id": "u1"}, headers=app).status_code == 200
    batch = {"service": "cart", "env": "production",
             "events": [{"id": "e1", "type": "metric", "user_id": "u1", "name": "signup"}]}
    assert admin.post("/api/v1/events", json=batch, headers=app).status_code == 200
    assert admin.get("/api/v1/services/cart/environments/staging/definitions", headers=app).status_code == 403
    core.billing.close()
    answer = teams["checkout"].get("/api/v1/billing/usage").json()
    requests = {(row["service"], row["env"]): row["quantity"] for row in answer["usage"]
                if row["meter"] == "api_requests"}
    # Three requests of the app in its own environment (the one refused for another is not metered).
    assert requests == {("cart", "production"): 3}


def test_build_seconds_are_recorded_per_build_and_split_at_midnight(
    core: Podium, teams: dict[str, TestClient]
) -> None:
    core.billing.record_build("cart", "production", at("2026-01-31 23:59:20.700"), at("2026-02-01 00:00:50.200"))
    core.billing.record_build("cart", "staging", at("2026-02-01 10:00:00"), at("2026-02-01 10:01:30"))
    assert records(core, Meter.BUILD_SECONDS) == [
        ("cart", "production", "", "", Decimal(40), "01-31 23:59:20", "02-01 00:00:00"),
        ("cart", "production", "", "", Decimal(51), "02-01 00:00:00", "02-01 00:00:51"),
        ("cart", "staging", "", "", Decimal(90), "02-01 10:00:00", "02-01 10:01:30"),
    ]
    february = core.billing.invoice(actor_of(core, "checkout"), "checkout", "2026-02", now=at("2026-03-02 00:00:00"))
    builds = [(line["env"], line["quantity"], line["amount_cents"]) for line in february["lines"]
              if line["meter"] == "build_seconds"]
    assert builds == [("production", 51, 10), ("staging", 90, 18)]  # at 0.002 a second, each started one
    with pytest.raises(NotFound):
        core.billing.record_build("no-such-service", "production", at("2026-02-01 10:00:00"),
                                  at("2026-02-01 10:00:01"))
