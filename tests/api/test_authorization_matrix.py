"""Every mutating route refuses a foreign team, and the refusal changes nothing.

The routes come from the app's own ``/openapi.json``, so a route added later is covered
without touching this file. Path parameters name things owned by team ``owner-team``;
the call is made with the token of team ``foreign-team``, and again with the personal
token of a maintainer of ``foreign-team`` (the rightful caller then being a maintainer
of ``owner-team``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api.app import create_app
from podium.core import Podium

API = "/api/v1"
MUTATING = {"post", "put", "patch", "delete"}
OWNER, FOREIGN = "owner-team", "foreign-team"

# Routes where a foreign team's call is rightly not a 403, each with the reason.
# Keep this empty unless a route is open to every team by design.
NOT_403: dict[tuple[str, str], str] = {}


# Routes only the platform team may call: the owning team is refused as well.
PLATFORM_ONLY = {
    ("POST", f"{API}/teams"), ("POST", f"{API}/catalog/import"), ("PUT", f"{API}/billing/prices"),
    ("PATCH", f"{API}/teams/{{team}}"), ("DELETE", f"{API}/teams/{{team}}"),
    ("POST", f"{API}/users"), ("POST", f"{API}/secrets/rotate-key"),
    ("POST", f"{API}/nodes/{{node}}/drain"), ("POST", f"{API}/nodes/{{node}}/activate"),
}

# Routes about one person (``/users/{user}/...``): only they or an admin may call them, so
# the rightful caller tried is the platform team.
PERSONAL = f"{API}/users/{{user}}"

# GET routes left out of the before/after snapshot: live streams and process state.
SNAPSHOT_SKIP = ("/logs", "/events", "/ps")


class World:
    """The things one route is tried on: a service of OWNER with a grant, and a spare token."""

    serial = itertools.count()

    def __init__(self, admin: TestClient) -> None:
        n = next(self.serial)
        self.service = f"svc-{n}"
        admin.post(f"{API}/services", json={"name": self.service, "owner": OWNER}).raise_for_status()
        grant = admin.post(
            f"{API}/services/{self.service}/grants",
            json={"team": "bystander", "rights": ["deploy"], "duration": "7d"},
        )
        grant.raise_for_status()
        self.grant_id = grant.json()["id"]
        token = admin.post(f"{API}/teams/{OWNER}/tokens", json={"description": f"spare {n}"})
        self.token_id = token.json()["id"]
        incident = admin.post(f"{API}/services/{self.service}/incidents", json={"summary": f"matrix {n}"})
        incident.raise_for_status()
        self.incident_id = incident.json()["id"]
        self.new_name = f"matrix-{n}"
        # A person in OWNER, for the routes under /users/{user} and .../members/{user}.
        self.user = f"member-{n}"
        admin.post(f"{API}/users", json={"name": self.user, "email": f"{self.user}@example.com"}).raise_for_status()
        admin.post(f"{API}/teams/{OWNER}/members", json={"user": self.user}).raise_for_status()
        # An experiment and a flag called ``key`` in staging, for the routes under .../{key}.
        self.key = "matrix"
        staging = f"{API}/services/{self.service}/environments/staging"
        admin.post(f"{staging}/experiments", json={"key": self.key, "metric": "signup"}).raise_for_status()
        admin.post(f"{staging}/flags", json={"key": self.key}).raise_for_status()

    def path_value(self, name: str, schema: dict[str, Any]) -> str:
        known = {
            "team": OWNER,
            "service": self.service,
            "token_id": self.token_id,
            "grant_id": str(self.grant_id),
            "incident_id": str(self.incident_id),
            "env": "staging",
            "version": "v1",
            "key": self.key,
            "user": self.user,
        }
        if name in known:
            return known[name]
        # An unknown parameter: a plausible value by type. If the route then answers 404
        # instead of 403, teach ``known`` about the parameter (or authorise before looking up).
        return "1" if schema.get("type") == "integer" else "x"

    def body_value(self, name: str, within: str = "") -> Any:
        """Values for well-known fields of body schema ``within``: each aims the call at OWNER's things."""
        if (within, name) == ("TransferIn", "to"):
            return FOREIGN
        if (within, name) == ("TeamRenameIn", "name"):  # the platform team's rename keeps OWNER for later routes
            return OWNER
        if within == "EventsIn" and name in ("service", "env"):  # POST /events names its service in the body
            return self.service if name == "service" else "staging"
        document = (
            f"kind: Component\nmetadata: {{name: {self.service}}}\nspec: {{owner: {FOREIGN}}}\n"
        )
        return {
            "name": self.new_name,
            "owner": OWNER,
            "team": FOREIGN,
            "rights": ["deploy", "config"],
            "duration": "7d",
            "document": document,
            "description": f"changed by {FOREIGN}",
            "lifecycle": "deprecated",
            "user": self.user,
        }.get(name, _MISSING)


_MISSING = object()


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(
    spec: dict[str, Any], schema: dict[str, Any], world: World, name: str = "", within: str = ""
) -> Any:
    """A plausible value for ``schema``: known field names first, then by type."""
    hinted = world.body_value(name, within)
    if hinted is not _MISSING:
        return hinted
    schema = resolve(spec, schema)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if resolve(spec, s).get("type") != "null"]
        return example(spec, options[0], world) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        title = schema.get("title", "")
        body = {
            key: example(spec, sub, world, key, title)
            for key, sub in props.items()
            if key in required or world.body_value(key, title) is not _MISSING
        }
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            body["web"] = example(spec, extra, world)
        return body
    if kind == "array":
        return [example(spec, schema.get("items", {}), world)]
    return {"integer": 1, "number": 1.0, "boolean": True}.get(str(kind), "x")


def mutating_routes(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        if not path.startswith(API):
            continue
        for method, operation in operations.items():
            if method in MUTATING:
                yield method.upper(), path, operation


def fill(path: str, operation: dict[str, Any], world: World) -> str:
    for param in operation.get("parameters", []):
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", world.path_value(param["name"], param["schema"]))
    return path


def request_kwargs(spec: dict[str, Any], operation: dict[str, Any], world: World) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return {"json": example(spec, content["application/json"]["schema"], world)}
    if content or operation.get("requestBody") is None:
        # An upload, or a body the schema does not describe: send a few bytes, not nothing.
        return {"content": b"not a real payload", "headers": {"content-type": "application/octet-stream"}}
    return {}


def snapshot(admin: TestClient, spec: dict[str, Any], world: World) -> dict[str, Any]:
    """What the platform team can read about everything the call could touch."""
    seen: dict[str, Any] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith(API) or "get" not in operations or path.endswith(SNAPSHOT_SKIP):
            continue
        url = fill(path, operations["get"], world)
        params = {"all": "true"} if path.endswith("/grants") else {}
        response = admin.get(url, params=params)
        seen[url] = (response.status_code, response.json())
    for team in (OWNER, FOREIGN):
        seen[f"tokens of {team}"] = admin.get(f"{API}/teams/{team}/tokens").json()
        seen[f"members of {team}"] = admin.get(f"{API}/teams/{team}/members").json()
    return seen


@pytest.fixture(params=["team tokens", "people"])
def clients(
    request: pytest.FixtureRequest, core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]
) -> Iterator[tuple[TestClient, TestClient]]:
    """(rightful, foreign): the two teams' tokens, or personal tokens of a maintainer of each."""
    owner, foreign = team_client(OWNER), team_client(FOREIGN)
    team_client("bystander")
    if request.param == "team tokens":
        yield owner, foreign
        return
    people = []
    for team in (OWNER, FOREIGN):
        name = f"{team}-lead"
        admin.post(f"{API}/users", json={"name": name, "email": f"{name}@example.com"}).raise_for_status()
        admin.post(f"{API}/teams/{team}/members", json={"user": name, "role": "maintainer"}).raise_for_status()
        token = admin.post(f"{API}/users/{name}/tokens", json={"name": "matrix"}).json()["token"]
        people.append(TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"}).__enter__())
    yield people[0], people[1]
    for client in people:
        client.__exit__(None, None, None)


def test_every_mutating_route_refuses_a_foreign_team(
    admin: TestClient, clients: tuple[TestClient, TestClient]
) -> None:
    owner, foreign = clients
    spec = admin.get("/openapi.json").json()
    routes = list(mutating_routes(spec))
    failures: list[str] = []
    for method, path, operation in routes:
        world = World(admin)
        url = fill(path, operation, world)
        kwargs = request_kwargs(spec, operation, world)
        before = snapshot(admin, spec, world)
        refused = foreign.request(method, url, **kwargs)
        if (method, path) not in NOT_403 and refused.status_code != 403:
            failures.append(f"{method} {path}: foreign team got {refused.status_code} {refused.text[:200]}")
            continue
        if snapshot(admin, spec, world) != before:
            failures.append(f"{method} {path}: the refused call changed something")
        # The same call by its rightful caller must not be refused: the 403 above is about
        # who asks, not a route that refuses everybody.
        rightful = admin if (method, path) in PLATFORM_ONLY or path.startswith(PERSONAL) else owner
        allowed = rightful.request(method, url, **kwargs)
        if allowed.status_code in (401, 403):
            failures.append(f"{method} {path}: rightful caller got {allowed.status_code} {allowed.text[:200]}")
    assert not failures, "\n".join(failures)
    covered = {(method, path) for method, path, _ in routes}
    exceptions = PLATFORM_ONLY | set(NOT_403)
    assert exceptions <= covered, "an exception above names a route that no longer exists"
    assert ("PATCH", f"{API}/services/{{service}}") in covered


def test_platform_only_routes_refuse_the_owning_team_too(
    admin: TestClient, clients: tuple[TestClient, TestClient]
) -> None:
    owner, _ = clients
    spec = admin.get("/openapi.json").json()
    for method, path, operation in mutating_routes(spec):
        if (method, path) not in PLATFORM_ONLY:
            continue
        world = World(admin)
        response = owner.request(method, fill(path, operation, world), **request_kwargs(spec, operation, world))
        assert response.status_code == 403, (method, path, response.text)


def test_every_route_wants_a_token(
    api: TestClient, admin: TestClient, clients: tuple[TestClient, TestClient]
) -> None:
    spec = admin.get("/openapi.json").json()
    world = World(admin)
    for path, operations in spec["paths"].items():
        if not path.startswith(API):
            continue
        for method, operation in operations.items():
            response = api.request(method.upper(), fill(path, operation, world))
            assert response.status_code == 401, (method, path, response.status_code)


# Reads that hold a service's secrets: its config, and its logs (apps print their settings).
SECRET_READS = ("/config", "/logs")


def test_reading_config_or_logs_refuses_a_foreign_team_and_a_deploy_only_grant(
    admin: TestClient, clients: tuple[TestClient, TestClient], team_client: Callable[[str], TestClient]
) -> None:
    owner, foreign = clients
    bystander = team_client("bystander")  # World gives it a deploy grant on every service
    spec = admin.get("/openapi.json").json()
    reads = [
        (path, operations["get"]) for path, operations in spec["paths"].items()
        if path.startswith(API) and "get" in operations and path.endswith(SECRET_READS)
    ]
    assert {path.rsplit("/", 1)[-1] for path, _ in reads} == {"config", "logs"}
    failures: list[str] = []
    for path, operation in reads:
        url = fill(path, operation, World(admin))
        for who, client in (("foreign", foreign), ("deploy-only", bystander)):
            refused = client.get(url)
            if refused.status_code != 403:
                failures.append(f"GET {path}: {who} team got {refused.status_code} {refused.text[:200]}")
        allowed = owner.get(url)
        if allowed.status_code != 200:
            failures.append(f"GET {path}: the owning team got {allowed.status_code} {allowed.text[:200]}")
    assert not failures, "\n".join(failures)
