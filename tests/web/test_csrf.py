"""Cross-site request forgery: the cookie only reads the API; every web form carries a token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.web.support import csrf_of, sign_in

from podium.api.app import create_app
from podium.api.deps import SESSION_COOKIE
from podium.core import Podium
from podium.web.session import LOGIN_COOKIE

FORM_POSTS = ["/logout", "/services/cart/environments/staging/rollback"]


@pytest.mark.usefixtures("catalog")
def test_the_api_reads_with_the_session_cookie_and_changes_only_with_the_bearer_token(
    signed_in: TestClient, admin: TestClient, admin_token: str
) -> None:
    assert signed_in.get("/api/v1/services/cart").json()["name"] == "cart"
    changes = [
        ("POST", "/api/v1/teams", {"name": "forged"}),
        ("PATCH", "/api/v1/services/cart", {"lifecycle": "deprecated"}),
        ("DELETE", "/api/v1/services/cart", None),
        ("POST", "/api/v1/services/cart/environments/staging/rollback", {}),
    ]
    for method, path, body in changes:
        response = signed_in.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
        assert "Authorization: Bearer" in response.json()["detail"]
    assert admin.get("/api/v1/teams/forged").status_code == 404
    assert admin.get("/api/v1/services/cart").json()["lifecycle"] == "production"
    assert admin.get("/api/v1/services/cart/environments/staging/releases").json() == []

    bearer = {"Authorization": f"Bearer {admin_token}"}
    response = signed_in.patch("/api/v1/services/cart", json={"lifecycle": "deprecated"}, headers=bearer)
    assert response.status_code == 200, "the bearer token is enough, cookie or not"


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("path", FORM_POSTS)
def test_a_form_without_its_csrf_token_gets_a_403_page(signed_in: TestClient, path: str) -> None:
    for csrf in (None, "", "0" * 64, "ünïcode"):
        data = {"to": "v1"} | ({"csrf": csrf} if csrf is not None else {})
        response = signed_in.post(path, data=data, follow_redirects=False)
        assert response.status_code == 403, csrf
        assert response.headers["content-type"].startswith("text/html")
        assert "Not allowed" in response.text
        assert "did not come from this page" in response.text
        assert "set-cookie" not in response.headers
    assert signed_in.get("/", follow_redirects=False).status_code == 200, "still signed in"


@pytest.mark.usefixtures("catalog")
def test_a_csrf_token_belongs_to_one_session(signed_in: TestClient, core: Podium, admin: TestClient) -> None:
    admins_csrf = csrf_of(signed_in.get("/").text)
    token = admin.post("/api/v1/teams/search/tokens", json={}).json()["token"]
    with TestClient(signed_in.app) as other:
        assert sign_in(other, token).status_code == 303
        assert other.post("/logout", data={"csrf": admins_csrf}, follow_redirects=False).status_code == 403
        own = csrf_of(other.get("/").text)
        assert own != admins_csrf
        assert other.post("/logout", data={"csrf": own}, follow_redirects=False).status_code == 303


@pytest.mark.usefixtures("catalog")
def test_a_csrf_token_outlives_a_restart_and_dies_with_a_new_secret(signed_in: TestClient, core: Podium) -> None:
    """The key is the store's (every server of it signs alike), or PODIUM_WEB_SECRET when set."""
    csrf = csrf_of(signed_in.get("/").text)
    rekeyed = Podium(core.settings.model_copy(update={"web_secret": "a new secret"}))
    try:
        with TestClient(create_app(rekeyed), cookies=dict(signed_in.cookies)) as other:
            assert other.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 403
    finally:
        rekeyed.close()
    with TestClient(create_app(core), cookies=dict(signed_in.cookies)) as restarted:
        assert restarted.get("/", follow_redirects=False).status_code == 200, "the session itself lives on"
        assert restarted.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303


def test_signing_in_needs_the_forms_csrf_token(api: TestClient, admin_token: str) -> None:
    form = api.get("/login")
    assert LOGIN_COOKIE in form.cookies
    csrf = csrf_of(form.text)

    for data in ({"token": admin_token}, {"token": admin_token, "csrf": "0" * 64}):
        refused = api.post("/login", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "did not come from this page" in refused.text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert csrf_of(refused.text), "the form is offered again, with a token that works"

    api.cookies.delete(LOGIN_COOKIE)
    without_nonce = api.post("/login", data={"token": admin_token, "csrf": csrf}, follow_redirects=False)
    assert without_nonce.status_code == 403, "the token is bound to the nonce cookie of the browser"

    accepted = sign_in(api, admin_token)
    assert accepted.status_code == 303
    cookies = accepted.headers.get_list("set-cookie")
    assert any(cookie.startswith(f"{SESSION_COOKIE}={admin_token};") for cookie in cookies)
    assert any(cookie.startswith(f'{LOGIN_COOKIE}="";') for cookie in cookies), "the nonce is spent"


def test_a_form_another_origin_sent_is_refused_even_with_a_token(signed_in: TestClient, admin_token: str) -> None:
    """``same-site`` too: the deployed apps on ``*.localhost`` are the same site as Podium."""
    csrf = csrf_of(signed_in.get("/").text)
    form = signed_in.get("/login")
    data = {"token": admin_token, "csrf": csrf_of(form.text)}
    for site in ("cross-site", "same-site"):
        headers = {"Sec-Fetch-Site": site}
        logout = signed_in.post("/logout", data={"csrf": csrf}, headers=headers, follow_redirects=False)
        assert logout.status_code == 403, site
        assert signed_in.post("/login", data=data, headers=headers, follow_redirects=False).status_code == 403
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    assert signed_in.post("/login", data=data, headers=same_origin, follow_redirects=False).status_code == 303
