"""Node routes: the machines releases run on, their tasks, and draining one for maintenance.

Any team may list the nodes; draining and activating is the platform team's (audited)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES
from podium.runtime.swarm.nodes import Availability, NodeInfo

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"], responses=ERROR_RESPONSES)


class NodeOut(BaseModel):
    """One machine of the runtime."""

    id: str = Field(description="The engine's node id (the local runtime: 'local').")
    name: str = Field(description="What `ps` shows as a process's node: the hostname, or the short id.")
    hostname: str
    address: str = Field(description="The address the node is reached at inside the swarm.")
    role: str = Field(description="manager | worker")
    state: str = Field(description="ready | down | unknown | disconnected")
    availability: str = Field(description="active | drain | pause: drained nodes run no task.")
    tasks: int = Field(description="Running tasks on the node (apps and routers).")

    @classmethod
    def of(cls, info: NodeInfo) -> NodeOut:
        return cls(**asdict(info))


@router.get("")
def list_nodes(podium: PodiumDep, actor: ActorDep) -> list[NodeOut]:
    """The runtime's machines with their state, availability and running tasks."""
    return [NodeOut.of(info) for info in podium.nodes.list()]


@router.post("/{node}/drain")
def drain(node: str, podium: PodiumDep, actor: ActorDep) -> NodeOut:
    """Move every task off the node (the engine starts them elsewhere; routing follows)."""
    return NodeOut.of(podium.nodes.set_availability(actor, node, Availability.DRAIN))


@router.post("/{node}/activate")
def activate(node: str, podium: PodiumDep, actor: ActorDep) -> NodeOut:
    """Let the node take tasks again."""
    return NodeOut.of(podium.nodes.set_availability(actor, node, Availability.ACTIVE))
