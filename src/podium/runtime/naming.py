"""Names a runtime gives a service environment's things: the one place they are computed.

Hostnames are ``<service>.<env>.<base domain>`` (and ``<service>.<base domain>`` for
production); the base domain is ``PODIUM_BASE_DOMAIN``, ``localhost`` unless set. Every
name under the base domain is the platform's own: a team's custom domain never is one.
"""

from __future__ import annotations

import re

LOCAL_DOMAIN = "localhost"
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"{HOST_LABEL}(?:\.{HOST_LABEL})*")
HOSTNAME_MAX = 253


def url_host(host: str) -> str:
    """``host`` as a URL or nginx's ``listen`` takes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def group_name(service: str, env: str, version: int) -> str:
    """The process group (supervisord) or service prefix (swarm) of release vN."""
    return f"{service}_{env}_v{version}"


def group_prefix(service: str, env: str) -> str:
    """What every release group of the environment starts with."""
    return f"{service}_{env}_v"


def route_name(service: str, env: str) -> str:
    """The router's name for the environment's route."""
    return f"{service}_{env}"


def hostnames(service: str, env: str, base_domain: str) -> list[str]:
    """``<service>.<env>.<base>``, and ``<service>.<base>`` for production."""
    names = [f"{service}.{env}.{base_domain}"]
    if env == "production":
        names.append(f"{service}.{base_domain}")
    return names


def is_hostname(name: str) -> bool:
    """Whether ``name`` is a lowercase DNS name: labels of letters, digits and inner '-'."""
    return len(name) <= HOSTNAME_MAX and HOSTNAME_RE.fullmatch(name) is not None


def under_base_domain(name: str, base_domain: str) -> bool:
    """Whether ``name`` is the base domain or a name under it: the platform's own names."""
    return name == base_domain or name.endswith(f".{base_domain}")
