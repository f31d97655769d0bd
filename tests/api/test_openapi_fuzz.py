"""schemathesis drives every operation of ``/openapi.json`` with generated input: no 5xx.

Each operation is tried with input that fits its schema and input that does not, with
made-up path parameters; the catalog's operations are tried again on a service and a
team that exist, so the generated input reaches past the 404s. The experiments routes are
fuzzed in tests/api/test_experiments.py, on things that exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from podium.api.app import create_app
from podium.core import Podium

API = "^/api/v1/"
CATALOG_TAGS = {"auth", "teams", "services", "grants", "audit"}
EXAMPLES = 20
# Fuzzed on the seeded service, this would delete it before the operations after it run.
NOT_ON_SEEDED = {"DELETE /api/v1/services/{service}"}


def fuzz(operation: APIOperation, mode: GenerationMode, headers: dict[str, str], **fixed: Any) -> str | None:
    """Drive one operation with generated cases; the first failure found, or None.

    Every operation must not answer 5xx; the catalog's must also answer only the statuses,
    content types and bodies its schema declares.
    """
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)
    checks = [not_a_server_error]
    if is_catalog(operation):
        checks += [status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    try:
        run()
    except Unsatisfiable:  # nothing in the operation can be made invalid (no body, no constrained parameter)
        return None
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's failures, reported together at the end
        return f"{operation.label} ({mode.value}{', on existing things' if fixed else ''}):\n{exc}"
    return None


def is_catalog(operation: APIOperation) -> bool:
    return bool(CATALOG_TAGS & set(operation.tags or []))


@pytest.fixture
def seeded(admin: TestClient, team_client: Callable[[str], TestClient]) -> dict[str, str]:
    """A team with a service and a grant, for the operations to find."""
    team_client("checkout")
    team_client("search")
    admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    admin.post(
        "/api/v1/services/cart/grants", json={"team": "search", "rights": ["deploy"], "duration": "1d"}
    ).raise_for_status()
    return {"team": "checkout", "service": "cart"}


def test_no_operation_answers_5xx(core: Podium, admin_token: str, seeded: dict[str, str]) -> None:
    # The experiments routes are fuzzed on a service environment, experiment and flag that exist
    # in tests/api/test_experiments.py, which reaches further than made-up names do here.
    schema = (
        schemathesis.openapi.from_asgi("/openapi.json", create_app(core)).include(path_regex=API)
        .exclude(tag="experiments")
    )
    headers = {"Authorization": f"Bearer {admin_token}"}
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.append(fuzz(operation, mode, headers) or "")
        if is_catalog(operation) and operation.label not in NOT_ON_SEEDED:
            names = {p.name for p in operation.path_parameters}
            fixed = {name: value for name, value in seeded.items() if name in names}
            if fixed:
                failures.append(fuzz(operation, GenerationMode.POSITIVE, headers, **fixed) or "")
    assert tried >= 15
    found = [f for f in failures if f]
    assert not found, "\n\n".join(found)
