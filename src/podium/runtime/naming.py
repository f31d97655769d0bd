"""Names a runtime gives a service environment's things: the one place they are computed.

Hostnames are here so that a base domain other than ``localhost`` changes one function.
"""

from __future__ import annotations

LOCAL_DOMAIN = "localhost"


def group_name(service: str, env: str, version: int) -> str:
    """The process group (supervisord) or service prefix (swarm) of release vN."""
    return f"{service}_{env}_v{version}"


def group_prefix(service: str, env: str) -> str:
    """What every release group of the environment starts with."""
    return f"{service}_{env}_v"


def route_name(service: str, env: str) -> str:
    """The router's name for the environment's route."""
    return f"{service}_{env}"


def hostnames(service: str, env: str) -> list[str]:
    """``<service>.<env>.localhost``, and ``<service>.localhost`` for production."""
    names = [f"{service}.{env}.{LOCAL_DOMAIN}"]
    if env == "production":
        names.append(f"{service}.{LOCAL_DOMAIN}")
    return names
