"""Huddle's settings: one class, read from `HUDDLE_*` environment variables and an optional `.env`."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = REPO_ROOT / "var" / "huddle.db"
PLACEHOLDER_SECRET = "dev-insecure-change-me"


class Settings(BaseSettings):
    """Every knob an operator or a test harness may set; the names are part of the contract."""

    model_config = SettingsConfigDict(env_prefix="HUDDLE_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DB_PATH}"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    hostname: str = "localhost"
    public_url: str = "http://127.0.0.1:8000"
    service_did: str = ""
    relay_url: str = ""
    plc_url: str = "https://plc.directory"
    api_port: int = 8000
    api_host: str = "127.0.0.1"
    temporal_ui_port: int = 8233
    temporal_db_file: str = str(REPO_ROOT / "var" / "temporal.db")
    dev_mode: bool = False
    smtp_url: str = ""
    admin_dids: str = ""

    # Secrets. The placeholder is refused outside dev mode (see _refuse_placeholders).
    secret_key: str = PLACEHOLDER_SECRET
    token_keys: str = Field(
        default="",
        description="Comma-separated Fernet keys for tokens at rest; the first encrypts, all decrypt.",
    )

    # Durations are settings so tests can run holds and retries in seconds.
    hold_seconds_override: int | None = None
    match_max_attempts: int = 5
    hold_sweep_interval_seconds: int = 60
    hold_sweep_grace_seconds: int = 30
    task_queue_prefix: str = "huddle"

    # Identity and service auth (api/auth.py, clients/identity).
    handle_resolver_urls: str = Field(
        default="", description="Comma-separated base URLs answering com.atproto.identity.resolveHandle."
    )
    identity_cache_ttl_seconds: float = 300.0
    identity_cache_max_entries: int = 10_000
    identity_refresh_cooldown_seconds: float = 5.0
    service_auth_leeway_seconds: int = Field(default=10, ge=0, le=10)
    service_auth_replay_check: bool = True

    # Firehose consumer, repo backfill, drift repair and the follow graph (workers/firehose,
    # clients/repo_reader.py, clients/graph.py). Intervals are settings so tests run them in seconds.
    firehose_start_cursor: int | None = Field(
        default=None,
        description="Where a consumer with no stored cursor starts: a seq (0: all the source still holds, "
        "-1: live events only); unset: live events only, or 0 in dev mode.",
    )
    firehose_cursor_every_events: int = 1000
    firehose_cursor_every_seconds: float = 2.0
    firehose_flush_seconds: float = 0.05
    firehose_heartbeat_seconds: float = 10.0
    firehose_ping_seconds: float = 20.0
    firehose_backoff_initial_seconds: float = 0.5
    firehose_backoff_max_seconds: float = 60.0
    firehose_known_refresh_seconds: float = 5.0
    firehose_resync_concurrency: int = 4
    firehose_stats_log_seconds: float = 60.0
    repo_fetch_timeout_seconds: float = 10.0
    graph_refetch_after_seconds: float = 6 * 3600.0
    drift_repair_interval_seconds: int = 3600

    # Rate limits for procedures (api/ratelimit.py), shared by replicas through the database.
    rate_limit_enabled: bool = True
    rate_limit_caller_capacity: int = 20
    rate_limit_caller_refill_per_second: float = 0.5
    rate_limit_ip_capacity: int = 100
    rate_limit_ip_refill_per_second: float = 2.0

    # Calendar connectors (clients/calendar, api/routes/connectors.py and webhooks.py). Provider
    # endpoints are settings so tests can point the production clients at local emulators.
    google_client_id: str = ""
    google_client_secret: str = ""
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    google_api_endpoint: str = Field(
        default="", description="Calendar v3 base URL; empty: the discovery document's own."
    )
    microsoft_client_id: str = ""
    microsoft_client_secret: str = ""
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_url: str = "https://graph.microsoft.com/v1.0"
    # MSAL checks an authority it does not know with Microsoft's instance discovery; off for emulators.
    microsoft_instance_discovery: bool = True
    calendar_ca_bundle: str = Field(default="", description="Extra CA file trusted for provider HTTPS.")
    calendar_http_timeout_seconds: float = 20.0
    calendar_busy_cache_ttl_seconds: int = 300
    # An invitation nobody answered yet still blocks the time unless this is false.
    calendar_unanswered_is_busy: bool = True
    calendar_webhooks_enabled: bool = True
    calendar_channel_ttl_seconds: int = 7 * 24 * 3600
    calendar_channel_renew_before_seconds: int = 24 * 3600
    calendar_token_refresh_before_seconds: int = 15 * 60
    calendar_maintenance_interval_seconds: int = 15 * 60
    calendar_oauth_state_ttl_seconds: int = 600
    calendar_allow_private_servers: bool = Field(
        default=False, description="Let CalDAV URLs point at private addresses (always allowed in dev mode)."
    )

    # Notifications (activities/notifications.py, clients/mail). smtp_url takes the options
    # ?starttls=auto|always|never, ?cafile=PATH, ?timeout=SECONDS; empty: the Maildir sink in mail_sink_dir.
    mail_from: str = Field(
        default="", description='Sender, e.g. "Huddle <bookings@example.org>"; empty: no-reply@hostname.'
    )
    mail_sink_dir: str = str(REPO_ROOT / "var" / "mail")
    smtp_timeout_seconds: float = 20.0
    # The outbox retry schedule: rows still pending this long after they were written are sent again by it,
    # and given up on (marked failed) after outbox_give_up_after_seconds.
    outbox_retry_interval_seconds: int = 60
    outbox_retry_after_seconds: int = 600
    outbox_give_up_after_seconds: int = 3 * 24 * 3600

    # Web app: ATProto OAuth sign-in and cookie sessions (api/web, api/sessions.py, clients/oauth).
    # Without oauth_client_keys, dev mode on a loopback public_url uses a loopback OAuth client.
    oauth_scope: str = "atproto repo:com.huddle.slotOffer"
    oauth_client_keys: str = Field(
        default="",
        description="Private ES256 JWKs of the confidential OAuth client (a JWK, a list, or a JWK set); "
        "the first signs. Make one with `python -m clients.oauth.config`.",
    )
    oauth_login_ttl_seconds: int = 600
    web_session_max_age_seconds: int = 14 * 24 * 3600
    web_cookie_secure: bool | None = None  # Secure cookies; unset: when public_url is https
    web_status_poll_seconds: float = 2.0
    # How often the housekeeping schedule (activities/housekeeping.py) deletes web sessions past
    # web_session_max_age_seconds, expired refresh leases and expired idempotency keys.
    housekeeping_interval_seconds: int = 3600
    # Where the admin pages link workflows to; empty: http://127.0.0.1:<temporal_ui_port>.
    temporal_ui_url: str = ""

    # Operations (workers/telemetry.py, workers/logs.py, api/metrics.py, api/routes/debug.py).
    otlp_endpoint: str = Field(
        default="", description="OTLP/HTTP collector base URL (e.g. http://collector:4318); empty: no export."
    )
    otel_console: bool = Field(default=False, description="Development: also print spans and metrics.")
    worker_metrics_port: int | None = Field(
        default=None,
        description="A worker's /metrics and /debug/tracez port; 0: none; unset: 9464 in dev mode.",
    )
    worker_metrics_host: str = "127.0.0.1"
    firehose_metrics_port: int | None = Field(
        default=None,
        description="`huddle firehose`'s /metrics and /debug/tracez port (on worker_metrics_host); "
        "0: none; unset: 9465 in dev mode.",
    )
    trace_slow_ms: float = 500.0
    debug_peer_urls: str = Field(
        default="",
        description="Comma-separated worker debug base URLs whose spans /debug/tracez?trace= adds.",
    )
    log_format: str = Field(default="", description='"json" or "text"; empty: text in dev mode, else JSON.')

    @model_validator(mode="after")
    def _derive_and_check(self) -> Self:
        if not self.service_did:
            self.service_did = f"did:web:{self.hostname}"
        if not self.dev_mode:
            if self.secret_key == PLACEHOLDER_SECRET:
                raise ValueError("HUDDLE_SECRET_KEY is the development placeholder; set a real secret")
            if not self.token_keys:
                raise ValueError("HUDDLE_TOKEN_KEYS must be set outside development mode")
        return self

    @property
    def admin_did_list(self) -> list[str]:
        return [d.strip() for d in self.admin_dids.split(",") if d.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def task_queue(self, role: str) -> str:
        """Task queue for a role (bookings, calendar, notify, index), e.g. `huddle-bookings`."""
        return f"{self.task_queue_prefix}-{role}"


@cache
def get_settings() -> Settings:
    """The process's settings, read once on first use (never at import time)."""
    return Settings()
