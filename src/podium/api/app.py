"""Builds the FastAPI application from a Podium core."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

import podium
from podium import web
from podium.api import addons, billing, catalog, deploy, errors, events, experiments, health, metrics, nodes, oncall
from podium.api import domains as domains_api
from podium.api import people as people_api
from podium.api import signin as signin_api
from podium.api.limits import BodyLimit, body_caps
from podium.api.secrets import router as secrets_router
from podium.core import Podium
from podium.web.session import Signer


def create_app(core: Podium) -> FastAPI:
    """The whole HTTP surface: API, metrics, health, and (when present) the web pages."""
    app = FastAPI(
        title="Podium",
        version=podium.__version__,
        description="A self-hosted platform for product teams: catalog, deploys, availability, "
        "experiments, databases and billing.",
    )
    app.state.podium = core
    errors.install(app)
    app.include_router(catalog.router)
    app.include_router(people_api.router)
    app.include_router(signin_api.router)
    app.include_router(deploy.router)
    app.include_router(health.router)
    app.include_router(oncall.router)
    app.include_router(metrics.router)
    app.include_router(addons.router)
    app.include_router(domains_api.router)
    app.include_router(experiments.router)
    app.include_router(events.router)
    app.include_router(nodes.router)
    app.include_router(secrets_router)
    billing.install(app)  # routes, and the middleware that meters API requests per team
    web.install(app)  # pages at /, /services, /teams; static files at /static
    app.state.web_signer = Signer(core.cluster.web_secret)  # one key for every server of the store
    _install_metrics(app)
    routes, default = body_caps(core.settings)
    app.add_middleware(BodyLimit, routes=routes, default=default)  # outermost: before anything reads a body

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str | int | bool | None]:
        """Alive, and which server answered: its id among the store's servers, and whether it leads."""
        return {
            "status": "ok", "version": podium.__version__, "server_id": core.cluster.server_id,
            "server": core.cluster.name, "leader": core.cluster.leader,
        }

    return app


def _install_metrics(app: FastAPI) -> None:
    """Prometheus counters in a registry of this app's own (no process-wide globals)."""
    registry = CollectorRegistry()
    requests = Counter(
        "podium_http_requests", "HTTP requests served", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "podium_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
    )
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", tags=["meta"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
