"""Daemon configuration: a pydantic schema per daemon type, with a default and a description
per key. Stored configuration is merged over the defaults and validated."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from stashhog.errors import ConfigurationError


class DaemonConfig(BaseModel):
    """Settings every daemon has. Subclasses add their own keys."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)

    # The heartbeat coroutine wakes every 0.1 s, so a shorter interval would mean nothing.
    heartbeat_interval: float = Field(
        10, ge=0.1, le=3600, description="Seconds between heartbeat rows in the database."
    )
    max_active_jobs: int = Field(
        10,
        ge=1,
        le=1000,
        description="Jobs this daemon may have pending or running at once; launching one "
        "more raises JobLimitReached.",
    )


# What the API, the panel, events, logs and the audit trail show for a secret key that has a
# value; a PUT that sends it back leaves the stored value as it is.
SECRET_MASK = "********"


def secret_field(default: str = "", *, description: str) -> Any:
    """A write-only configuration key (a token, a password): stored, given to the daemon,
    never shown."""
    return Field(
        default, description=description, json_schema_extra={"secret": True, "writeOnly": True}
    )


def secret_keys(schema: type[DaemonConfig]) -> frozenset[str]:
    return frozenset(
        name
        for name, field in schema.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
    )


def secret_values(config: DaemonConfig) -> list[str]:
    """The non-empty values of the secret keys, longest first (so a value containing another
    is masked whole)."""
    values = (getattr(config, key) for key in secret_keys(type(config)))
    return sorted((v for v in values if isinstance(v, str) and v), key=len, reverse=True)


def mask_secrets(schema: type[DaemonConfig], configuration: Any) -> Any:
    """``configuration`` with each secret key that has a value replaced by ``SECRET_MASK``."""
    keys = secret_keys(schema)
    if not keys or not isinstance(configuration, dict):
        return configuration
    return {
        key: SECRET_MASK if key in keys and value not in (None, "") else value
        for key, value in configuration.items()
    }


def nested_error(key: str, message: str) -> PydanticCustomError:
    """Raised by a validator of a nested value (e.g. a dict checked against another schema),
    so the error names the key inside it: ``job_metadata.bogus``."""
    return PydanticCustomError("nested_key", "{message}", {"key": key, "message": message})


def describe(schema: type[DaemonConfig]) -> dict[str, dict[str, Any]]:
    """Defaults with a description and type per key, for the API and the editor."""
    json_schema = schema.model_json_schema()["properties"]
    return {
        name: {
            "default": field.get_default(call_default_factory=True),
            "description": field.description or "",
            "type": json_schema[name].get("type", "any"),
            **({"secret": True} if json_schema[name].get("secret") else {}),
        }
        for name, field in schema.model_fields.items()
    }


def validate_configuration(schema: type[DaemonConfig], stored: dict | None) -> DaemonConfig:
    """Merge ``stored`` over defaults and validate, naming the first offending key."""
    if stored is not None and not isinstance(stored, dict):
        raise ConfigurationError("", "configuration must be a JSON object")
    try:
        return schema.model_validate(stored or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = list(error["loc"])
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "nested_key":
            loc.append(error["ctx"]["key"])
            message = error["ctx"]["message"]
        raise ConfigurationError(".".join(str(part) for part in loc), message) from None
