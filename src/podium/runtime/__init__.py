"""Runtime: the node that runs app processes (supervisord) behind a router (nginx).

``supervisor.Supervisor`` starts and controls one supervisord per node over its unix
socket; ``router.Router`` owns one nginx instance that routes hostnames to process ports
and switches routes with graceful reloads; ``node.LocalNode`` pairs the two; ``ports``
hands out ports and waits for them to accept connections. See ``docs/runtime.md``.
"""

from __future__ import annotations

from podium.errors import PodiumError


class RuntimeFailure(PodiumError):
    """supervisord or nginx did not do what was asked: did not start, did not answer,
    refused a configuration Podium wrote, or a process did not reach RUNNING (HTTP 502)."""

    status_code = 502
