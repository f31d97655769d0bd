"""Runtime: what runs releases and routes to them, behind one interface.

``interface.Runtime`` is all the deploy service knows of a runtime; ``naming`` computes
the names of groups, routes and hostnames. ``local.LocalRuntime`` implements it on this
machine, from ``node.LocalNode`` (``supervisor.Supervisor``: one supervisord, controlled
over its unix socket; ``router.Router``: one nginx that switches routes with graceful
reloads; the ports it hands out), ``layout`` (where apps and logs live), the release
command, ``readiness`` probes and ``logs``. Only this package knows supervisord and nginx.
See ``docs/runtime.md``.
"""

from __future__ import annotations

from podium.errors import PodiumError


class RuntimeFailure(PodiumError):
    """supervisord or nginx did not do what was asked: did not start, did not answer,
    refused a configuration Podium wrote, or a process did not reach RUNNING (HTTP 502)."""

    status_code = 502
