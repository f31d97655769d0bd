"""The swarm's machines: list them with their tasks, drain one (the engine moves its tasks
elsewhere, the router follows them by DNS), make it active again."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from docker import DockerClient
from docker.errors import APIError, DockerException, NotFound

from podium.catalog.audit import record
from podium.catalog.auth import Actor
from podium.catalog.service import require_admin
from podium.errors import Conflict
from podium.errors import NotFound as PodiumNotFound
from podium.runtime import RuntimeFailure
from podium.store.db import Store


class Availability(StrEnum):
    ACTIVE = "active"
    DRAIN = "drain"
    PAUSE = "pause"


@dataclass(frozen=True)
class NodeInfo:
    """One machine of the swarm as ``podium nodes list`` shows it."""

    id: str
    name: str  # what processes name it by (the hostname, or the id when hostnames repeat)
    hostname: str
    address: str
    role: str
    state: str  # ready, down…
    availability: str
    tasks: int  # running tasks of apps and of the router


def node_names(client: DockerClient) -> dict[str, str]:
    """Node id → the name shown for it: its hostname, or its short id where hostnames repeat
    (nodes in containers or namespaces of one machine share a hostname)."""
    nodes = client.api.nodes()
    hostnames = Counter(node["Description"]["Hostname"] for node in nodes)
    names = {}
    for node in nodes:
        hostname = node["Description"]["Hostname"]
        names[node["ID"]] = hostname if hostnames[hostname] == 1 else node["ID"][:12]
    return names


def list_nodes(client: DockerClient) -> list[NodeInfo]:
    names = node_names(client)
    running = Counter(
        task.get("NodeID") for task in client.api.tasks(filters={"desired-state": "running"})
        if task.get("Status", {}).get("State") == "running"
    )
    return [
        NodeInfo(
            id=node["ID"], name=names[node["ID"]], hostname=node["Description"]["Hostname"],
            address=node["Status"].get("Addr", ""), role=node["Spec"].get("Role", ""),
            state=node["Status"].get("State", ""), availability=node["Spec"].get("Availability", ""),
            tasks=running.get(node["ID"], 0),
        )
        for node in sorted(client.api.nodes(), key=lambda n: n["Status"].get("Addr", ""))
    ]


def set_availability(client: DockerClient, node_ref: str, availability: Availability) -> NodeInfo:
    """Drain or activate a node, named by id, id prefix, hostname or shown name."""
    node_id = resolve(client, node_ref)
    try:
        node = client.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        spec["Availability"] = availability.value
        node.update(spec)
    except NotFound as exc:
        raise PodiumNotFound(f"node {node_ref}: not in the swarm") from exc
    except APIError as exc:
        raise Conflict(f"node {node_ref}: {exc.explanation}") from exc
    return next(info for info in list_nodes(client) if info.id == node_id)


def resolve(client: DockerClient, node_ref: str) -> str:
    names = node_names(client)
    hits = {
        node["ID"] for node in client.api.nodes()
        if node_ref in (node["ID"], names[node["ID"]], node["Description"]["Hostname"], node["Status"].get("Addr"))
        or node["ID"].startswith(node_ref)
    }
    if not hits:
        raise PodiumNotFound(f"node {node_ref}: not in the swarm")
    if len(hits) > 1:
        raise Conflict(f"node {node_ref}: names {len(hits)} nodes; give its id")
    return str(hits.pop())


LOCAL_NODE = NodeInfo(
    id="local", name="local", hostname="local", address="127.0.0.1", role="manager", state="ready",
    availability="active", tasks=0,
)


class NodeService:
    """The verbs behind ``podium nodes``: anyone may list, the platform team drains and
    activates (recorded in the audit log). Without a swarm there is one node, this machine."""

    def __init__(self, store: Store, client: DockerClient | None) -> None:
        self.store = store
        self.client = client

    def list(self) -> list[NodeInfo]:
        if self.client is None:
            return [LOCAL_NODE]
        try:
            return list_nodes(self.client)
        except (APIError, DockerException) as exc:
            raise RuntimeFailure(f"the swarm manager does not answer: {exc}") from exc

    def set_availability(self, actor: Actor, node: str, availability: Availability) -> NodeInfo:
        require_admin(actor, f"{'drain' if availability is Availability.DRAIN else 'activate'} nodes")
        if self.client is None:
            raise Conflict("the local runtime has one node, this machine: draining needs PODIUM_RUNTIME=swarm")
        before = next((info for info in list_nodes(self.client) if info.id == resolve(self.client, node)), None)
        after = set_availability(self.client, node, availability)
        with self.store.session() as session:
            record(session, actor, f"node.{availability.value}", target=after.id,
                   before={"availability": before.availability if before else None},
                   after={"availability": after.availability})
        return after
