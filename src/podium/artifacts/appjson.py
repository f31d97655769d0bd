"""``app.json``: the optional manifest beside the Procfile, in its Heroku and Dokku forms.

Only the fields Podium acts on are modelled (``formation``, ``env``, ``healthchecks``,
``scripts``); any other field Heroku or Dokku defines (``name``, ``addons``,
``buildpacks``…) is accepted and ignored, so an existing app.json works unchanged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from podium.artifacts.procfile import PROCESS_TYPE
from podium.errors import Invalid

MAX_QUANTITY = 20
"""Most processes of one type a service environment runs, whether app.json or ``podium scale`` asks."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class FormationEntry(_Model):
    """How many processes of one type to run, and on what size."""

    quantity: int = Field(1, ge=0)
    size: str | None = None


class EnvVar(_Model):
    """A config var the app expects: a default value and/or a description."""

    value: str | None = None
    description: str | None = None
    required: bool = True
    generator: Literal["secret"] | None = None


class HealthCheck(_Model):
    """One Dokku-style check; Podium probes ``path`` over HTTP on the process's port."""

    type: Literal["startup", "readiness", "liveness"] = "startup"
    name: str | None = None
    path: str = "/"
    timeout: float = Field(5, gt=0)
    attempts: int = Field(3, ge=1)
    wait: float = Field(1, ge=0)
    initial_delay: float = Field(0, ge=0, alias="initialDelay")
    content: str | None = None
    command: list[str] | str | None = None

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("must start with '/'")
        return path


class DokkuScripts(_Model):
    """Dokku's deploy hooks: ``scripts.dokku.predeploy`` and ``postdeploy``."""

    predeploy: str | None = None
    postdeploy: str | None = None


class Scripts(_Model):
    """Deploy hooks in either form: ``{"dokku": {...}}`` or Heroku's ``{"postdeploy": ...}``."""

    dokku: DokkuScripts = DokkuScripts()
    postdeploy: str | None = None
    pr_predestroy: str | None = Field(None, alias="pr-predestroy")

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("postdeploy", mode="before")
    @classmethod
    def _command_object(cls, value: Any) -> Any:
        # Heroku also accepts {"command": "...", "size": "..."}.
        if isinstance(value, dict) and "command" in value:
            return value["command"]
        return value

    @property
    def predeploy_command(self) -> str | None:
        """The command to run before the new release takes traffic, if any."""
        return self.dokku.predeploy

    @property
    def postdeploy_command(self) -> str | None:
        """The command to run after the first deploy, Dokku's form first."""
        return self.dokku.postdeploy or self.postdeploy


def _env_spec(spec: Any) -> Any:
    plain = isinstance(spec, str | int | float) and not isinstance(spec, bool)
    return {"value": spec} if plain else spec


def _process_types(mapping: dict[str, Any]) -> dict[str, Any]:
    for kind in mapping:
        if not PROCESS_TYPE.fullmatch(kind):
            raise ValueError(f"{kind!r} is not a process type name")
    return mapping


class AppJson(_Model):
    """What app.json says; every field has a default, so ``AppJson()`` is "no app.json"."""

    formation: dict[str, FormationEntry] = {}
    env: dict[str, EnvVar] = {}
    healthchecks: dict[str, list[HealthCheck]] = {}
    scripts: Scripts = Scripts()

    @field_validator("formation", mode="before")
    @classmethod
    def _formation_types(cls, value: Any) -> Any:
        return _process_types(value) if isinstance(value, dict) else value

    @field_validator("env", mode="before")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        # Dokku and Heroku both allow "NAME": "value" as short for {"value": "value"}.
        if not isinstance(value, dict):
            return value
        return {name: _env_spec(spec) for name, spec in value.items()}

    @field_validator("healthchecks", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        # Dokku takes a list of checks per process type; a single object is read as a list of one.
        if not isinstance(value, dict):
            return value
        return _process_types({kind: [c] if isinstance(c, dict) else c for kind, c in value.items()})

    def web_healthcheck(self) -> HealthCheck | None:
        """The first startup or readiness check of the ``web`` process that probes a path."""
        for check in self.healthchecks.get("web", []):
            if check.type in ("startup", "readiness") and check.command is None:
                return check
        return None

    def check_bounds(self, *, max_health_wait: float, source: str = "app.json") -> None:
        """Refuse what would hold shared capacity: a quantity past ``MAX_QUANTITY``, or a health
        check that could keep a rollout worker waiting longer than ``max_health_wait`` seconds.

        Refused with a reason, not clamped: a check that is cut short fails in a way its
        author cannot see coming, and a quantity silently lowered is a surprise in production.
        """
        for kind, entry in self.formation.items():
            if entry.quantity > MAX_QUANTITY:
                raise Invalid(
                    f"{source}: formation.{kind}.quantity: {entry.quantity} is over the limit of {MAX_QUANTITY}"
                )
        for kind, checks in self.healthchecks.items():
            for index, check in enumerate(checks):
                longest = check.initial_delay + check.attempts * (check.timeout + check.wait)
                if not longest <= max_health_wait:  # also refuses NaN and infinity
                    raise Invalid(
                        f"{source}: healthchecks.{kind}[{index}]: initialDelay + attempts x (timeout + wait) "
                        f"is {longest:g} s, over the limit of {max_health_wait:g} s (PODIUM_HEALTH_WAIT_MAX)"
                    )

    def env_defaults(self) -> dict[str, str]:
        """The config vars app.json gives a value for, as ``{NAME: value}``."""
        return {name: var.value for name, var in self.env.items() if var.value is not None}

    def required_env(self) -> list[str]:
        """Names of the config vars that are required and have no default value."""
        return sorted(name for name, var in self.env.items() if var.required and var.value is None)


def parse_app_json(text: str, *, source: str = "app.json") -> AppJson:
    """Parse app.json text; raise ``Invalid`` naming ``source`` and the offending field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise Invalid(f"{source}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
    if not isinstance(data, dict):
        raise Invalid(f"{source}: must be a JSON object, not {type(data).__name__}")
    try:
        return AppJson.model_validate(data)
    except ValidationError as err:
        raise Invalid(f"{source}: {_describe(err)}") from err


def _describe(err: ValidationError) -> str:
    problems = []
    for error in err.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems[:3]) + ("; …" if len(problems) > 3 else "")
