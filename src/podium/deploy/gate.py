"""What counts as healthy for a release: the health gate of its rollout and of its watch,
from app.json's ``healthchecks.web`` (Dokku's format), else anything below 500 on ``/``."""

from __future__ import annotations

from podium.artifacts.appjson import AppJson
from podium.runtime.interface import HealthCheck

DEFAULT_PATH = "/"


def health_check(app_json: AppJson, deadline: float) -> HealthCheck:
    """app.json's ``healthchecks.web`` asks for a 2xx/3xx; without it, anything below 500 will do.

    The deadline grows to what app.json's attempts, timeouts and waits add up to."""
    check = app_json.web_healthcheck()
    if check is None:
        return HealthCheck(path=DEFAULT_PATH, timeout=5.0, max_status=500, deadline=deadline)
    budget = max(deadline, check.initial_delay + check.attempts * (check.timeout + check.wait))
    return HealthCheck(
        path=check.path, timeout=check.timeout, max_status=400, deadline=budget,
        initial_delay=check.initial_delay, content=check.content,
    )
