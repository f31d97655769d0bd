"""GrowthBook's saved-group cases through the whole path: groups stored over the API, shipped in
the definitions as ``savedGroups``, and evaluated by the SDK in the app's process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer

from podium.sdk import Client

SPEC = json.loads((Path(__file__).parents[1] / "experiments" / "growthbook_conditions.json").read_text("utf-8"))
CASES = [case for case in SPEC["evalCondition"] if len(case) > 4]


def test_the_spec_cases_with_saved_groups_pass_through_the_sdk(live_server: LiveServer) -> None:
    assert len(CASES) == 8
    inputs: list[dict[str, Any]] = []  # each distinct set of groups gets a team and a service of its own
    for case in CASES:
        if case[4] not in inputs:
            inputs.append(case[4])
    with live_server.client() as admin:
        for n, groups in enumerate(inputs):
            admin.post("/api/v1/teams", json={"name": f"team{n}"}).raise_for_status()
            admin.post("/api/v1/services", json={"name": f"app{n}", "owner": f"team{n}"}).raise_for_status()
            for key, values in groups.items():
                made = admin.post(f"/api/v1/teams/team{n}/saved-groups", json={"key": key, "values": values})
                assert made.status_code == 201, made.text
                assert made.json()["values"] == values  # 2 and "2" kept apart
        for i, (_, condition, _, _, groups) in enumerate(CASES):
            path = f"/api/v1/services/app{inputs.index(groups)}/environments/production/flags"
            admin.post(path, json={"key": f"case{i}", "enabled": True, "value": True, "default_value": False,
                                   "rollout": 0.0, "rules": [{"condition": condition, "value": True}]}
                       ).raise_for_status()  # fmt: skip
    clients = [Client(live_server.url, live_server.admin_token, f"app{n}", "production", refresh_interval=60)
               for n in range(len(inputs))]
    try:
        with live_server.client() as admin:
            for n, (client, groups) in enumerate(zip(clients, inputs, strict=True)):
                assert client.wait_ready(10)
                document = admin.get(f"/api/v1/services/app{n}/environments/production/definitions").json()
                assert document["savedGroups"] == groups  # the spec's own inputs, as the SDK gets them
        got = {name: clients[inputs.index(groups)].flag(f"case{i}", "someone", attributes)
               for i, (name, _, attributes, _, groups) in enumerate(CASES)}
    finally:
        for client in clients:
            client.close()
    assert got == {name: expected for name, _, _, expected, _ in CASES}
