"""Where the CLI finds its server and token: env vars first, then the saved login file.

``PODIUM_URL`` and ``PODIUM_TOKEN`` win over ``<config dir>/podium/config.json``, which
``podium login`` writes (mode 0600). The config dir is ``$XDG_CONFIG_HOME``, else
``~/.config``. The environment is read only through :func:`environ`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from podium.errors import Invalid

DEFAULT_URL = "http://127.0.0.1:8000"


def environ() -> Mapping[str, str]:
    """The process environment: the one place the CLI reads it."""
    return os.environ


@dataclass(frozen=True)
class Login:
    """The server URL and token the CLI talks with, and where each came from."""

    url: str
    token: str | None
    source: str  # "env", the config file's path, or "default"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/podium/config.json``, or ``~/.config/podium/config.json``."""
    env = environ() if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "podium" / "config.json"


def check_url(url: str) -> str:
    """A server URL without its trailing slash; Invalid unless it is http(s)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise Invalid(f"invalid Podium URL {url!r}: start it with http:// or https://")
    return url


def read_saved(path: Path) -> dict[str, str]:
    """The saved login, or an empty dict when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise Invalid(f"cannot read {path}: {exc}; run `podium login` again") from None
    if not isinstance(data, dict):
        raise Invalid(f"cannot read {path}: not a JSON object; run `podium login` again")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load(env: Mapping[str, str] | None = None) -> Login:
    """The login to use: each of URL and token from the env, else the file, else the default."""
    env = environ() if env is None else env
    path = config_path(env)
    saved = read_saved(path)
    url = env.get("PODIUM_URL") or saved.get("url")
    token = env.get("PODIUM_TOKEN") or saved.get("token")
    if env.get("PODIUM_URL") or env.get("PODIUM_TOKEN"):
        source = "env"
    elif saved:
        source = str(path)
    else:
        source = "default"
    return Login(url=check_url(url or DEFAULT_URL), token=token or None, source=source)


def save(url: str, token: str, env: Mapping[str, str] | None = None) -> Path:
    """Write the login file readable by its owner only (0600), atomically; return its path."""
    path = config_path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temp file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": check_url(url), "token": token}, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
    return path
