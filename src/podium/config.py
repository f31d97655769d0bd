"""Settings: the only module that reads the environment.

Every setting has a name, a default and help text; ``docs/settings.md`` lists them and
a test fails when one is undocumented. Environment variables are ``PODIUM_<NAME>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.runtime.naming import is_hostname, url_host

# Like Heroku's dyno sizes: memory in MiB, CPU shares (1024 = one CPU under contention),
# processes (threads count) and open files per process.
SIZES = (
    "basic=512/512/256/1024 standard-1x=512/1024/256/4096 standard-2x=1024/2048/512/8192 "
    "performance=2560/8192/4096/32768"
)


def parse_sizes(text: str) -> dict[str, tuple[int, int, int, int]]:
    """``name=memory/cpu/processes/files ...`` as a table; ValueError naming the bad entry."""
    table: dict[str, tuple[int, int, int, int]] = {}
    for entry in text.split():
        name, _, numbers = entry.partition("=")
        parts = numbers.split("/")
        if not name or len(parts) != 4 or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise ValueError(f"size {entry!r}: write name=memory MiB/CPU shares/processes/open files")
        table[name] = (int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]))
    if not table:
        raise ValueError("at least one size is needed")
    return table


class Settings(BaseSettings):
    """Everything Podium can be told, built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".podium"), description="Directory for all state: store, releases, logs, router.")
    host: str = Field("127.0.0.1", description="Address the API server listens on.")
    port: int = Field(8000, description="Port the API server listens on.")
    router_port: int = Field(8080, description="Port the nginx router listens on for deployed apps.")
    router_host: str = Field(
        "127.0.0.1", description="Address the nginx router listens on (0.0.0.0: every IPv4 address of the machine)."
    )
    router_tls_port: int = Field(
        8443, description="Port the router serves custom domains with a certificate on (HTTPS, by SNI); "
        "nothing listens there until a domain has one."
    )
    base_domain: str = Field(
        "localhost", description="Domain apps are served under: <service>.<env>.<base domain>, and "
        "<service>.<base domain> for production."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the control-plane store; default: SQLite in the data dir."
    )
    public_url: str | None = Field(
        None, description="URL apps and the CLI use to reach this server; default: http://HOST:PORT."
    )
    cookie_secure: bool = Field(
        False, description="Mark the web session cookie Secure (set behind HTTPS)."
    )

    # Runtime: where releases run.
    runtime: Literal["local", "swarm"] = Field(
        "local", description="Where releases run: local (supervisord + nginx on this machine) or swarm "
        "(a Docker Swarm reached through its manager's Engine API at DOCKER_HOST)."
    )
    stack_image: str = Field(
        "podium-stack:bookworm-1", description="Swarm runtime: the base image of every release image "
        "(Debian with Python and nginx; `make stack-image` builds it)."
    )
    registry: str | None = Field(
        None, description="Swarm runtime: host:port of the registry release images are pushed to and every "
        "node pulls from; unset only for a one-node swarm."
    )
    docker_host: str | None = Field(
        None, validation_alias=AliasChoices("PODIUM_DOCKER_HOST", "DOCKER_HOST"),
        description="Swarm runtime: the manager's Engine API (DOCKER_HOST, as the docker CLI reads it: "
        "unix:///var/run/docker.sock, tcp://manager:2376); default: the local engine's socket."
    )

    # Several servers on one store.
    server_name: str | None = Field(
        None, description="Name of this server among those sharing the store (shown by /healthz); "
        "default: <host name>:<port>."
    )
    lease_interval: float = Field(
        1.0, description="Seconds between two looks at the leader lease: a follower tries to take it, "
        "the leader checks it still holds it and settles rollouts of servers that are gone."
    )
    lease_timeout: float = Field(
        6.0, description="Seconds of silence after which PostgreSQL drops the connection, and so the lease, "
        "of a server that vanished without closing it (a machine that lost power or its network)."
    )
    web_secret: str | None = Field(
        None, description="Secret signing the web pages' CSRF tokens and cookies; default: one made once "
        "and kept in the store, so every server of the store accepts every other's forms."
    )

    # Slug limits: checked before anything is unpacked.
    slug_max_bytes: int = Field(512 * 1024 * 1024, description="Largest accepted upload, compressed, in bytes.")
    slug_max_entries: int = Field(20_000, description="Most entries a slug may contain.")
    slug_max_unpacked_bytes: int = Field(
        1024 * 1024 * 1024, description="Most bytes a slug may unpack to."
    )
    slug_max_ratio: float = Field(200.0, description="Largest unpacked/compressed size ratio (gzip bombs).")

    # Bounded input.
    api_max_body_bytes: int = Field(
        1024 * 1024, description="Largest request body the API reads, in bytes, unless a route has a cap of its own."
    )
    api_max_events_body_bytes: int = Field(
        16 * 1024 * 1024, description="Largest body of POST /api/v1/events (a batch of up to 10,000 events), in bytes."
    )

    # Deploys.
    health_timeout: float = Field(30.0, description="Seconds a new release has to pass its health check.")
    health_wait_max: float = Field(
        300.0, description="Longest an app.json health check may wait in all (initialDelay + attempts x "
        "(timeout + wait)), in seconds; a slug asking for more is refused."
    )
    watch_window: float = Field(60.0, description="Seconds after going live in which failing health checks roll back.")
    rollout_workers: int = Field(4, description="Rollouts that run at once, all teams together.")
    rollout_team_share: int = Field(
        2, description="Rollouts one team's services run at once; the team's further rollouts wait their turn."
    )
    keep_releases: int = Field(5, description="Releases kept unpacked per service environment for instant rollback.")
    log_max_bytes: int = Field(10 * 1024 * 1024, description="Log bytes kept per process before rotation.")

    # Paging.
    paging_poll_interval: float = Field(
        0.5, description="Longest the paging worker waits before looking at the outbox again; a new page wakes it."
    )
    paging_escalation_interval: float = Field(
        5.0, description="Seconds between the paging worker's looks for unacknowledged incidents to escalate."
    )
    paging_retry_initial: float = Field(
        5.0, description="Seconds before a failed page is retried; the wait doubles after each failure."
    )
    paging_retry_max: float = Field(600.0, description="Longest wait between two attempts at sending a page.")
    paging_max_attempts: int = Field(
        15, description="Attempts at sending a page before giving up on it (it stays in the outbox, with its error)."
    )

    # Custom domains and their certificates.
    tls_interval: float = Field(
        60.0, description="Seconds between the certificate loop's looks for domains to issue, renew or retry."
    )
    tls_retry_initial: float = Field(
        300.0, description="Seconds before a failed certificate issuance is tried again; the wait doubles "
        "after each failure."
    )
    tls_retry_max: float = Field(86400.0, description="Longest wait between two attempts at issuing a certificate.")

    # Health checks and incidents.
    check_interval: float = Field(10.0, description="Seconds between probes of a new web check.")
    check_timeout: float = Field(5.0, description="Seconds a probe of a new web check may take.")
    check_down_after: int = Field(3, description="Failed probes in a row before a new web check says down.")
    check_up_after: int = Field(2, description="Passed probes in a row before a new web check says up again.")
    check_sync_interval: float = Field(
        5.0, description="Seconds between the checker's looks at the store for new releases and changed checks."
    )
    check_max_connections: int = Field(100, description="Most HTTP connections the checker opens at once.")
    check_raw_hours: float = Field(48.0, description="Hours raw check results are kept before they are rolled up.")
    check_minute_rollup_days: float = Field(
        14.0, description="Days per-minute rollups of check results are kept; per-hour ones stay."
    )
    incident_cause_window: float = Field(
        1800.0, description="Seconds after a release goes live in which a new incident names it as the likely cause."
    )

    # Billing.
    billing_price_sheet: Path | None = Field(
        None, description="TOML price sheet read at start; default: the one shipped with Podium."
    )
    billing_meter_interval: float = Field(
        60.0, description="Seconds between two metering ticks (process-seconds, log bytes, storage, requests)."
    )
    billing_close_after: float = Field(
        3600.0,
        description="Seconds after a month ends before its invoices are frozen; usage metered late counts until then.",
    )

    # Database add-ons.
    addons_postgres_url: str | None = Field(
        None, description="Superuser URL of an existing PostgreSQL server for database add-ons; "
        "default: a cluster Podium runs in <data dir>/postgres."
    )
    addons_postgres_port: int | None = Field(
        None, description="Port of the embedded PostgreSQL cluster; default: a free port chosen once and remembered."
    )
    addons_key: str | None = Field(
        None, description="Fernet key sealing add-on URLs at rest; default: <data dir>/addons.key, made on first use."
    )
    secrets_key: str | None = Field(
        None, description="Fernet key(s) sealing config vars in the store, comma-separated, the first sealing; "
        "default: <data dir>/secrets.key, made on first use."
    )
    addons_backup_dir: Path | None = Field(
        None, description="Folder for database backups; default: <data dir>/backups."
    )
    addons_backup_interval: float = Field(
        86400.0, description="Seconds between scheduled backups of each database; 0 turns them off."
    )
    addons_backup_retention_days: float = Field(
        7.0, description="Days a backup is kept; final backups and each database's newest one are kept regardless."
    )
    addons_sample_interval: float = Field(600.0, description="Seconds between samples of each database's size.")
    addons_probe_interval: float = Field(10.0, description="Seconds between probes of the database server.")
    addons_probe_down_after: int = Field(
        3, description="Failed probes in a row before the database server's incidents open (paging the platform team)."
    )
    addons_probe_up_after: int = Field(2, description="Passed probes in a row before those incidents resolve.")
    # Experiments.
    experiments_exposure_cap: float = Field(
        0.02,
        description="Largest coverage an experiment may run with unless its owner overrides the cap with a reason.",
    )
    experiments_stale_days: float = Field(
        14.0, description="Days an experiment may run without a decision before it is listed as stale."
    )
    experiments_guardrail_interval: float = Field(
        60.0, description="Seconds between two looks at running experiments' guardrails and incidents."
    )
    experiments_guardrail_p: float = Field(
        0.01, description="One-sided p-value below which a guardrail metric worse in a variant stops the experiment."
    )

    # People and single sign-on (OpenID Connect).
    oidc_issuer: str | None = Field(
        None, description="Issuer URL of the company's OpenID Connect provider (its /.well-known/openid-configuration "
        "is read from there); unset: no single sign-on, tokens only."
    )
    oidc_client_id: str | None = Field(None, description="Client id Podium is registered with at the provider.")
    oidc_client_secret: str | None = Field(None, description="Client secret Podium is registered with at the provider.")
    oidc_scopes: str = Field("openid email profile", description="Scopes asked for at sign-in, separated by spaces.")
    oidc_username_claim: str = Field(
        "preferred_username",
        description="Claim a new user's name is made from (then the e-mail's local part), as a DNS label.",
    )
    oidc_groups_claim: str = Field(
        "groups", description="Claim listing the person's groups at the provider; empty: groups are not read."
    )
    oidc_group_map: str = Field(
        "", description="Groups that make team memberships, as GROUP=TEAM[:ROLE] separated by commas "
        "(e.g. 'eng-checkout=checkout,checkout-leads=checkout:maintainer'); synced at each sign-in."
    )
    oidc_groups_as_teams: bool = Field(
        False, description="A group named like an existing team makes a membership of it (as member)."
    )
    session_hours: float = Field(12.0, description="Hours a web session made by single sign-on lasts.")
    login_days: float = Field(30.0, description="Days a CLI login made by `podium login` (device flow) lasts.")

    # Certificates issued over ACME (HTTP-01) for custom domains: docs/tls.md.
    acme_directory_url: str = Field(
        "https://acme-v02.api.letsencrypt.org/directory",
        description="Directory URL of the ACME server that issues custom domains' certificates (Let's Encrypt's "
        "by default); empty: no certificates are issued automatically, only uploaded ones are served.",
    )
    acme_email: str | None = Field(
        None, description="Contact e-mail of the ACME account (the CA's expiry and policy notices); optional."
    )
    acme_ca_bundle: Path | None = Field(
        None, description="PEM file of the CA certificates trusted for the ACME server's own HTTPS API "
        "(a private CA, or pebble in tests); default: the system's trust store."
    )
    acme_timeout: float = Field(
        90.0, description="Seconds one issuance may take, from the new order to the downloaded chain "
        "(challenge validation included) before it fails."
    )
    tls_renew_before_days: float = Field(
        30.0, description="Days before a certificate expires when it is issued anew."
    )

    # Sandbox and limits of app processes.
    sandbox: Literal["on", "off"] = Field(
        "on", description="on: each app process runs as its environment's own user (when root) in a bubblewrap "
        "sandbox with limits; off: as Podium's own user, unconfined (a baseline, or a machine without bwrap)."
    )
    sizes: str = Field(
        SIZES,
        description="Formation sizes an app.json may name: name=memory MiB/CPU shares/processes/open files, "
        "space-separated.",
    )
    default_size: str = Field("standard-1x", description="Size of a process whose app.json formation names none.")

    @field_validator("sizes")
    @classmethod
    def _sizes_parse(cls, value: str) -> str:
        parse_sizes(value)
        return value

    @field_validator("default_size")
    @classmethod
    def _default_size_known(cls, value: str, info: ValidationInfo) -> str:
        sizes = info.data.get("sizes")
        if isinstance(sizes, str) and value not in parse_sizes(sizes):
            raise ValueError(f"default_size {value!r} is not one of the sizes")
        return value

    @property
    def size_table(self) -> dict[str, tuple[int, int, int, int]]:
        """Size name → (memory MiB, CPU shares, processes, open files)."""
        return parse_sizes(self.sizes)

    @field_validator("base_domain")
    @classmethod
    def _base_domain_valid(cls, value: str) -> str:
        domain = value.strip().lower().rstrip(".")
        if not is_hostname(domain):
            raise ValueError(f"base_domain {value!r} is not a domain name (letters, digits, '-' and dots)")
        return domain

    @field_validator("data_dir", "addons_backup_dir", "acme_ca_bundle")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Resolved once, at load: a relative data dir (``make run``'s ``.podium``) would
        otherwise mean another place to each process started in another directory."""
        return path.expanduser().absolute() if path is not None else None

    @property
    def store_url(self) -> str:
        """The control-plane store's SQLAlchemy URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'podium.db').resolve()}"

    @property
    def base_url(self) -> str:
        """The URL at which this server is reached."""
        return self.public_url or f"http://{url_host(self.host)}:{self.port}"

    @property
    def router_address(self) -> str:
        """Where this machine reaches its router: its bind address, or loopback when it binds all."""
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (naming them, not binding)
        return wildcard.get(self.router_host, self.router_host)

    @property
    def router_url(self) -> str:
        """``http://<router address>:<router port>``, an IPv6 address in brackets."""
        return f"http://{url_host(self.router_address)}:{self.router_port}"

    @property
    def tls_dir(self) -> Path:
        """The ACME account's key and the challenge tokens live here."""
        return self.data_dir / "tls"

    @property
    def acme_challenge_dir(self) -> Path:
        """Where HTTP-01 tokens are written and the router serves them from."""
        return self.tls_dir / "challenges"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"
