"""The router answers ACME HTTP-01 challenges for every host from the challenge dir."""

from __future__ import annotations

import pwd

import httpx

from podium.config import Settings
from podium.osutil import may_search
from podium.runtime.ports import free_port
from podium.runtime.router import Router

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


def fetch(router: Router, host: str, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{router.port}{path}", headers={"Host": host}, timeout=5)


def test_tokens_are_served_to_every_host_and_other_paths_still_route(
    challenge_router: Router, acme_settings: Settings
) -> None:
    challenge_router.set_route("shop.production", ["shop.example.test"], [free_port()])  # nothing listens there
    (acme_settings.acme_challenge_dir / TOKEN).write_text(f"{TOKEN}.thumbprint")
    path = f"/.well-known/acme-challenge/{TOKEN}"

    for host in ("shop.example.test", "unknown.example.test"):
        answer = fetch(challenge_router, host, path)
        assert answer.status_code == 200, host
        assert answer.text == f"{TOKEN}.thumbprint"
        assert answer.headers["content-type"] == "text/plain"
        assert fetch(challenge_router, host, "/.well-known/acme-challenge/missing").status_code == 404

    assert fetch(challenge_router, "shop.example.test", "/").status_code == 502, "the route still proxies"
    assert fetch(challenge_router, "unknown.example.test", "/").text == "no app is routed at this host\n"


def test_the_challenge_dir_opens_nothing_else_of_the_data_dir(
    challenge_router: Router, acme_settings: Settings
) -> None:
    data_dir = acme_settings.data_dir
    assert data_dir.stat().st_mode & 0o006 == 0, "the data dir is not listable by others"
    assert acme_settings.tls_dir.stat().st_mode & 0o006 == 0, "nor the folder of the account key"
    assert acme_settings.acme_challenge_dir.stat().st_mode & 0o777 == 0o755
    if challenge_router.worker_user is not None:  # root: the workers run as podium-router
        uid = pwd.getpwnam(challenge_router.worker_user).pw_uid
        for folder in (data_dir, acme_settings.tls_dir):
            assert folder.stat().st_mode & 0o007 == 0, f"{folder} is not opened to others"
            assert may_search(folder, uid), f"the workers pass through {folder} to the tokens"
