"""The swarm the other tests run on: two nodes, a registry, the stack image."""

from __future__ import annotations

import docker
import pytest
from tests.swarm.conftest import Swarm

pytestmark = pytest.mark.swarm


def test_two_ready_nodes_and_the_stack_image(swarm: Swarm) -> None:
    client = docker.DockerClient(base_url=swarm.manager_host)
    try:
        nodes = client.nodes.list()
        assert sorted(node.attrs["Status"]["Addr"] for node in nodes) == [swarm.manager_addr, swarm.worker_addr]
        assert {node.attrs["Status"]["State"] for node in nodes} == {"ready"}
        assert client.images.get(swarm.stack_image).attrs["Os"] == "linux"
    finally:
        client.close()
