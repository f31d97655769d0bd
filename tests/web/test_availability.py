"""The availability parts of the pages over plain HTTP: service and team pages, incidents, buttons.

Incidents, checks and releases are written straight into the store, as the checker and
the deploy service would have, so each page's numbers can be worked out by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.metrics.support import Seed
from tests.web.support import csrf_of, sign_in

from podium.api.app import create_app
from podium.catalog.models import Environment, Service
from podium.core import Podium
from podium.deploy.models import DeployState, Release
from podium.health.models import Check, IncidentState
from podium.store.db import utcnow

HOSTILE = '<script>alert("x")</script>'
ROTATION = {
    "members": [{"name": "alice", "url": "json://127.0.0.1:9/alice-secret"},
                {"name": "bob", "url": "json://127.0.0.1:9/bob-secret"}],
    "period": "weekly",
    "handoff": "mon 09:00",
}


def add_check(core: Podium, service: str, env: str, state: str, *, name: str = "web", error: str | None = None,
              checked: datetime | None = None) -> None:
    """A check as the checker leaves it after some probes."""
    with core.store.session() as session:
        environment = session.scalar(
            select(Environment).join(Service).where(Service.name == service, Environment.name == env)
        )
        assert environment is not None
        session.add(Check(environment_id=environment.id, name=name, state=state, last_error=error,
                          last_checked_at=checked or utcnow()))


def make_live(core: Podium, release_id: int) -> None:
    """Mark a release live in its environment, as a finished rollout does."""
    with core.store.session() as session:
        release = session.get(Release, release_id)
        assert release is not None
        session.merge(DeployState(environment_id=release.environment_id, live_release_id=release.id))


@dataclass
class Scene:
    """cart (checkout's) with three resolved incidents over the last weeks and one open; ledger with one open."""

    now: datetime
    resolved: list[int]
    open_cart: int
    open_ledger: int


@pytest.fixture
def scene(catalog: None, core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]) -> Scene:
    seed = Seed(core, admin, team_client)
    now = utcnow()
    with core.store.session() as session:  # the catalog's services have been there all along
        for service in session.scalars(select(Service)):
            service.created_at = now - timedelta(days=400)
    artifact = seed.artifact("cart", now - timedelta(days=5))
    seed.release("cart", 1, artifact, now - timedelta(days=4, hours=2))
    v2 = seed.release("cart", 2, artifact, now - timedelta(days=3, minutes=10))
    make_live(core, v2)
    resolved = [
        seed.incident("cart", now - timedelta(days=20), now - timedelta(days=20) + timedelta(minutes=30)),
        seed.incident("cart", now - timedelta(days=10), now - timedelta(days=10) + timedelta(minutes=60),
                      acknowledged=now - timedelta(days=10) + timedelta(minutes=5)),
        seed.incident("cart", now - timedelta(days=3), now - timedelta(days=3) + timedelta(minutes=30),
                      cause_release=v2, summary="errors after deploy"),
    ]
    open_cart = seed.incident("cart", now - timedelta(hours=1), summary=f"{HOSTILE} checkout is down")
    open_ledger = seed.incident("ledger", now - timedelta(minutes=20), summary="ledger is slow")
    add_check(core, "cart", "production", "down", error="<b>502</b> from upstream")
    add_check(core, "cart", "staging", "up")
    return Scene(now, resolved, open_cart, open_ledger)


@pytest.fixture
def as_team(core: Podium, admin: TestClient) -> Iterator[Callable[[str], TestClient]]:
    """Factory: a browser-like client signed in (through /login) as one of ``team``'s tokens."""
    clients: list[TestClient] = []

    def make(team: str) -> TestClient:
        token = admin.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"]
        client = TestClient(create_app(core)).__enter__()
        clients.append(client)
        assert sign_in(client, token).status_code == 303
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def cards(html: str, testid: str) -> dict[str, str]:
    """The values of a row of cards, by metric key."""
    block = re.split(r'data-testid="[a-z-]+-cards"|<div class="charts"', html.split(f'data-testid="{testid}"', 1)[1])[0]
    found = re.findall(r'data-metric="([a-z_]+)">\s*<div class="card-label">[^<]*</div>\s*'
                       r'<div class="card-value">([^<]*)</div>', block)
    return dict(found)


def row_of(html: str, incident: int) -> str:
    return html.split(f'<tr data-incident="{incident}">', 1)[1].split("</tr>", 1)[0]


def state_of(client: TestClient, incident: int) -> str:
    response = client.get(f"/api/v1/incidents/{incident}")
    return str(response.json()["state"]) if response.status_code == 200 else f"HTTP {response.status_code}"


# The service page ------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_a_service_with_no_incidents_shows_dashes_not_zeros(signed_in: TestClient) -> None:
    html = signed_in.get("/services/ledger").text
    shown = cards(html, "service-cards")
    assert shown["availability"] == "100%"
    assert shown["incidents"] == "0", "no incidents is data: a count of 0"
    for key in ("mttr", "mtta", "mtbf"):
        assert shown[key] == "no data", f"{key} has no data and must not read 0"
    assert "slo" not in shown, "no objective set: no SLO card"
    assert html.count('<svg class="chart') == 2
    assert "No incidents yet." in html
    assert "No checks" in html
    assert 'data-environment="production"' in html
    assert "no checks yet" in html


def test_the_service_page_shows_status_cards_charts_incidents_and_checks(
    signed_in: TestClient, admin: TestClient, scene: Scene
) -> None:
    admin.put("/api/v1/services/cart/slo", json={"objective": 0.999}).raise_for_status()
    html = signed_in.get("/services/cart").text

    health = html.split('<section id="health">', 1)[1].split("</section>", 1)[0]
    production = health.split('<li data-environment="production">', 1)[1].split("</li>", 1)[0]
    assert ">down</span>" in production
    assert "incident open since" in production
    assert f'href="/incidents/{scene.open_cart}"' in production
    staging = health.split('<li data-environment="staging">', 1)[1].split("</li>", 1)[0]
    assert ">up</span>" in staging
    assert "incident open" not in staging

    shown = cards(html, "service-cards")
    # Over 30 days: 30 + 60 + 30 minutes resolved, the open one down for an hour so far.
    assert shown["incidents"] == "4"
    assert shown["mttr"] == "40m 00s"
    assert shown["mtta"] == "5m 00s"
    assert shown["mtbf"] != "no data"
    assert shown["availability"] == "99.583%"  # 1 - 180 min / 30 days, never rounded up
    assert shown["slo"] == "99.9%"
    assert shown["error_budget"].endswith("%")

    line = re.search(r'<svg class="chart availability".*?<path class="line" d="([^"]+)"', html, re.S)
    assert line is not None
    assert len(re.findall(r"[ML][\d.]+,[\d.]+", line.group(1))) == 12, "a point per week, 12 weeks"
    chart = html.split('<svg class="chart availability"', 1)[1].split("</svg>", 1)[0]
    # Weeks with an hour down fall below the 99.9% objective: the axis starts at 99%, the SLO drawn across.
    ticks = re.findall(r'<text class="tick" x="58"[^>]*>([^<]+)</text>', chart)
    assert (ticks[0], ticks[-1]) == ("99%", "100%")
    assert '<line class="reference"' in chart
    assert ">SLO 99.9%</text>" in chart

    incidents = html.split('<section id="incidents">', 1)[1].split("</section>", 1)[0]
    assert incidents.index(f'data-incident="{scene.open_cart}"') < incidents.index(
        f'data-incident="{scene.resolved[0]}"'), "newest first"
    caused = row_of(html, scene.resolved[2])
    assert 'href="/services/cart#environment-production"' in caused
    assert ">v2</a>" in caused
    assert ">resolved</span>" in caused
    assert "30m 00s" in caused
    acknowledged = row_of(html, scene.resolved[1])
    assert acknowledged.count("<time") == 3
    open_row = row_of(html, scene.open_cart)
    assert ">triggered</span>" in open_row
    assert "so far" in open_row
    assert "Acknowledge</button>" in open_row
    assert "Resolve</button>" in open_row

    checks = html.split('<section id="checks">', 1)[1].split("</section>", 1)[0]
    assert 'data-check="production/web"' in checks
    assert ">down</span>" in checks
    assert "&lt;b&gt;502&lt;/b&gt; from upstream" in checks


def test_what_people_wrote_is_escaped_everywhere(signed_in: TestClient, scene: Scene) -> None:
    for path in ("/services/cart", f"/incidents/{scene.open_cart}", "/status", "/teams/checkout"):
        html = signed_in.get(path).text
        assert HOSTILE not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; checkout is down" in html, path
    assert "<b>502</b>" not in signed_in.get("/services/cart").text


def test_the_services_table_keeps_the_release_and_adds_the_check_state(signed_in: TestClient, scene: Scene) -> None:
    html = signed_in.get("/").text
    cart = html.split('<a href="/services/cart">', 1)[1].split("</tr>", 1)[0]
    production = cart.split('data-environment="production">', 1)[1].split('data-environment="', 1)[0]
    assert "live v2" in production
    assert 'data-testid="health-state">down</span>' in production
    staging = cart.split('data-environment="staging">', 1)[1]
    assert 'data-testid="health-state">up</span>' in staging
    ledger = html.split('<a href="/services/ledger">', 1)[1].split("</tr>", 1)[0]
    assert "health-state" not in ledger, "no checks watch ledger: nothing to say yet"


# Acting on incidents ---------------------------------------------------------------------


def test_acknowledge_then_resolve_from_the_service_page(signed_in: TestClient, admin: TestClient, scene: Scene) -> None:
    page = signed_in.get("/services/cart").text
    response = signed_in.post(
        f"/incidents/{scene.open_cart}/acknowledge",
        data={"csrf": csrf_of(page), "next": "/services/cart#incidents"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/services/cart#incidents"
    assert state_of(admin, scene.open_cart) == IncidentState.ACKNOWLEDGED
    row = row_of(signed_in.get("/services/cart").text, scene.open_cart)
    assert ">acknowledged</span>" in row
    assert "platform/" in row, "who acknowledged: the team and its token"
    assert "Acknowledge</button>" not in row
    assert "Resolve</button>" in row

    again = signed_in.post(f"/incidents/{scene.open_cart}/acknowledge", data={"csrf": csrf_of(page)})
    assert again.status_code == 409
    assert "acknowledged already" in again.text

    resolved = signed_in.post(f"/incidents/{scene.open_cart}/resolve", data={"csrf": csrf_of(page)})
    assert resolved.status_code == 200
    assert str(resolved.url).endswith(f"/incidents/{scene.open_cart}"), "no next: the incident's page"
    assert state_of(admin, scene.open_cart) == IncidentState.RESOLVED
    assert "Resolve</button>" not in row_of(signed_in.get("/services/cart").text, scene.open_cart)


def test_a_foreign_team_sees_no_buttons_and_gets_a_403(
    as_team: Callable[[str], TestClient], admin: TestClient, scene: Scene
) -> None:
    search = as_team("search")
    page = search.get("/services/ledger").text
    assert "Acknowledge</button>" not in row_of(page, scene.open_ledger)
    response = search.post(f"/incidents/{scene.open_ledger}/acknowledge", data={"csrf": csrf_of(page)})
    assert response.status_code == 403
    assert "may not act on incidents of service &#39;ledger&#39;" in response.text
    assert state_of(admin, scene.open_ledger) == IncidentState.TRIGGERED
    note = search.post(f"/incidents/{scene.open_ledger}/notes", data={"csrf": csrf_of(page), "text": "hi"})
    assert note.status_code == 403
    assert "Add a note" not in search.get(f"/incidents/{scene.open_ledger}").text

    # A grant on cart lets search act on cart's incidents.
    cart = search.get("/services/cart").text
    assert "Acknowledge</button>" in row_of(cart, scene.open_cart)
    ok = search.post(f"/incidents/{scene.open_cart}/acknowledge", data={"csrf": csrf_of(cart)},
                     follow_redirects=False)
    assert ok.status_code == 303
    assert state_of(admin, scene.open_cart) == IncidentState.ACKNOWLEDGED


@pytest.mark.parametrize("action", ["acknowledge", "resolve", "notes"])
def test_acting_needs_the_forms_csrf_token(signed_in: TestClient, admin: TestClient, scene: Scene,
                                          action: str) -> None:
    for csrf in ("", "0" * 64):
        response = signed_in.post(f"/incidents/{scene.open_cart}/{action}", data={"csrf": csrf, "text": "x"})
        assert response.status_code == 403
        assert "did not come from this page" in response.text
    assert state_of(admin, scene.open_cart) == IncidentState.TRIGGERED
    assert admin.get(f"/api/v1/incidents/{scene.open_cart}").json()["notes"] == []


def test_acting_without_a_session_sends_to_login(api: TestClient, scene: Scene) -> None:
    response = api.post(f"/incidents/{scene.open_cart}/acknowledge", data={"csrf": "x"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_a_next_to_another_site_is_not_followed(signed_in: TestClient, scene: Scene) -> None:
    page = signed_in.get("/services/cart").text
    response = signed_in.post(f"/incidents/{scene.open_cart}/acknowledge",
                              data={"csrf": csrf_of(page), "next": "//evil.example/x"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


# The incident page -----------------------------------------------------------------------


def test_the_incident_page_shows_details_timeline_and_takes_notes(signed_in: TestClient, scene: Scene) -> None:
    html = signed_in.get(f"/incidents/{scene.resolved[1]}").text
    assert "Incident " + str(scene.resolved[1]) in html
    assert 'data-testid="incident-state">resolved</span>' in html
    moments = re.findall(r'<li class="moment (\w+)"', html)
    assert moments == ["triggered", "acknowledged", "resolved"]
    assert "1h 00m" in html
    assert "Acknowledge</button>" not in html
    assert "Resolve</button>" not in html

    caused = signed_in.get(f"/incidents/{scene.resolved[2]}").text
    assert '<a href="/services/cart#environment-production">v2</a>' in caused

    open_page = signed_in.get(f"/incidents/{scene.open_cart}").text
    assert "Acknowledge</button>" in open_page
    assert "so far" in open_page
    response = signed_in.post(f"/incidents/{scene.open_cart}/notes",
                              data={"csrf": csrf_of(open_page), "text": f"rolled back\n{HOSTILE}"},
                              follow_redirects=False)
    assert response.status_code == 303
    assert re.fullmatch(rf"/incidents/{scene.open_cart}#note-\d+", response.headers["location"])
    html = signed_in.get(response.headers["location"]).text
    assert re.findall(r'<li class="moment (\w+)"', html) == ["triggered", "note"]
    assert "rolled back\n&lt;script&gt;" in html
    assert "by platform" in html

    empty = signed_in.post(f"/incidents/{scene.open_cart}/notes", data={"csrf": csrf_of(open_page), "text": "  "})
    assert empty.status_code == 422
    assert "the note is empty" in empty.text


@pytest.mark.parametrize("ident", ["999999", "0", "abc", "1e3", "99999999999999999999"])
def test_an_unknown_incident_is_a_404_page(signed_in: TestClient, ident: str) -> None:
    response = signed_in.get(f"/incidents/{ident}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text


@pytest.mark.parametrize("path", ["/status", "/incidents/1"])
def test_availability_pages_need_a_session(api: TestClient, path: str) -> None:
    response = api.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path.replace('/', '%2F')}"


# The team page ---------------------------------------------------------------------------


def test_the_team_page_shows_who_is_on_call_cards_and_open_incidents(
    signed_in: TestClient, admin: TestClient, scene: Scene
) -> None:
    html = signed_in.get("/teams/checkout").text
    assert "No rotation yet" in html
    admin.put("/api/v1/teams/checkout/oncall", json=ROTATION).raise_for_status()
    html = signed_in.get("/teams/checkout").text

    on_call = html.split('data-testid="on-call">', 1)[1].split("</dl>", 1)[0]
    assert "<strong>alice</strong>" in on_call
    assert "bob" in on_call
    assert "secret" not in html, "the rotation's URLs may hold secrets"
    assert "json://" not in html

    shown = cards(html, "team-cards")
    assert set(shown) == {"availability", "weighted_availability", "mttr", "mtbf", "incidents"}
    assert shown["incidents"] == "5"  # cart's four and ledger's one
    dora = cards(html, "dora-cards")
    assert set(dora) == {"deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore"}
    assert dora["deployment_frequency"] == f"{2 / 30:.2f} / day"
    assert dora["change_failure_rate"] == "50.000%", "v2 caused an incident"
    assert html.count('<svg class="chart') == 2

    incidents = html.split('<section id="incidents">', 1)[1].split("</section>", 1)[0]
    assert f'data-incident="{scene.open_cart}"' in incidents
    assert f'data-incident="{scene.open_ledger}"' in incidents
    for resolved in scene.resolved:
        assert f'data-incident="{resolved}"' not in incidents
    assert '<a href="/services/ledger">ledger</a>' in incidents

    search = signed_in.get("/teams/search").text
    assert "None open." in search
    assert cards(search, "team-cards")["mttr"] == "no data"
    platform = signed_in.get("/teams/platform")  # no services at all: nothing measured
    assert platform.status_code == 200
    assert set(cards(platform.text, "team-cards").values()) == {"no data", "0"}
    assert cards(platform.text, "dora-cards")["lead_time"] == "no data"
