"""Settings: the only module that reads the environment.

Every setting has a name, a default and help text; ``docs/settings.md`` lists them and
a test fails when one is undocumented. Environment variables are ``PODIUM_<NAME>``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything Podium can be told, built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    data_dir: Path = Field(Path(".podium"), description="Directory for all state: store, releases, logs, router.")
    host: str = Field("127.0.0.1", description="Address the API server listens on.")
    port: int = Field(8000, description="Port the API server listens on.")
    router_port: int = Field(8080, description="Port the nginx router listens on for deployed apps.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the control-plane store; default: SQLite in the data dir."
    )
    public_url: str | None = Field(
        None, description="URL apps and the CLI use to reach this server; default: http://HOST:PORT."
    )
    cookie_secure: bool = Field(
        False, description="Mark the web session cookie Secure (set behind HTTPS)."
    )

    # Slug limits: checked before anything is unpacked.
    slug_max_bytes: int = Field(512 * 1024 * 1024, description="Largest accepted upload, compressed, in bytes.")
    slug_max_entries: int = Field(20_000, description="Most entries a slug may contain.")
    slug_max_unpacked_bytes: int = Field(
        1024 * 1024 * 1024, description="Most bytes a slug may unpack to."
    )
    slug_max_ratio: float = Field(200.0, description="Largest unpacked/compressed size ratio (gzip bombs).")

    # Deploys.
    health_timeout: float = Field(30.0, description="Seconds a new release has to pass its health check.")
    watch_window: float = Field(60.0, description="Seconds after going live in which failing health checks roll back.")
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

    @field_validator("data_dir", "addons_backup_dir")
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
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"
