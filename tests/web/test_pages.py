"""The pages over plain HTTP: sign-in, what each page shows, what it never shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.web.support import csrf_of, sign_in

from podium.api.app import create_app
from podium.api.deps import SESSION_COOKIE
from podium.config import Settings
from podium.core import Podium


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("path", ["/", "/?owner=checkout", "/services/cart", "/teams", "/teams/checkout"])
def test_a_page_without_a_session_redirects_to_login_and_shows_nothing(api: TestClient, path: str) -> None:
    response = api.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert "cart" not in response.text
    assert "checkout" not in response.text
    if path != "/":
        assert api.get(path).url.params["next"] == path


def test_an_unknown_service_without_a_session_redirects_too(api: TestClient) -> None:
    response = api.get("/services/no-such-thing", follow_redirects=False)
    assert response.status_code == 303, "a 404 would tell a stranger which services exist"


def test_a_revoked_token_in_the_cookie_is_forgotten(api: TestClient) -> None:
    api.cookies.set(SESSION_COOKIE, "pdm_000000000000_" + "x" * 40)
    response = api.get("/teams", follow_redirects=False)
    assert response.status_code == 303
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]


def test_htmx_without_a_session_is_told_to_navigate_to_login(api: TestClient) -> None:
    response = api.get("/?owner=checkout", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["hx-redirect"].startswith("/login?next=")
    assert response.text == ""


def test_a_bad_token_gets_the_login_page_again_with_401(api: TestClient) -> None:
    response = sign_in(api, "pdm_000000000000_" + "x" * 40)
    assert response.status_code == 401
    assert "That token is not valid" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert sign_in(api, "").status_code == 401


@pytest.mark.usefixtures("catalog")
def test_a_good_token_sets_an_httponly_cookie_and_the_home_lists_services(api: TestClient, admin_token: str) -> None:
    response = sign_in(api, admin_token)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert cookie.startswith(f"{SESSION_COOKIE}={admin_token};")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie

    home = api.get("/")
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")
    assert home.headers["cache-control"] == "no-store"
    for text in ("cart", "ledger", "search-api", "checkout", "production", "experimental", "signed in as"):
        assert text in home.text


def test_the_cookie_is_secure_when_the_settings_say_so(data_dir: Path) -> None:
    core = Podium(Settings(data_dir=data_dir / "secure", cookie_secure=True))
    core.start()
    try:
        with TestClient(create_app(core), base_url="https://testserver") as client:
            token = core.settings.admin_token_path.read_text().strip()
            response = sign_in(client, token)
            assert response.status_code == 303
            cookies = response.headers.get_list("set-cookie")
            assert all("Secure" in cookie for cookie in cookies), cookies
    finally:
        core.close()


@pytest.mark.parametrize(
    ("asked", "landing"),
    [
        ("/services/cart", "/services/cart"),
        ("/?owner=search", "/?owner=search"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_signing_in_returns_to_the_page_asked_for_and_never_off_site(
    api: TestClient, admin_token: str, asked: str, landing: str
) -> None:
    response = sign_in(api, admin_token, next=asked)
    assert response.headers["location"] == landing


def test_signing_out_clears_the_cookie(signed_in: TestClient) -> None:
    csrf = csrf_of(signed_in.get("/").text)
    response = signed_in.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert signed_in.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", ["/services/no-such-thing", "/teams/no-such-team"])
def test_an_unknown_service_or_team_gets_a_404_page(signed_in: TestClient, path: str) -> None:
    response = signed_in.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert "no-such-" in response.text


def test_a_service_description_is_escaped(signed_in: TestClient, admin: TestClient) -> None:
    hostile = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    admin.post("/api/v1/teams", json={"name": "checkout"}).raise_for_status()
    admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout", "description": hostile})

    page = signed_in.get("/services/cart")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text


@pytest.mark.usefixtures("catalog")
def test_the_filters_narrow_the_table_with_and_without_htmx(signed_in: TestClient) -> None:
    full = signed_in.get("/", params={"owner": "search"})
    assert "<html" in full.text
    assert "search-api" in full.text
    assert "/services/cart" not in full.text
    assert "/services/ledger" not in full.text

    fragment = signed_in.get("/", params={"owner": "checkout"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="services">')
    assert "<html" not in fragment.text
    assert "/services/cart" in fragment.text
    assert "/services/search-api" not in fragment.text
    assert fragment.headers["vary"] == "HX-Request"

    both = signed_in.get("/", params={"owner": "checkout", "lifecycle": "production"})
    assert "/services/cart" in both.text
    assert "/services/ledger" not in both.text


@pytest.mark.usefixtures("catalog")
def test_an_unknown_filter_value_says_so_instead_of_failing(signed_in: TestClient) -> None:
    response = signed_in.get("/", params={"owner": "nobody"})
    assert response.status_code == 200
    assert "team &#39;nobody&#39; not found" in response.text


@pytest.mark.usefixtures("catalog")
def test_the_service_page_shows_environments_grants_and_recent_changes(
    signed_in: TestClient, admin: TestClient
) -> None:
    admin.patch("/api/v1/services/cart", json={"lifecycle": "deprecated"}).raise_for_status()

    page = signed_in.get("/services/cart").text
    assert "The shopping cart." in page
    assert 'data-environment="staging"' in page
    assert 'data-environment="production"' in page
    assert "search" in page
    assert "deploy" in page
    assert "2099-01-01 00:00 UTC" in page
    assert "service.update" in page
    assert "lifecycle: production → deprecated" in page
    assert "grant.add" in page
    assert "service.create" in page


@pytest.mark.usefixtures("catalog")
def test_the_team_page_counts_live_tokens_and_lists_grants_held_elsewhere(
    signed_in: TestClient, admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    team_client("search")
    created = admin.post("/api/v1/teams/search/tokens", json={"description": "ci"}).json()
    admin.delete(f"/api/v1/teams/search/tokens/{created['id']}").raise_for_status()

    page = signed_in.get("/teams/search").text
    assert '<dd data-testid="live-tokens">1</dd>' in page, "one live token; the revoked one is not counted"
    assert created["token"] not in page
    assert "pdm_" not in page
    assert "/services/search-api" in page
    assert "/services/cart" in page
    assert "2099-01-01 00:00 UTC" in page

    teams = signed_in.get("/teams").text
    assert "/teams/checkout" in teams
    assert "/teams/search" in teams


def test_the_pages_stay_out_of_openapi(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if not path.startswith("/api/") and path not in {"/healthz"}]


def test_htmx_and_the_stylesheet_are_served_from_this_server(api: TestClient) -> None:
    htmx = api.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text
    assert api.get("/static/podium.css").status_code == 200


@pytest.mark.usefixtures("catalog")
def test_a_product_team_sees_the_catalog_but_only_the_changes_it_may_see(api: TestClient, admin: TestClient) -> None:
    token = admin.post("/api/v1/teams/search/tokens", json={}).json()["token"]
    assert sign_in(api, token).status_code == 303

    home = api.get("/").text
    assert 'data-testid="signed-in-team">search<' in home
    assert "/services/cart" in home

    cart = api.get("/services/cart").text
    assert "ranking" in cart, "grants on a service are public to signed-in teams"
    assert "service.create" not in cart, "checkout's history is not search's to read"


@pytest.mark.usefixtures("catalog")
def test_every_page_links_to_billing_and_audit_changes_read_as_sentences(
    signed_in: TestClient, admin: TestClient
) -> None:
    for path in ("/", "/teams", "/status", "/services/cart"):
        page = signed_in.get(path).text
        assert 'data-testid="nav-billing"' in page, path
        assert 'href="/billing/platform"' in page, path  # the platform team's bill of every team
    page = signed_in.get("/services/cart").text
    assert "rights set to deploy" in page  # the grant's creation, field by field
    assert "team set to search" in page
    assert "None" not in page


@pytest.mark.usefixtures("catalog")
def test_the_services_list_shows_open_incidents_and_the_last_deploy(signed_in: TestClient, admin: TestClient) -> None:
    opened = admin.post("/api/v1/services/cart/incidents", json={"summary": "checkout times out"})
    assert opened.status_code == 201, opened.text
    page = signed_in.get("/").text
    row = next(part for part in page.split("<tr>") if 'href="/services/cart"' in part)
    assert "1 open incident" in row
    assert "never" in row  # nothing deployed yet
    assert "open incident" not in next(part for part in page.split("<tr>") if 'href="/services/ledger"' in part)

    admin.post(f"/api/v1/incidents/{opened.json()['id']}/resolve").raise_for_status()
    page = signed_in.get("/").text
    assert "open incident" not in next(part for part in page.split("<tr>") if 'href="/services/cart"' in part)


@pytest.mark.usefixtures("catalog")
def test_config_vars_are_masked_and_revealed_only_to_those_who_may_change_them(
    signed_in: TestClient, admin: TestClient, core: Podium
) -> None:
    admin.patch("/api/v1/services/cart/environments/staging/config",
                json={"set": {"STRIPE_KEY": "sk_live_123"}}).raise_for_status()
    page = signed_in.get("/services/cart").text
    assert "STRIPE_KEY" in page
    assert "sk_live_123" not in page
    assert 'data-testid="reveal-config"' in page
    revealed = signed_in.get("/services/cart/environments/staging/config")
    assert revealed.status_code == 200
    assert "sk_live_123" in revealed.text
    assert revealed.headers["Cache-Control"] == "no-store"

    token = admin.post("/api/v1/teams/search/tokens", json={}).json()["token"]  # a deploy grant, no config right
    with TestClient(create_app(core)) as search:
        assert sign_in(search, token).status_code == 303
        page = search.get("/services/cart").text
        assert "STRIPE_KEY" in page
        assert 'data-testid="reveal-config"' not in page
        refused = search.get("/services/cart/environments/staging/config")
        assert refused.status_code == 403
        assert "sk_live_123" not in refused.text
