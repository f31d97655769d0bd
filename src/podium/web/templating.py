"""The pages' Jinja2 environment: autoescaped, strict about undefined names.

Templates sit flat in ``templates/`` (the package data is ``web/templates/*.html``); a
leading underscore marks a fragment that pages include, such as ``_services_table.html``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates

import podium
from podium.catalog.models import Lifecycle


def build_templates() -> Jinja2Templates:
    """Templates from the package, escaping every value they print.

    Built per app (see ``podium.web.install``) and kept in ``app.state``, never in a module
    global. ``StrictUndefined`` turns a misspelt name into an error instead of a blank.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("podium.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["changes"] = changes
    env.filters["duration"] = duration
    env.filters["process_tone"] = process_tone
    env.globals["version"] = podium.__version__
    env.globals["lifecycles"] = [stage.value for stage in Lifecycle]
    return Jinja2Templates(env=env)


def when(moment: datetime | None) -> str:
    """A timestamp as people read it, always in UTC: ``2026-03-01 14:05 UTC``."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


AUDIT_VALUE_MAX = 60


def _audit_value(value: Any) -> str:
    """One audit value as people read it: lists and mappings joined, long text cut."""
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{key} {item}" for key, item in value.items())
    else:
        text = str(value)
    return text if len(text) <= AUDIT_VALUE_MAX else text[: AUDIT_VALUE_MAX - 1] + "…"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """What an audit event changed, one line per differing field: ``key: old → new``,
    ``key set to new`` when it had no value, ``key cleared (was old)`` when it has none now."""
    before, after = before or {}, after or {}
    lines = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if _empty(old):
            lines.append(f"{key} set to {_audit_value(new)}")
        elif _empty(new):
            lines.append(f"{key} cleared (was {_audit_value(old)})")
        else:
            lines.append(f"{key}: {_audit_value(old)} → {_audit_value(new)}")
    return lines


def duration(seconds: float | None) -> str:
    """An uptime as people read it: ``45s``, ``3m 12s``, ``2h 05m``, ``3d 4h``; ``—`` if unknown."""
    if seconds is None:
        return "—"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


PROCESS_TONES = {"RUNNING": "live", "STARTING": "deploying", "BACKOFF": "deploying", "STOPPING": "deploying"}


def process_tone(state: str) -> str:
    """The badge colour of a supervisord process state: running, on its way, or down."""
    return PROCESS_TONES.get(state, "failed")
