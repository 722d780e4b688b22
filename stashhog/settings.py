"""Every setting read from the environment, in one typed model: its variable, type, default,
meaning and the form a value must take. ``stashhog.config.load_config`` turns it into the
Flask config; ``python -m stashhog.settings_docs`` prints the README's table from it.

Values come from the environment over a ``.env`` file (``stashhog.config.ENV_FILE``). An
empty variable counts as unset. A value of the wrong form is refused with one error that
names each bad variable and the form it expects; secrets (SECRET_KEY, FLOWER_BASIC_AUTH, the
password in a URL) are never shown, in errors or in the model's repr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DATABASE_URI = f"sqlite:///{ROOT / 'instance' / 'stashhog.db'}"


@dataclass(frozen=True)
class Form:
    """What a valid value looks like, as the error message says it."""

    text: str


FLAGS = {"true": True, "1": True, "yes": True, "on": True}
FLAGS |= {"false": False, "0": False, "no": False, "off": False}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return FLAGS[value.strip().lower()]
        except KeyError:
            raise ValueError("not a boolean word") from None
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Seconds = Annotated[float, Field(gt=0), Form("a number of seconds above 0, e.g. 2.5")]
Count = Annotated[int, Field(ge=1), Form("a whole number of at least 1")]
Days = Annotated[int, Field(ge=1), Form("a whole number of days, at least 1")]
Port = Annotated[int, Field(ge=1, le=65535), Form("a port number from 1 to 65535")]
Flag = Annotated[bool, BeforeValidator(_flag), Form("true or false (or 1/0, yes/no, on/off)")]
CommaList = Annotated[
    list[str], NoDecode, BeforeValidator(_comma_list), Form("a comma-separated list")
]
Text = Annotated[str, Form("text")]


def setting(
    default: Any,
    env: str,
    meaning: str,
    *,
    shown: str | None = None,
    process: bool = False,
    **field: Any,
) -> Any:
    """One setting: its variable ``env``, its ``default`` (``shown`` in the table when the
    value itself would not say it), and what it means."""
    extra: dict[str, Any] = {"process": process}
    if shown is not None:
        extra["shown"] = shown
    return Field(
        default, validation_alias=env, description=meaning, json_schema_extra=extra, **field
    )


def process_setting(default: Any, env: str, meaning: str, **field: Any) -> Any:
    """A setting of the processes (the Procfile, ``make run``, the containers), not of the
    Flask config."""
    return setting(default, env, meaning, process=True, **field)


# DAEMON_CONCURRENCY when unset, by DAEMON_POOL.
DAEMON_CONCURRENCY_BY_POOL = {"prefork": 4, "threads": 200}


class Settings(BaseSettings):
    """Field names are the Flask config keys; each field's alias is its variable."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", dotenv_filtering="only_existing"
    )

    # -- storage and services --
    SQLALCHEMY_DATABASE_URI: Annotated[
        str, Form("a database URL such as postgresql://user:password@host:5432/db")
    ] = setting(
        EMBEDDED_DATABASE_URI,
        "DATABASE_URL",
        "a bare `postgresql://` URL is mapped to psycopg2",
        shown="SQLite in `instance/`",
        repr=False,
    )
    REDIS_URL: Annotated[str, Form("a Redis URL such as redis://host:6379/0")] = setting(
        "redis://127.0.0.1:6379/0", "REDIS_URL", "broker, pub/sub and leases", repr=False
    )
    SECRET_KEY: SecretStr | None = setting(
        None,
        "SECRET_KEY",
        "Flask secret: from the environment, else from `instance/secret_key` (which `make run`"
        " creates: random, mode 0600, kept across runs). The built-in dev value is refused"
        " with any database but the embedded SQLite default",
        shown="`instance/secret_key`, else a dev value",
    )
    REDIS_PREFIX: Text = setting(
        "stashhog", "STASHHOG_REDIS_PREFIX", "prefix of every Redis key and channel"
    )
    # -- daemons --
    STOP_TIMEOUT: Seconds = setting(
        10.0,
        "STASHHOG_STOP_TIMEOUT",
        "seconds a stopping daemon gets for `on_stop()` before SIGKILL",
    )
    LEASE_TTL: Seconds = setting(
        3.0,
        "STASHHOG_LEASE_TTL",
        "seconds a daemon's lease lives without renewal (renewed every TTL/3)",
    )
    RECONCILE_INTERVAL: Seconds = setting(
        1.0, "STASHHOG_RECONCILE_INTERVAL", "seconds between supervisor passes"
    )
    DAEMON_MODULES: Annotated[str, Form("comma-separated module names")] = setting(
        "",
        "STASHHOG_DAEMON_MODULES",
        "extra modules (comma-separated) that register daemon types",
        shown="empty",
    )
    MAX_CONTENT_LENGTH: Count = setting(
        1024 * 1024,
        "STASHHOG_MAX_CONTENT_LENGTH",
        "larger request bodies get 413 (chunked ones too)",
    )
    LOG_BUFFER_LINES: Count = setting(
        50_000,
        "STASHHOG_LOG_BUFFER_LINES",
        "log lines one daemon instance holds in memory (waiting or being written); past it"
        " lines are dropped and counted",
    )
    LOG_BUFFER_BYTES: Count = setting(
        32 * 1024 * 1024,
        "STASHHOG_LOG_BUFFER_BYTES",
        "approximate memory of those lines (text + ~200 bytes a line); past it lines are"
        " dropped and counted",
    )
    # -- the media library --
    THUMBNAIL_DIR: Annotated[str, Form("a folder path")] = setting(
        str(ROOT / "instance" / "thumbnails"),
        "STASHHOG_THUMBNAIL_DIR",
        "the media library's cover thumbnails (`<dir>/<2 hex>/<file id>.jpg`): the app's own"
        " cache, never beside the media; jobs workers write it, the web serves from it",
        shown="`instance/thumbnails`",
    )
    THUMBNAIL_SIZE: Annotated[int, Field(ge=16), Form("a whole number of pixels, at least 16")] = (
        setting(320, "STASHHOG_THUMBNAIL_SIZE", "longest side of a cover thumbnail, in pixels")
    )
    # -- observability --
    METRICS_INTERVAL: Seconds = setting(
        5.0,
        "STASHHOG_METRICS_INTERVAL",
        "seconds between samples of a running instance's process (CPU, RSS, threads, files)",
    )
    LOG_MAX_LINES: Count = setting(
        1_000_000, "STASHHOG_LOG_MAX_LINES", "log lines kept per daemon that sets no retention"
    )
    LOG_MAX_AGE_DAYS: Days = setting(
        30, "STASHHOG_LOG_MAX_AGE_DAYS", "days log lines are kept for a daemon that sets none"
    )
    JOB_MAX_AGE_DAYS: Days = setting(30, "STASHHOG_JOB_MAX_AGE_DAYS", "days ended jobs are kept")
    PRUNE_INTERVAL: Seconds = setting(
        10.0, "STASHHOG_PRUNE_INTERVAL", "seconds between retention passes (run by beat)"
    )
    ALERT_NOTIFY_INTERVAL: Seconds = setting(
        5.0,
        "STASHHOG_ALERT_NOTIFY_INTERVAL",
        "seconds between two notifications of one channel (alerts in between are grouped)",
    )
    # -- access --
    TRUSTED_HOSTS: CommaList = setting(
        ["127.0.0.1", "localhost"],
        "STASHHOG_TRUSTED_HOSTS",
        "comma-separated `Host` names the panel answers (ports ignored; `.example.org`"
        " includes subdomains); add the name users type behind a proxy",
        shown="`127.0.0.1,localhost`",
    )
    ALLOWED_ORIGINS: CommaList = setting(
        [],
        "STASHHOG_ALLOWED_ORIGINS",
        "comma-separated origins besides the panel's own allowed to open the socket and send"
        " cookie-carried changes (`https://panel.example.org`)",
        shown="none",
    )
    PROXY_HOPS: Annotated[int, Field(ge=0), Form("a whole number, 0 or more")] = setting(
        0,
        "STASHHOG_PROXY_HOPS",
        "reverse proxies in front whose `X-Forwarded-For/-Proto/-Host` are believed (audit"
        " addresses, Secure cookie); 1 behind one nginx",
    )
    LOGIN_RATE_LIMIT: Annotated[str, Form("a rate such as '10 per minute'")] = setting(
        "10 per minute",
        "STASHHOG_LOGIN_RATE_LIMIT",
        "failed sign-ins allowed per address and per username",
    )
    PERMANENT_SESSION_LIFETIME: Count = setting(
        12 * 3600, "STASHHOG_SESSION_LIFETIME", "seconds a sign-in lasts"
    )
    SESSION_COOKIE_SECURE: Flag = setting(
        False,
        "STASHHOG_SESSION_COOKIE_SECURE",
        "force the Secure flag (it is set over HTTPS anyway)",
    )
    # -- live views --
    MAX_WEBSOCKETS: Count = setting(
        500,
        "STASHHOG_MAX_WEBSOCKETS",
        "live viewers (WebSockets) one web process holds; more get 503 before the upgrade",
    )
    WS_MAX_MESSAGE_BYTES: Count = setting(
        64 * 1024,
        "STASHHOG_WS_MAX_MESSAGE_BYTES",
        "largest message a client may send on the socket; a larger one closes it (1009)",
    )
    WS_MAX_SUBSCRIPTIONS: Count = setting(
        100, "STASHHOG_WS_MAX_SUBSCRIPTIONS", "daemons one socket may follow at once"
    )
    # -- where it is served --
    HOST: Annotated[str, Form("an IPv4 address or host name such as 127.0.0.1 or 0.0.0.0")] = (
        setting(
            "127.0.0.1",
            "HOST",
            "the address web and Flower listen on (`0.0.0.0`: every interface, e.g. in a"
            " container); the panel still answers only `STASHHOG_TRUSTED_HOSTS`",
        )
    )
    URL_PREFIX: Annotated[str, Form("a path such as /daemons-panel")] = setting(
        "",
        "URL_PREFIX",
        "path the panel, API, WebSocket, static files and Flower (`<prefix>/flower`) are"
        " served under behind a reverse proxy, e.g. `/daemons-panel`",
        shown="none",
    )
    # -- the processes (Procfile) --
    PORT: Port = process_setting(5000, "PORT", "the web process's port")
    FLOWER_PORT: Port = process_setting(5555, "FLOWER_PORT", "Flower's port")
    WEB_WORKERS: Count = process_setting(1, "WEB_WORKERS", "gunicorn worker processes")
    DAEMON_POOL: Annotated[Literal["prefork", "threads"], Form("prefork or threads")] = (
        process_setting(
            "prefork",
            "DAEMON_POOL",
            "the daemons worker's pool for `make run`: `prefork`, a process per daemon"
            " (isolation: a stuck daemon is killed alone, memory and CPU limits apply), or"
            " `threads`, every daemon a thread of one process (high density, about 1,000 on"
            " 2 cores; no per-daemon limits, and a daemon stuck in its stop restarts its"
            " worker)",
        )
    )
    DAEMON_CONCURRENCY: Count | None = process_setting(
        None,
        "DAEMON_CONCURRENCY",
        "pool slots of a daemons worker, i.e. how many daemons one worker can run",
        shown="4 (prefork), 200 (threads)",
    )
    JOB_CONCURRENCY: Count = process_setting(2, "JOB_CONCURRENCY", "pool slots of a jobs worker")
    CELERY_BEAT_SCHEDULE: Annotated[str, Form("a file path")] = process_setting(
        "instance/celerybeat-schedule", "CELERY_BEAT_SCHEDULE", "beat's schedule file"
    )
    FLOWER_BASIC_AUTH: Annotated[SecretStr, Form("user:password")] | None = process_setting(
        None,
        "FLOWER_BASIC_AUTH",
        "Flower's `user:password` (the Procfile refuses to start Flower without it; `make"
        " run` generates `instance/flower_basic_auth` when unset)",
        shown="generated",
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
        # The environment and .env are read by ``read`` (a given mapping, a given file).
        return (init_settings,)

    @field_validator("SQLALCHEMY_DATABASE_URI")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not re.match(r"(redis|rediss|unix)://", value):
            raise ValueError("not a Redis URL")
        return value

    @field_validator("LOGIN_RATE_LIMIT")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # ValueError when it is not a rate
        return value

    @field_validator("HOST")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", value.strip()):
            raise ValueError("not an address")
        return value.strip()

    @field_validator("FLOWER_BASIC_AUTH")
    @classmethod
    def _user_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("not user:password")
        return value


def is_process_setting(name: str) -> bool:
    extra = Settings.model_fields[name].json_schema_extra or {}
    return bool(extra.get("process"))
