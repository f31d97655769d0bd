"""ApiClient: answers as JSON, error answers as Podium's errors, streams and uploads."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from podium.cli.client import ApiClient, tls_for, validation_detail
from podium.errors import Conflict, Forbidden, Invalid, NotFound, PodiumError, TooLarge, Unauthorized
from podium.runtime.ports import free_port


def test_answers_are_parsed_json_and_an_empty_answer_is_none(live_server: Any) -> None:
    with ApiClient(live_server.url, live_server.admin_token) as api:
        api.post("/api/v1/teams", json={"name": "checkout"})
        created = api.post("/api/v1/services", json={"name": "cart", "owner": "checkout"})
        assert created["owner"] == "checkout"
        assert api.patch("/api/v1/services/cart", json={"lifecycle": "production"})["lifecycle"] == "production"
        assert [s["name"] for s in api.get("/api/v1/services", params={"owner": "checkout"})] == ["cart"]
        assert api.delete("/api/v1/services/cart") is None  # 204 No Content
        assert api.get("/api/v1/services") == []


def test_each_error_status_becomes_its_podium_error_with_the_server_reason(live_server: Any) -> None:
    with ApiClient(live_server.url, live_server.admin_token) as admin:
        admin.post("/api/v1/teams", json={"name": "checkout"})
        admin.post("/api/v1/teams", json={"name": "search"})
        admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout"})
        search_token = admin.post("/api/v1/teams/search/tokens", json={})["token"]

        with pytest.raises(NotFound, match="service 'nope' not found"):
            admin.get("/api/v1/services/nope")
        with pytest.raises(Conflict, match="team 'checkout' already exists"):
            admin.post("/api/v1/teams", json={"name": "checkout"})
        with pytest.raises(Invalid, match="invalid team name 'Bad_Name'"):
            admin.post("/api/v1/teams", json={"name": "Bad_Name"})
        # FastAPI's own validation errors arrive as a list: one readable line.
        with pytest.raises(Invalid) as missing:
            admin.post("/api/v1/teams", json={"description": "no name"})
        assert missing.value.detail == "name: field required"

    with ApiClient(live_server.url, search_token) as search, pytest.raises(Forbidden) as refused:
        search.patch("/api/v1/services/cart", json={"description": "mine"})
    assert "owned by 'checkout'" in refused.value.detail

    with ApiClient(live_server.url, None) as anonymous, pytest.raises(Unauthorized) as no_token:
        anonymous.get("/api/v1/whoami")
    assert no_token.value.detail.startswith("missing token")
    assert "podium login" in no_token.value.detail


def test_validation_detail_names_each_field_once() -> None:
    detail = [
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": {}},
        {"type": "int_parsing", "loc": ["query", "limit"], "msg": "Input should be a valid integer"},
        {"loc": [], "msg": "Something odd"},
        "not a dict",
    ]
    assert validation_detail(detail) == (
        "name: field required; limit: input should be a valid integer; something odd; not a dict"
    )
    assert validation_detail([]) == "invalid request"


def test_server_errors_keep_their_status_and_reason(echo_server: str) -> None:
    with ApiClient(echo_server) as api:
        with pytest.raises(PodiumError) as json_error:
            api.get("/status/503")
        assert type(json_error.value) is PodiumError
        assert json_error.value.detail == "the server answered 503: failed with 503"
        with pytest.raises(PodiumError, match="the server answered 502: <html><body>Bad Gateway"):
            api.get("/status/502", params={"html": "1"})
        with pytest.raises(TooLarge, match="failed with 413"):
            api.post("/status/413")


def test_an_unreachable_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ApiClient(url, "pdm_x") as api, pytest.raises(PodiumError) as refused:
        api.get("/api/v1/whoami")
    assert refused.value.detail == f"cannot reach Podium at {url}: is `podium server` running?"


def test_stream_hands_out_the_body_as_it_comes_and_raises_on_an_error_status(echo_server: str) -> None:
    with ApiClient(echo_server) as api:
        with api.stream("GET", "/lines", params={"n": 5}) as response:
            assert list(response.iter_lines()) == [f"line {i}" for i in range(5)]
        with pytest.raises(NotFound, match="failed with 404"), api.stream("GET", "/status/404"):
            pytest.fail("an error status must not hand out a body")


def test_stream_json_lines_parses_each_event_and_names_a_line_that_is_not_json(echo_server: str) -> None:
    with ApiClient(echo_server) as api:
        assert list(api.stream_json_lines("GET", "/ndjson")) == [{"step": "upload"}, {"step": "live", "release": 2}]
        events = api.stream_json_lines("GET", "/ndjson", params={"bad": 1})
        with pytest.raises(PodiumError, match="sent a line that is not JSON: '<html>proxy timeout"):
            list(events)


def test_upload_streams_a_file_with_its_length_and_reports_progress(echo_server: str, tmp_path: Path) -> None:
    payload = os.urandom(300 * 1024 + 7)  # several chunks and a short last one
    slug = tmp_path / "slug.tgz"
    slug.write_bytes(payload)
    progress: list[tuple[int, int | None]] = []

    with ApiClient(echo_server) as api:
        answer = api.upload("/upload", slug, lambda sent, total: progress.append((sent, total)),
                            content_type="application/gzip", params={"env": "staging"})
    assert answer["bytes"] == len(payload)
    assert answer["sha256"] == hashlib.sha256(payload).hexdigest()
    assert answer["content_length"] == str(len(payload))
    assert not answer["chunked"]
    assert answer["content_type"] == "application/gzip"
    assert answer["params"] == {"env": "staging"}
    assert [sent for sent, _ in progress] == sorted({sent for sent, _ in progress})
    assert progress[-1] == (len(payload), len(payload))
    assert len(progress) > 1


def test_upload_from_an_open_file_sends_only_what_is_left(echo_server: str) -> None:
    handle = io.BytesIO(b"HEADERbody bytes")
    handle.read(6)
    with ApiClient(echo_server) as api:
        answer = api.upload("/upload", handle, method="PUT")
    assert (answer["method"], answer["bytes"], answer["content_length"]) == ("PUT", 10, "10")


def test_upload_from_a_pipe_is_sent_chunked_with_an_unknown_total(echo_server: str) -> None:
    read_fd, write_fd = os.pipe()
    payload = os.urandom(200 * 1024)

    def write() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(payload)

    writer = threading.Thread(target=write)
    writer.start()
    progress: list[tuple[int, int | None]] = []
    with os.fdopen(read_fd, "rb") as reader, ApiClient(echo_server) as api:
        answer = api.upload("/upload", reader, lambda sent, total: progress.append((sent, total)))
    writer.join()
    assert answer["bytes"] == len(payload)
    assert answer["chunked"]
    assert progress[-1] == (len(payload), None)


def test_https_servers_are_verified_and_plain_http_loads_no_certificates() -> None:
    assert tls_for("https://podium.example.com") is True  # httpx's verification against the CA bundle
    assert tls_for("HTTPS://podium.example.com") is True
    plain = tls_for("http://127.0.0.1:8000")
    assert isinstance(plain, ssl.SSLContext)
    # Were a plain-HTTP server to send the client to TLS, no certificate would pass.
    assert (plain.verify_mode, plain.check_hostname, plain.get_ca_certs()) == (ssl.CERT_REQUIRED, True, [])
