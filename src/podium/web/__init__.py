"""The web shell: server-rendered pages (Jinja2 + htmx) over the core's services.

Pages read through the same verbs as the API and sign in with the same tokens, kept in
an httponly cookie; their forms carry CSRF tokens (``podium.web.session``).
``static/htmx.min.js`` is htmx 2.0.11 (0BSD licence), vendored so no page loads
anything from outside this server; ``static/podium.js`` is our own, and small.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from podium.web import billing as billing_pages
from podium.web import experiment_forms, health_pages
from podium.web import experiments as experiment_pages
from podium.web import people as people_pages
from podium.web.routes import router
from podium.web.session import Signer
from podium.web.templating import build_templates

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages and their static files to an app; pages read ``app.state.podium``.

    Each app gets its own CSRF secret, made here and kept in ``app.state``.
    """
    app.state.web_templates = build_templates()
    app.state.web_signer = Signer()
    app.include_router(router)
    app.include_router(billing_pages.router)
    app.include_router(health_pages.router)
    app.include_router(experiment_forms.router)  # before the experiment pages: .../experiments/new is not a key
    app.include_router(experiment_pages.router)
    app.include_router(people_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
