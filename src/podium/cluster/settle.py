"""Settling the rollouts of servers that are gone: the leader's part of deploy recovery.

A rollout runs on the server that received it, which records its id on the deploy lock.
When that server dies mid-rollout, the lock stays taken and the release stays in flight.
The leader sees it (the lock names a server that no longer holds its server lock) and
settles the environment the way start-up recovery does, for that environment only:

1. the settling leader claims the lock (a conditional update naming itself), so two
   leaders for a moment never settle the same environment twice;
2. the release in flight is marked failed; a live release killed while draining is done;
3. the runtime kills a release command the dead server left running, and routes the
   environment to the live release again (a switch may have been cut short);
4. only then, once the router drained, are the environment's other releases stopped;
5. the lock is freed.

Until a release is recorded live, the release it replaces never stopped, so this always
leaves the old or the new release serving. Everything on the machines goes through the
``Runtime`` interface; it needs the runtime the dead server drove: with the local
runtime, servers that share a store share its data dir (docs/operations.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from podium.catalog.models import Environment
from podium.deploy.models import DeployState
from podium.deploy.recovery import settle_releases
from podium.errors import PodiumError
from podium.runtime.interface import RouteState, RunningRelease, Runtime
from podium.store.db import Store

log = logging.getLogger(__name__)
SETTLER = "platform"  # the lock's holder while the leader settles an environment


@dataclass(frozen=True)
class Orphan:
    """A deploy lock whose server is gone."""

    environment_id: int
    server: int | None
    release_id: int | None


def orphans(store: Store, alive: set[int]) -> list[Orphan]:
    """Locks taken by servers that are not alive (or that recorded no server)."""
    with store.session() as session:
        rows = session.execute(
            select(DeployState.environment_id, DeployState.lock_server, DeployState.lock_release_id)
            .where(DeployState.lock_holder.is_not(None))
        ).all()
    return [Orphan(env_id, server, release) for env_id, server, release in rows if server not in alive]


def settle_orphans(store: Store, runtime: Runtime, alive: set[int], me: int) -> list[str]:
    """Settle every environment whose rollout's server is gone; what was done, one line each."""
    done: list[str] = []
    for orphan in orphans(store, alive):
        try:
            done.extend(settle(store, runtime, orphan, me))
        except Exception:  # the next look tries again: the lock still names a dead server, or this one
            log.exception("settling environment %s failed", orphan.environment_id)
    for line in done:
        log.warning("settle: %s", line)
    return done


def settle(store: Store, runtime: Runtime, orphan: Orphan, me: int) -> list[str]:
    """Settle one environment left locked by a dead server; nothing if another settler claimed it first."""
    done: list[str] = []
    with store.session() as session:
        claimed = session.execute(
            update(DeployState)
            .where(
                DeployState.environment_id == orphan.environment_id,
                DeployState.lock_holder.is_not(None),
                DeployState.lock_server.is_(None) if orphan.server is None
                else DeployState.lock_server == orphan.server,
                DeployState.lock_release_id.is_(None) if orphan.release_id is None
                else DeployState.lock_release_id == orphan.release_id,
            )
            .values(lock_server=me, lock_holder=SETTLER)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return done
        environment = session.get(Environment, orphan.environment_id)
        state = session.get(DeployState, orphan.environment_id, populate_existing=True)
        assert environment is not None
        assert state is not None
        service, env = environment.service.name, environment.name
        gone = f"server {orphan.server}" if orphan.server is not None else "a server"
        running = settle_releases(session, state, service, env, f"{gone} running this rollout stopped", done)
    try:
        done.extend(_settle_runtime(runtime, service, env, running))
    finally:
        _unlock(store, orphan.environment_id, me)
    return done


def _settle_runtime(runtime: Runtime, service: str, env: str, live: RunningRelease | None) -> list[str]:
    """Kill a leftover release command, route to the live release, then stop the environment's other releases."""
    done: list[str] = []
    runtime.ensure_running()
    killed = runtime.stop_release_command(service, env)
    if killed is not None:
        done.append(f"{service}/{env}: killed the interrupted release command ({killed})")
    try:
        if live is not None and live.ports:
            runtime.switch(live).wait_drained()  # the router's workers from before let go of the other release
        else:
            runtime.switch_back(RouteState(service, env))  # nothing live, or no web process: no route
    except PodiumError as exc:  # stop nothing while the route is in doubt; the next rollout tidies up
        done.append(f"{service}/{env}: could not route to the live release: {exc.detail}")
        return done
    done.append(f"{service}/{env}: routed to the live release" if live is not None and live.ports
                else f"{service}/{env}: no route (no live web process)")
    keep = live.ref.version if live is not None else None
    for stopped in runtime.stop_all_but(service, env, keep):
        done.append(f"{service}/{env}: stopped v{stopped.version}")
    return done


def _unlock(store: Store, environment_id: int, me: int) -> None:
    with store.session() as session:
        session.execute(
            update(DeployState)
            .where(DeployState.environment_id == environment_id, DeployState.lock_server == me)
            .values(lock_holder=None, lock_release_id=None, locked_at=None, lock_server=None)
            .execution_options(synchronize_session=False)
        )
