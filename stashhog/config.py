"""One configuration path: defaults here, overridden by environment variables, then by a test
mapping. Nothing else in the code reads ``os.environ``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The embedded default, the only database the built-in SECRET_KEY may be used with.
EMBEDDED_DATABASE_URI = f"sqlite:///{ROOT / 'instance' / 'stashhog.db'}"
DEV_SECRET_KEY = "dev-not-secret"
# Read when the environment sets no SECRET_KEY; ``make run`` creates it (random, mode 0600).
SECRET_KEY_FILE = ROOT / "instance" / "secret_key"

# Environment variable -> config key. Values are parsed by the type of the default.
ENV_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL": "REDIS_URL",
    "SECRET_KEY": "SECRET_KEY",
    "STASHHOG_REDIS_PREFIX": "REDIS_PREFIX",
    "STASHHOG_STOP_TIMEOUT": "STOP_TIMEOUT",
    "STASHHOG_LEASE_TTL": "LEASE_TTL",
    "STASHHOG_RECONCILE_INTERVAL": "RECONCILE_INTERVAL",
    "STASHHOG_MAX_CONTENT_LENGTH": "MAX_CONTENT_LENGTH",
    "STASHHOG_DAEMON_MODULES": "DAEMON_MODULES",
    "STASHHOG_LOG_BUFFER_LINES": "LOG_BUFFER_LINES",
    "STASHHOG_LOG_BUFFER_BYTES": "LOG_BUFFER_BYTES",
    "STASHHOG_MAX_WEBSOCKETS": "MAX_WEBSOCKETS",
    "STASHHOG_WS_MAX_MESSAGE_BYTES": "WS_MAX_MESSAGE_BYTES",
    "STASHHOG_WS_MAX_SUBSCRIPTIONS": "WS_MAX_SUBSCRIPTIONS",
    "STASHHOG_THUMBNAIL_DIR": "THUMBNAIL_DIR",
    "STASHHOG_THUMBNAIL_SIZE": "THUMBNAIL_SIZE",
    "STASHHOG_METRICS_INTERVAL": "METRICS_INTERVAL",
    "STASHHOG_LOG_MAX_LINES": "LOG_MAX_LINES",
    "STASHHOG_LOG_MAX_AGE_DAYS": "LOG_MAX_AGE_DAYS",
    "STASHHOG_JOB_MAX_AGE_DAYS": "JOB_MAX_AGE_DAYS",
    "STASHHOG_PRUNE_INTERVAL": "PRUNE_INTERVAL",
    "STASHHOG_ALERT_NOTIFY_INTERVAL": "ALERT_NOTIFY_INTERVAL",
    "STASHHOG_TRUSTED_HOSTS": "TRUSTED_HOSTS",
    "STASHHOG_ALLOWED_ORIGINS": "ALLOWED_ORIGINS",
    "STASHHOG_PROXY_HOPS": "PROXY_HOPS",
    "STASHHOG_LOGIN_RATE_LIMIT": "LOGIN_RATE_LIMIT",
    "STASHHOG_SESSION_LIFETIME": "PERMANENT_SESSION_LIFETIME",
    "STASHHOG_SESSION_COOKIE_SECURE": "SESSION_COOKIE_SECURE",
    "HOST": "HOST",
    "URL_PREFIX": "URL_PREFIX",
}


class Config:
    """Defaults for every setting; each can be overridden (see ``ENV_KEYS``)."""

    # From SECRET_KEY, else SECRET_KEY_FILE; this value only with the embedded default.
    SECRET_KEY = DEV_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = EMBEDDED_DATABASE_URI
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
    REDIS_URL = "redis://127.0.0.1:6379/0"
    # Seconds a stopping daemon gets for on_stop() before it is killed.
    STOP_TIMEOUT = 10.0
    # Seconds a daemon's lease lives without renewal; renewed every TTL/3 (at most 1 s).
    # Failover after a worker dies takes about TTL + RECONCILE_INTERVAL.
    LEASE_TTL = 3.0
    RECONCILE_INTERVAL = 1.0
    # Request bodies larger than this are refused with 413.
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Log lines one daemon instance holds in memory, waiting or being written, and their
    # approximate memory (text + ~200 bytes a line); past either, lines are dropped and
    # counted. 50,000 lines is about 2 s of what PostgreSQL absorbed on two busy cores, so
    # the live view stays that close, and a 10,000-line burst still fits whole.
    LOG_BUFFER_LINES = 50_000
    LOG_BUFFER_BYTES = 32 * 1024 * 1024
    # Extra modules (comma-separated) that register daemon types, e.g. a plugin package.
    DAEMON_MODULES = ""
    # Live viewers (WebSockets) one web process holds; more are refused with 503. Kept below
    # the web worker's connection limit (stashhog.webserver), so pages always have room.
    MAX_WEBSOCKETS = 500
    # Largest message a client may send on the socket (commands are ~100 bytes).
    WS_MAX_MESSAGE_BYTES = 64 * 1024
    # Daemons one socket may follow at once.
    WS_MAX_SUBSCRIPTIONS = 100
    # The media library's cover thumbnails (JPEG, one per file id): a cache of our own,
    # never beside the user's media. Jobs write it, the web process serves from it.
    THUMBNAIL_DIR = str(ROOT / "instance" / "thumbnails")
    # Longest side of a cover thumbnail, in pixels.
    THUMBNAIL_SIZE = 320
    # The address web and Flower listen on (127.0.0.1: this machine only).
    HOST = "127.0.0.1"
    # Path the panel, API, WebSocket, static files and Flower are served under behind a
    # reverse proxy (e.g. "/daemons-panel"); "" serves them at the root.
    URL_PREFIX = ""
    # Prefix of every Redis key and channel, so several installs can share one Redis.
    REDIS_PREFIX = "stashhog"

    # -- observability (stashhog.observability) --
    # Seconds between samples of a running instance's process (CPU, RSS, threads, files).
    METRICS_INTERVAL = 5.0
    # Full-resolution samples are kept this many hours; minute rollups this many days.
    METRICS_RAW_HOURS = 6
    METRICS_ROLLUP_DAYS = 8
    # Log retention when a daemon sets none: lines kept per daemon, and their age in days.
    LOG_MAX_LINES = 1_000_000
    LOG_MAX_AGE_DAYS = 30
    # Ended jobs, finished runs and resolved alerts (with their deliveries) are kept this long.
    JOB_MAX_AGE_DAYS = 30
    RUN_MAX_AGE_DAYS = 30
    ALERT_MAX_AGE_DAYS = 30
    # The prune task: how often beat runs it, rows one DELETE removes (each its own short
    # transaction, so ingest never waits), and the time one pass may spend.
    PRUNE_INTERVAL = 10.0
    PRUNE_BATCH = 5000
    PRUNE_PASS_SECONDS = 2.0
    # Notifications: one group per channel at most this often (seconds); a failed webhook
    # is retried with backoff doubling from 1 s up to the cap, this many attempts in all.
    ALERT_NOTIFY_INTERVAL = 5.0
    ALERT_RETRY_CAP = 30.0
    ALERT_ATTEMPTS = 5

    # -- access (stashhog.auth) --
    # Host header values the panel answers; any other gets 400, which stops DNS rebinding
    # against a panel on loopback. Ports are ignored; ".example.org" also takes subdomains.
    # Behind a reverse proxy, add the name users type (e.g. "panel.example.org").
    TRUSTED_HOSTS = ["127.0.0.1", "localhost"]
    # Origins, besides the panel's own, allowed to open the live socket and to send
    # cookie-carried changes (e.g. "https://panel.example.org" when a proxy rewrites Host).
    ALLOWED_ORIGINS: list[str] = []
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host are
    # believed (the client's address in the audit trail, HTTPS for the Secure cookie).
    # 0: none, the right value when nothing sits in front.
    PROXY_HOPS = 0
    # Failed sign-ins allowed per client address, and per username, in the window.
    LOGIN_RATE_LIMIT = "10 per minute"
    # Seconds a sign-in lasts.
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    # The session cookie is Secure over HTTPS anyway; True forces it for every request.
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True


def normalise_database_url(url: str) -> str:
    """Map bare PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


def _parse(raw: str, default: Any) -> Any:
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_config(environ: dict[str, str] | None = None, overrides: dict | None = None) -> dict:
    """Build the settings mapping: defaults (SECRET_KEY from ``SECRET_KEY_FILE`` if there is
    one), then ``environ``, then ``overrides``."""
    environ = os.environ if environ is None else environ
    settings = {key: getattr(Config, key) for key in dir(Config) if key.isupper()}
    if not environ.get("SECRET_KEY"):
        settings["SECRET_KEY"] = _secret_key_from_file() or settings["SECRET_KEY"]
    for env_name, key in ENV_KEYS.items():
        if environ.get(env_name):
            settings[key] = _parse(environ[env_name], settings[key])
    settings.update(overrides or {})
    settings["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        settings["SQLALCHEMY_DATABASE_URI"]
    )
    return settings


def _secret_key_from_file() -> str | None:
    try:
        return SECRET_KEY_FILE.read_text().strip() or None
    except FileNotFoundError:
        return None


class InsecureConfiguration(RuntimeError):
    """A setting that must not be used as it is, outside the embedded default."""


def require_secret_key(settings: dict) -> None:
    """Refuse the built-in SECRET_KEY anywhere but on the embedded SQLite default: signed
    cookies made with a published key can be forged by anyone."""
    key = settings.get("SECRET_KEY")
    if key and key != DEV_SECRET_KEY:
        return
    if settings["SQLALCHEMY_DATABASE_URI"] == EMBEDDED_DATABASE_URI:
        return
    raise InsecureConfiguration(
        "SECRET_KEY is not set, and the built-in development key is only allowed with the"
        " embedded SQLite database. Set the SECRET_KEY environment variable (e.g. to the"
        " output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) or write"
        f" a key to {SECRET_KEY_FILE}; `make run` creates that file when neither exists."
    )
