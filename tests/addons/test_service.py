"""The add-on verbs against a real PostgreSQL server: provisioning, isolation, backups, restores, destroy."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.addons.conftest import ADMIN
from tests.addons.support import connect, databases, refusal, roles, rows

from podium.addons.models import Addon, AddonBackup, AddonStorageSample
from podium.billing.models import Meter, UsageRecord
from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.runtime import RuntimeFailure

pytestmark = pytest.mark.postgres


def url_of(core: Podium, service: str, env: str = "staging") -> str:
    return core.deploys.get_config(service, env)["DATABASE_URL"]


def fill(url: str, *values: str) -> None:
    with connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (body text)")
        conn.execute("DELETE FROM notes")
        for value in values:
            conn.execute("INSERT INTO notes VALUES (%s)", [value])


def notes(url: str) -> list[str]:
    return [str(r[0]) for r in rows(url, "SELECT body FROM notes ORDER BY body")]


def test_create_sets_database_url_and_keeps_the_password_sealed(core: Podium, owner: Actor, server_url: str) -> None:
    change = core.addons.create(owner, "cart", "staging")
    assert change.release is None  # nothing is live: the next deploy gets DATABASE_URL
    url = url_of(core, "cart")
    session_user, current_user = rows(url, "SELECT session_user, current_user")[0]
    assert (session_user, current_user) == (change.addon.role, change.addon.database)
    fill(url, "kept")
    assert rows(url, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'") == [(change.addon.database,)]

    assert change.addon.url is None
    assert core.addons.info(owner, "cart", "staging").url is None
    assert core.addons.info(owner, "cart", "staging", show_url=True).url == url
    password = url.split(":")[2].split("@")[0]
    with core.store.session() as session:
        sealed = session.scalars(select(Addon.url_sealed)).one()
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.service == "cart")))
    assert password not in sealed
    assert "postgresql" not in sealed
    key = core.settings.data_dir / "addons.key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert "addon.create" in actions
    assert change.addon.connection_limit == 20
    assert [a.env for a in core.addons.list_addons("cart")] == ["staging"]


def test_a_role_reaches_only_its_own_database(core: Podium, owner: Actor) -> None:
    cart = core.addons.create(owner, "cart", "staging").addon
    search = core.addons.create(owner, "search", "staging").addon
    assert "permission denied for database" in refusal(url_of(core, "cart"), dbname=search.database)
    assert "permission denied for database" in refusal(url_of(core, "search"), dbname=cart.database)
    assert rows(url_of(core, "cart"), "SELECT current_database()") == [(cart.database,)]


def test_bad_input_and_foreign_teams_change_nothing(
    core: Podium, owner: Actor, outsider: Actor, server_url: str
) -> None:
    core.addons.create(owner, "cart", "staging")
    core.deploys.set_config(owner, "cart", "production", {"DATABASE_URL": "postgresql://elsewhere/db"}, [])
    before = (databases(server_url), roles(server_url), core.deploys.get_config("cart", "staging"))

    with pytest.raises(Invalid, match="unknown plan 'huge': use one of small, medium"):
        core.addons.create(owner, "search", "staging", plan="huge")
    with pytest.raises(Invalid, match="unknown add-on kind 'mysql'"):
        core.addons.create(owner, "search", "staging", kind="mysql")
    with pytest.raises(Conflict, match="cart/staging has a database add-on already"):
        core.addons.create(owner, "cart", "staging")
    with pytest.raises(Conflict, match="DATABASE_URL is set in cart/production already"):
        core.addons.create(owner, "cart", "production")
    with pytest.raises(NotFound, match="search/staging has no database add-on"):
        core.addons.backup(owner, "search", "staging")
    with pytest.raises(NotFound, match="environment 'qa' not found"):
        core.addons.create(owner, "cart", "qa")
    for verb in (
        lambda: core.addons.create(outsider, "search", "staging"),
        lambda: core.addons.backup(outsider, "cart", "staging"),
        lambda: core.addons.restore(outsider, "cart", "staging", 1),
        lambda: core.addons.rotate(outsider, "cart", "staging"),
        lambda: core.addons.destroy(outsider, "cart", "staging", "cart"),
        lambda: core.addons.info(outsider, "cart", "staging", show_url=True),
    ):
        with pytest.raises(Forbidden):
            verb()
    assert (databases(server_url), roles(server_url), core.deploys.get_config("cart", "staging")) == before
    assert core.addons.list_backups("cart", "staging") == []
    assert core.deploys.get_config("cart", "production") == {"DATABASE_URL": "postgresql://elsewhere/db"}


def test_a_restore_brings_the_backed_up_data_back(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    url = url_of(core, "cart")
    fill(url, "alpha", "beta", "gamma")
    backup = core.addons.backup(owner, "cart", "staging")
    path = core.settings.data_dir / "backups" / "cart" / "staging"
    [stored] = list(path.iterdir())
    assert (backup.kind, backup.size, backup.env) == ("manual", stored.stat().st_size, "staging")
    assert stored.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    fill(url, "changed")
    with connect(url) as conn:
        conn.execute("CREATE TABLE later (id int)")  # made after the backup: a restore leaves it
    done = core.addons.restore(owner, "cart", "staging", backup.id)
    assert notes(url) == ["alpha", "beta", "gamma"]
    assert rows(url, "SELECT count(*) FROM later") == [(0,)]
    assert done.safety.kind == "safety"
    assert [b.id for b in core.addons.list_backups("cart", "staging")] == [done.safety.id, backup.id]

    core.addons.restore(owner, "cart", "staging", done.safety.id)  # the safety backup undoes the restore
    assert notes(url) == ["changed"]

    core.addons.create(owner, "cart", "production")  # production's data copied into staging
    fill(url_of(core, "cart", "production"), "from production")
    core.addons.restore(owner, "cart", "staging", core.addons.backup(owner, "cart", "production").id)
    assert notes(url) == ["from production"]
    staging = core.addons.info(owner, "cart", "staging").database
    assert rows(url, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'") == [(staging,)]  # staging's own


def test_a_restore_refuses_other_services_and_damaged_backups(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    core.addons.create(owner, "search", "staging")
    fill(url_of(core, "cart"), "cart data")
    fill(url_of(core, "search"), "search data")
    theirs = core.addons.backup(owner, "search", "staging")
    ours = core.addons.backup(owner, "cart", "staging")

    with pytest.raises(Invalid, match=f"backup {theirs.id} is of service 'search'"):
        core.addons.restore(owner, "cart", "staging", theirs.id)
    with pytest.raises(NotFound, match="backup 999 not found"):
        core.addons.restore(owner, "cart", "staging", 999)
    with pytest.raises(NotFound):
        core.addons.restore(owner, "cart", "staging", 2**40)
    with core.store.session() as session:
        path = Path(session.scalars(select(AddonBackup.path).where(AddonBackup.id == ours.id)).one())
    with path.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00garbage\x00")
    with pytest.raises(Conflict, match=f"backup {ours.id} is damaged"):
        core.addons.restore(owner, "cart", "staging", ours.id)
    assert notes(url_of(core, "cart")) == ["cart data"]
    assert len(core.addons.list_backups("cart", "staging")) == 1  # no safety backup was taken either


def test_destroy_keeps_a_final_backup_that_restores_into_a_new_add_on(
    core: Podium, owner: Actor, server_url: str
) -> None:
    first = core.addons.create(owner, "cart", "staging").addon
    fill(url_of(core, "cart"), "precious")
    old_url = url_of(core, "cart")
    with pytest.raises(Invalid, match="--confirm cart"):
        core.addons.destroy(owner, "cart", "staging", None)
    with pytest.raises(Invalid):
        core.addons.destroy(owner, "cart", "staging", "search")
    assert first.database in databases(server_url)

    gone = core.addons.destroy(owner, "cart", "staging", "cart")
    assert gone.addon.state == "destroyed"
    assert gone.backup is not None
    assert gone.backup.kind == "final"
    assert first.database not in databases(server_url)
    assert {first.database, first.role} & roles(server_url) == set()
    assert "DATABASE_URL" not in core.deploys.get_config("cart", "staging")
    assert refusal(old_url)
    with pytest.raises(Conflict, match="was destroyed"):
        core.addons.backup(owner, "cart", "staging")
    with pytest.raises(Conflict, match="was destroyed"):
        core.addons.destroy(owner, "cart", "staging", "cart")
    with core.store.session() as session:
        last = session.scalars(select(AddonStorageSample).order_by(AddonStorageSample.id.desc())).first()
    assert last is not None
    assert last.bytes == 0

    second = core.addons.create(owner, "cart", "staging").addon
    assert second.database != first.database
    core.addons.restore(owner, "cart", "staging", gone.backup.id)
    assert notes(url_of(core, "cart")) == ["precious"]
    assert [a.state for a in core.addons.list_addons("cart", include_destroyed=True)] == ["destroyed", "active"]


def test_rotation_with_nothing_live_revokes_the_old_password_at_once(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    old = url_of(core, "cart")
    fill(old, "before rotation")
    change = core.addons.rotate(owner, "cart", "staging")
    new = url_of(core, "cart")
    assert change.release is None
    assert new != old
    assert core.addons.wait_rotation("cart", "staging", timeout=10)
    assert "password authentication failed" in refusal(old)
    assert notes(new) == ["before rotation"]
    assert core.addons.info(owner, "cart", "staging").rotation_pending is False


def test_deleting_a_service_drops_its_database_after_a_final_backup(
    core: Podium, owner: Actor, server_url: str
) -> None:
    addon = core.addons.create(owner, "cart", "staging").addon
    with pytest.raises(Conflict, match="cart still has databases in staging"):
        core.delete_service(owner, "cart")
    assert addon.database in databases(server_url)  # refused: nothing dropped
    core.delete_service(owner, "cart", with_addons=True)
    assert addon.database not in databases(server_url)
    [final] = list((core.settings.data_dir / "backups" / "cart" / "staging").iterdir())
    assert "-final-" in final.name


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("addon_settings", [{"addons_backup_retention_days": 7}])
def test_retention_prunes_by_age_but_keeps_final_and_newest_backups(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    core.addons.create(owner, "search", "staging")
    made = {f"cart-{i}": core.addons.backup(owner, "cart", "staging") for i in range(3)}
    made["search-old"] = core.addons.backup(owner, "search", "staging")
    made["search-final"] = core.addons.destroy(owner, "search", "staging", "search").backup  # type: ignore[assignment]
    ages = {"cart-0": "2026-03-01", "cart-1": "2026-03-05", "cart-2": "2026-03-09", "search-old": "2026-03-01",
            "search-final": "2026-03-02"}
    with core.store.session() as session:
        for name, day in ages.items():
            session.execute(update(AddonBackup).where(AddonBackup.id == made[name].id)
                            .values(created_at=at(f"{day} 03:00")))

    assert core.addon_care.prune(now=at("2026-03-08 02:59")) == []  # cart-0 is 7 days minus a minute old
    assert core.addon_care.prune(now=at("2026-03-09 12:00")) == sorted([made["cart-0"].id, made["search-old"].id])
    assert core.addon_care.prune(now=at("2027-01-01 00:00")) == [made["cart-1"].id]  # cart-2: the newest
    left = {b.id for b in core.addons.list_backups("cart", "staging") + core.addons.list_backups("search", "staging")}
    assert left == {made["cart-2"].id, made["search-final"].id}
    files = sorted(p.name.split("-")[1] for p in (core.settings.data_dir / "backups").rglob("*.dump"))
    assert files == ["final", "manual"]


def test_scheduled_backups_come_once_a_day(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    now = datetime.now(UTC)
    [first] = core.addon_care.run_schedule(now=now)
    assert first.kind == "scheduled"
    assert first.created_by == "platform"
    assert core.addon_care.run_schedule(now=now + timedelta(hours=23)) == []
    [second] = core.addon_care.run_schedule(now=now + timedelta(days=1, minutes=1))
    assert second.id != first.id


def test_storage_samples_become_byte_hours_on_the_bill(core: Podium, owner: Actor) -> None:
    addon = core.addons.create(owner, "cart", "production").addon  # sampled once as it is created
    assert addon.size_bytes is not None
    assert addon.size_sampled_at == addon.created_at
    fill(url_of(core, "cart", "production"), *(f"row {i}" for i in range(100)))
    hour = timedelta(hours=1)
    assert core.addon_care.sample_storage(now=addon.created_at + hour) == 1
    assert core.addon_care.sample_storage(now=addon.created_at + 3 * hour) == 1
    with core.store.session() as session:
        sizes = list(session.scalars(select(AddonStorageSample.bytes).where(AddonStorageSample.addon_id == addon.id)
                                     .order_by(AddonStorageSample.at)))
    assert len(sizes) == 3
    assert all(size > 1_000_000 for size in sizes)  # an empty database is ~7 MB

    core.billing.collect(now=addon.created_at + 4 * hour)
    with core.store.session() as session:
        records = list(session.scalars(select(UsageRecord).where(UsageRecord.meter == Meter.STORAGE_BYTE_HOURS.value)))
    assert {(r.team, r.service, r.environment) for r in records} == {("shop", "cart", "production")}
    assert sum(r.quantity for r in records) == Decimal(sizes[0]) + 2 * Decimal(sizes[1])  # held until the next


def test_the_platform_team_sees_every_add_on(core: Podium, owner: Actor) -> None:
    core.addons.create(owner, "cart", "staging")
    assert core.addons.info(ADMIN, "cart", "staging", show_url=True).url == url_of(core, "cart")


def test_a_server_that_refuses_leaves_nothing_half_made(core: Podium, owner: Actor, server_url: str) -> None:
    with connect(server_url) as conn:
        conn.execute("DROP ROLE IF EXISTS weak")
        conn.execute("CREATE ROLE weak LOGIN CREATEDB PASSWORD 'weak-pass'")  # may create databases, not roles
    weak = Podium(core.settings.model_copy(update={
        "addons_postgres_url": server_url.replace(server_url.split("@")[0], "postgresql://weak:weak-pass")}))
    before = (databases(server_url), roles(server_url))
    with pytest.raises(RuntimeFailure, match="the database server refused: permission denied to create role"):
        weak.addons.create(owner, "cart", "staging")
    assert (databases(server_url), roles(server_url)) == before
    assert weak.addons.list_addons("cart") == []
    assert "DATABASE_URL" not in core.deploys.get_config("cart", "staging")
    weak.store.dispose()
