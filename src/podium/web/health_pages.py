"""Availability pages: the status of every service, one incident, and acting on incidents.

Acknowledge, resolve and add a note are forms (with the session's CSRF token) that call
one verb of ``core.incidents`` each, which checks the team may act, and then send the
browser back to the page the form was on.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from podium.api.deps import PodiumDep
from podium.catalog.rules import ID_MAX
from podium.errors import NotFound
from podium.store.db import utcnow
from podium.web.availability import CARD_PERIOD, incident_rows, status_board, timeline
from podium.web.pages import PageRoute, render, safe_next
from podium.web.session import FormActor, PageActor

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


def incident_number(text: str) -> int:
    """The id in ``/incidents/{id}``; anything else is an incident that does not exist (a page, not a 422)."""
    if not text.isdecimal() or not 0 < int(text) <= ID_MAX:
        raise NotFound(f"incident {text[:20]!r} not found")
    return int(text)


def back_to(next: str, incident_id: int) -> RedirectResponse:
    """After a change, the page the form was on (on this site only), else the incident's page."""
    target = safe_next(next) if next else f"/incidents/{incident_id}"
    return RedirectResponse(target, status_code=303)


# The status page needs a session like every page: it names every service and its
# incidents. A public status page (a chosen subset, no summaries) is a later choice.
@router.get("/status")
def status_page(request: Request, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """Every service environment: up, down, unknown or in maintenance; open incidents; availability."""
    now = utcnow()
    rows = status_board(podium, podium.checks.environment_statuses(now), now)
    context = {"rows": rows, "counts": Counter(row.state for row in rows), "period": CARD_PERIOD, "now": now}
    return render(request, "status.html", context)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """One incident: its facts, its timeline with the notes, and the buttons the team may use."""
    now = utcnow()
    incident = podium.incidents.get(incident_number(incident_id))
    context = {
        "incident": incident,
        "rows": incident_rows(podium, actor, [incident], now),
        "timeline": timeline(incident),
    }
    return render(request, "incident.html", context)


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    incident_id: str, podium: PodiumDep, actor: FormActor, next: Annotated[str, Form()] = ""
) -> RedirectResponse:
    number = incident_number(incident_id)
    podium.incidents.acknowledge(actor, number)
    return back_to(next, number)


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    incident_id: str, podium: PodiumDep, actor: FormActor, next: Annotated[str, Form()] = ""
) -> RedirectResponse:
    number = incident_number(incident_id)
    podium.incidents.resolve(actor, number)
    return back_to(next, number)


@router.post("/incidents/{incident_id}/notes")
def add_note(
    incident_id: str, podium: PodiumDep, actor: FormActor, text: Annotated[str, Form()] = ""
) -> RedirectResponse:
    number = incident_number(incident_id)
    note = podium.incidents.add_note(actor, number, text)
    return RedirectResponse(f"/incidents/{number}#note-{note.id}", status_code=303)
