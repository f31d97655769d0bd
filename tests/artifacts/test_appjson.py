"""app.json in its Heroku and Dokku forms: the fields Podium acts on, and clear refusals."""

from __future__ import annotations

import json

import pytest

from podium.artifacts import AppJson, HealthCheck, parse_app_json
from podium.errors import Invalid

DOKKU = {
    "name": "shop",
    "formation": {"web": {"quantity": 2}, "worker": {"quantity": 1, "size": "small"}},
    "healthchecks": {
        "web": [
            {"type": "liveness", "path": "/alive"},
            {"type": "startup", "name": "ready", "path": "/health", "timeout": 3, "attempts": 5, "wait": 2,
             "initialDelay": 1, "content": "ok"},
        ]
    },
    "scripts": {"dokku": {"predeploy": "python manage.py migrate", "postdeploy": "./notify"}},
    "cron": [{"command": "echo", "schedule": "@daily"}],
}
HEROKU = {
    "env": {
        "SECRET_KEY": {"description": "Signs sessions", "generator": "secret"},
        "WEB_CONCURRENCY": {"value": "3", "required": False},
        "MODE": "production",
        "WORKERS": 4,
        "API_URL": {"description": "Where the API lives"},
    },
    "scripts": {"postdeploy": {"command": "bin/seed", "size": "standard-1x"}, "pr-predestroy": "bin/clean"},
    "addons": ["heroku-postgresql"],
}


def test_the_dokku_form() -> None:
    app = parse_app_json(json.dumps(DOKKU))
    assert app.formation["web"].quantity == 2
    assert app.formation["worker"].size == "small"
    check = app.web_healthcheck()
    assert check is not None
    assert (check.path, check.timeout, check.attempts, check.wait) == ("/health", 3, 5, 2)
    assert (check.initial_delay, check.content, check.name) == (1, "ok", "ready")
    assert app.scripts.predeploy_command == "python manage.py migrate"
    assert app.scripts.postdeploy_command == "./notify"


def test_the_heroku_form() -> None:
    app = parse_app_json(json.dumps(HEROKU))
    assert app.env_defaults() == {"WEB_CONCURRENCY": "3", "MODE": "production", "WORKERS": "4"}
    assert app.required_env() == ["API_URL", "SECRET_KEY"]
    assert app.env["SECRET_KEY"].generator == "secret"
    assert app.scripts.postdeploy_command == "bin/seed"
    assert app.scripts.pr_predestroy == "bin/clean"
    assert app.scripts.predeploy_command is None


def test_a_single_check_object_reads_as_a_list_of_one_with_defaults() -> None:
    app = parse_app_json('{"healthchecks": {"web": {"path": "/up"}}}')
    assert app.web_healthcheck() == HealthCheck(path="/up", timeout=5, attempts=3, wait=1)


def test_no_http_check_for_web_means_none() -> None:
    assert AppJson().web_healthcheck() is None
    only_others = {"healthchecks": {"web": [{"type": "liveness"}, {"command": ["true"]}], "worker": {}}}
    assert parse_app_json(json.dumps(only_others)).web_healthcheck() is None


def test_an_empty_object_is_the_defaults() -> None:
    app = parse_app_json("{}")
    assert app == AppJson()
    assert app.env_defaults() == {}
    assert app.scripts.postdeploy_command is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "app.json: not valid JSON (line 1, column 2:"),
        ('"web"', "app.json: must be a JSON object, not str"),
        ('{"formation": []}', "app.json: formation: Input should be a valid dictionary"),
        ('{"formation": {"web": {"quantity": -1}}}', "app.json: formation.web.quantity: Input should be greater"),
        ('{"formation": {"web!": {"quantity": 1}}}', "app.json: formation: 'web!' is not a process type name"),
        ('{"env": {"A": ["x"]}}', "app.json: env.A: Input should be a valid dictionary"),
        ('{"env": {"A": {"value": null, "required": "sometimes"}}}', "app.json: env.A.required:"),
        ('{"healthchecks": {"web": [{"timeout": 0}]}}', "app.json: healthchecks.web.0.timeout: Input should be"),
        ('{"healthchecks": {"web": [{"type": "sometimes"}]}}', "app.json: healthchecks.web.0.type: Input should"),
        ('{"scripts": {"dokku": {"predeploy": ["a"]}}}', "app.json: scripts.dokku.predeploy: Input should"),
    ],
)
def test_invalid_app_json_names_the_field(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_app_json(text)
    assert str(refused.value).startswith(reason), str(refused.value)
