"""One configuration path: the settings model (``stashhog.settings``: every variable, typed
and documented) read from the environment over ``.env``, then a test mapping on top, plus the
few fixed values below. Nothing else in the code reads settings from ``os.environ``."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource

from stashhog.settings import (
    DAEMON_CONCURRENCY_BY_POOL,
    EMBEDDED_DATABASE_URI,
    ROOT,
    Form,
    Settings,
    is_process_setting,
)

__all__ = ["EMBEDDED_DATABASE_URI", "ROOT", "Settings", "SettingsError", "load_config"]

DEV_SECRET_KEY = "dev-not-secret"
# Read when the environment sets no SECRET_KEY; ``make run`` creates it (random, mode 0600).
SECRET_KEY_FILE = ROOT / "instance" / "secret_key"
# Variables the processes read when the environment does not set them (``KEY=value`` lines).
ENV_FILE = ROOT / ".env"
USE_ENV_FILE = object()  # load_config's default: ENV_FILE with the process environment

# Values no variable sets (tunables of the code, kept beside the settings for one lookup).
FIXED: dict[str, Any] = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Full-resolution samples are kept this many hours; minute rollups this many days.
    "METRICS_RAW_HOURS": 6,
    "METRICS_ROLLUP_DAYS": 8,
    # Finished runs and resolved alerts (with their deliveries) are kept this long.
    "RUN_MAX_AGE_DAYS": 30,
    "ALERT_MAX_AGE_DAYS": 30,
    # The prune task: rows one DELETE removes (each its own short transaction, so ingest
    # never waits), and the time one pass may spend.
    "PRUNE_BATCH": 5000,
    "PRUNE_PASS_SECONDS": 2.0,
    # A failed webhook is retried with backoff doubling from 1 s up to the cap, this many
    # attempts in all.
    "ALERT_RETRY_CAP": 30.0,
    "ALERT_ATTEMPTS": 5,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
}


def environment(env_file: Path | None = None) -> dict[str, str]:
    """The variables a process should see: ``env_file`` (default ``ENV_FILE``) under the
    process environment, which wins. For the launcher's children: the Procfile's commands
    read PORT and the rest from their environment."""
    path = ENV_FILE if env_file is None else env_file
    from_file = dotenv_values(path) if path.is_file() else {}
    merged = {name: value for name, value in from_file.items() if value}
    merged.update(os.environ)
    return merged


class _EnvironSource(EnvSettingsSource):
    """The environment source over a given mapping (``os.environ``, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {name: value for name, value in environ.items() if value != ""}


class SettingsError(ValueError):
    """Settings that cannot be used; the message names each variable and the form it takes."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        plural = "s" if len(problems) > 1 else ""
        super().__init__(f"invalid setting{plural}: " + "; ".join(problems))


def read(environ: Mapping[str, str], env_file: Path | None = None) -> Settings:
    """The settings from ``environ`` over ``env_file`` (when given and present)."""
    values: dict[str, Any] = {}
    if env_file is not None:
        values.update(DotEnvSettingsSource(Settings, env_file=env_file)())
    values.update(_EnvironSource(Settings, environ)())
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError([_problem(error) for error in exc.errors()]) from None


FIELDS_BY_VARIABLE = {field.validation_alias: name for name, field in Settings.model_fields.items()}
# A URL's credentials: everything before its last "@" (after the scheme, when there is one).
CREDENTIALS = re.compile(r"^([a-z][a-z0-9+.-]*://)?.*@", re.IGNORECASE | re.DOTALL)


def _problem(error: dict) -> str:
    variable = error["loc"][0]
    field = Settings.model_fields[FIELDS_BY_VARIABLE[variable]]
    form = next((m.text for m in field.metadata if isinstance(m, Form)), None)
    if form is None:  # SecretStr | None, or a form on the Annotated inside a union
        form = _union_form(field.annotation)
    return f"{variable}: expected {form}, got {_shown(field, error['input'])}"


def _union_form(annotation: Any) -> str:
    for member in getattr(annotation, "__args__", ()):
        for meta in getattr(member, "__metadata__", ()):
            if isinstance(meta, Form):
                return meta.text
    return "text"


def _shown(field, value: Any) -> str:
    """The value as an error may show it: never a secret, never a URL's credentials."""
    if _is_secret(field.annotation):
        return "a value that is not shown (it is a secret)"
    return repr(CREDENTIALS.sub(r"\1***@", str(value)))


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(member) for member in getattr(annotation, "__args__", ()))


def normalise_database_url(url: str) -> str:
    """Map bare PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare) :]
    return url


def settings_model(
    environ: Mapping[str, str] | None = None, env_file: Path | None | object = USE_ENV_FILE
) -> Settings:
    """The typed settings: ``environ`` (default ``os.environ``) over ``env_file`` (default
    ``ENV_FILE`` when ``environ`` is the process environment, none for a given mapping).
    Raises ``SettingsError`` naming each bad variable."""
    if env_file is USE_ENV_FILE:
        env_file = ENV_FILE if environ is None else None
    return read(os.environ if environ is None else environ, env_file)


def load_config(
    environ: Mapping[str, str] | None = None,
    overrides: dict | None = None,
    env_file: Path | None | object = USE_ENV_FILE,
) -> dict:
    """Build the Flask config: the settings (SECRET_KEY from ``SECRET_KEY_FILE`` if the
    environment sets none), then ``overrides``."""
    model = settings_model(environ, env_file)
    settings = copy.deepcopy(FIXED)
    for name in Settings.model_fields:
        if not is_process_setting(name):
            settings[name] = getattr(model, name)
    secret = model.SECRET_KEY.get_secret_value() if model.SECRET_KEY else None
    settings["SECRET_KEY"] = secret or _secret_key_from_file() or DEV_SECRET_KEY
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


# What a process prints (without a traceback) and exits on at start (app.py, the container's
# entrypoint), with gunicorn's "App failed to load" status: it stops gunicorn's master
# instead of starting the worker again and again.
CONFIGURATION_ERRORS = (SettingsError, InsecureConfiguration)
BAD_CONFIGURATION_EXIT = 4


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


def daemons_worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """DAEMON_POOL and DAEMON_CONCURRENCY for the Procfile's daemons line, as the settings
    read them from ``env``; the concurrency by pool when unset (4 processes, 200 threads).
    ``make run`` and the container entry both pass these to the line."""
    model = settings_model(dict(env), None)
    slots = model.DAEMON_CONCURRENCY or DAEMON_CONCURRENCY_BY_POOL[model.DAEMON_POOL]
    return {"DAEMON_POOL": model.DAEMON_POOL, "DAEMON_CONCURRENCY": str(slots)}
