"""A real OpenID Connect provider for the tests: Debian's glewlwyd, run unprivileged.

``Glewlwyd(base).start()`` writes its own SQLite database (from the package's schema),
its config and a copy of its login web app under ``base``, starts it on a free loopback
port, then, through its admin API (as the schema's ``admin``/``password``), adds an
OpenID Connect plugin instance with an RSA key (code flow with PKCE, device
authorization), a confidential client, and users with passwords and groups (a
``groups`` user property, sent as the ``groups`` claim).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from podium.runtime.ports import free_port

SCHEMA = Path("/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3")
WEBAPP = Path("/usr/share/glewlwyd/webapp")
WEBAPP_CONFIG = Path("/etc/glewlwyd/config-2.7.json/config.json")
PLUGIN = "oidc"
ADMIN = ("admin", "password")  # the schema's first user

CONFIG = """\
port={port}
bind_address="127.0.0.1"
external_url="{url}"
login_url="login.html"
api_prefix="api"
static_files_path="{webapp}/"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="{log}"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
plugin_api_run_enabled=""
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
secure_connection_key_file=""
secure_connection_pem_file=""
use_secure_connection=false
hash_algorithm="SHA512"
database = {{ type = "sqlite3"; path = "{db}"; }};
static_files_mime_types = (
  {{ extension = ".html"; mime_type = "text/html"; }},
  {{ extension = ".css"; mime_type = "text/css"; }},
  {{ extension = ".js"; mime_type = "application/javascript"; }},
  {{ extension = ".json"; mime_type = "application/json"; }},
  {{ extension = ".png"; mime_type = "image/png"; }},
  {{ extension = ".svg"; mime_type = "image/svg+xml"; }},
  {{ extension = ".woff"; mime_type = "font/woff"; }},
  {{ extension = ".woff2"; mime_type = "font/woff2"; }},
  {{ extension = ".ttf"; mime_type = "font/ttf"; }},
  {{ extension = ".ico"; mime_type = "image/x-icon"; }}
);
"""


class Glewlwyd:
    """One glewlwyd with its own database, config and port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/api/{PLUGIN}"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin: httpx.Client | None = None

    @property
    def log(self) -> str:
        path = self.base / "glewlwyd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        db = self.base / "glewlwyd.db"
        with sqlite3.connect(db) as conn:
            conn.executescript(SCHEMA.read_text())
            # Users may have several ``groups``: the user module must know the property first.
            query = "SELECT gumi_parameters FROM g_user_module_instance WHERE gumi_name = 'database'"
            (raw,) = conn.execute(query).fetchone()
            parameters = json.loads(raw)
            parameters["data-format"]["groups"] = {
                "multiple": True, "read": True, "write": True, "profile-read": True, "profile-write": False,
            }
            conn.execute("UPDATE g_user_module_instance SET gumi_parameters = ? WHERE gumi_name = 'database'",
                         (json.dumps(parameters),))
        # The login pages, with a config.json of our own (the package's is a directory).
        webapp = self.base / "webapp"
        shutil.copytree(WEBAPP, webapp, ignore=shutil.ignore_patterns("config.json"))
        (webapp / "config.json").write_text(WEBAPP_CONFIG.read_text())
        config = self.base / "glewlwyd.conf"
        config.write_text(CONFIG.format(
            port=self.port, url=self.url, webapp=webapp, db=db, log=self.base / "glewlwyd.log"
        ))
        self.process = subprocess.Popen(
            ["glewlwyd", "--config-file", str(config)], cwd=self.base,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._wait_until_up()
        self.admin = httpx.Client(base_url=f"{self.url}/api", timeout=10)
        self.admin.post("/auth/", json={"username": ADMIN[0], "password": ADMIN[1]}).raise_for_status()

    def _wait_until_up(self) -> None:
        # glewlwyd tells nothing but its log when it listens: ask it, briefly.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"glewlwyd exited: {self.log}")
            try:
                httpx.get(f"{self.url}/config.json", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"glewlwyd did not start: {self.log}")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self.admin is not None
        response = self.admin.request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"glewlwyd {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def configure(self) -> None:
        """The OpenID Connect plugin, with a ``groups`` claim taken from the user property."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        parameters = {
            "iss": self.issuer, "jwt-type": "rsa", "jwt-key-size": "256", "key": private, "cert": public,
            "access-token-duration": 3600, "refresh-token-duration": 1209600, "code-duration": 600,
            "refresh-token-rolling": True, "allow-non-oidc": False,
            "auth-type-code-enabled": True, "auth-type-token-enabled": False, "auth-type-id-token-enabled": True,
            "auth-type-none-enabled": False, "auth-type-password-enabled": False,
            "auth-type-client-enabled": False, "auth-type-device-enabled": True,
            "auth-type-refresh-enabled": True, "auth-type-implicit-enabled": False,
            "device-authorization-expiration": 600, "device-authorization-interval": 1,
            "scope": [], "additional-parameters": [],
            "claims": [{"name": "groups", "user-property": "groups", "type": "string", "mandatory": True,
                        "on-demand": False, "scope": []}],
            "name-claim": "mandatory", "email-claim": "mandatory", "scope-claim": "no",
            "address-claim": {"type": "no"},
            "allowed-scope": ["openid"], "jwks-show": True, "secret-type": "pairwise",
            "pkce-allowed": True, "pkce-method-plain-allowed": False,
            "request-parameter-allow": False, "session-management-allowed": False,
        }
        self._call("POST", "/mod/plugin/", {
            "module": "oidc", "name": PLUGIN, "display_name": "OpenID Connect", "parameters": parameters,
        })

    def add_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        self._call("POST", "/client/", {
            "client_id": client_id, "name": client_id, "confidential": True, "password": secret,
            "client_secret": secret, "token_endpoint_auth_method": ["client_secret_basic", "client_secret_post"],
            "redirect_uri": redirect_uris, "scope": ["openid"],
            "authorization_type": ["code", "refresh_token", "device_authorization"], "enabled": True,
        })

    def add_user(self, username: str, password: str, *, name: str, email: str, groups: list[str]) -> None:
        self._call("POST", "/user/", {
            "username": username, "password": password, "name": name, "email": email,
            "scope": ["openid"], "groups": groups, "enabled": True,
        })

    def set_groups(self, username: str, groups: list[str]) -> None:
        user = self._call("GET", f"/user/{username}")
        user["groups"] = groups
        user.pop("password", None)
        self._call("PUT", f"/user/{username}", user)

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
