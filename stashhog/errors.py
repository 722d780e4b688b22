"""Every error a caller can act on, in one hierarchy.

Each carries its HTTP ``status``, a machine-readable ``code`` and, when there is one, the
offending ``key``; the API answers any of them as ``{"error": {"code", "message", "key"?,
…}}`` (``stashhog.api.errors``) and the CLI prints the message. Services, the daemon and job
registries and the API's request parsing all raise these; this module imports nothing, so any
layer may.
"""

from __future__ import annotations


class StashHogError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        key: str | None = None,
        status: int | None = None,
        **details: object,
    ) -> None:
        super().__init__(message)
        self.message, self.key, self.details = message, key, details
        if code:
            self.code = code
        if status:
            self.status = status

    def to_dict(self) -> dict[str, object]:
        """The ``error`` object of an API response."""
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.key is not None:
            body["key"] = self.key
        return {**body, **self.details}


class NotFound(StashHogError):
    status, code = 404, "not_found"


class Conflict(StashHogError):
    status, code = 409, "conflict"


class Invalid(StashHogError):
    """Input that parsed but breaks a rule (e.g. a configuration key of the wrong type)."""

    status, code = 422, "invalid"


class PreconditionFailed(StashHogError):
    """An edit sent with ``If-Match`` an ETag that no longer matches: someone changed it."""

    status, code = 412, "precondition_failed"


class Unavailable(StashHogError):
    status, code = 503, "unavailable"


class ApiError(StashHogError):
    """A request the API refuses before any service runs: malformed JSON, an unknown query
    parameter, a body that breaks its schema."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        key = details.pop("key", None)
        super().__init__(message, code=code, key=key, status=status, **details)


class JobNotFound(NotFound):
    """No job row has this id."""


class JobValidationError(Invalid):
    """A job request that cannot run: names the offending key ("type", "metadata" or a
    metadata key such as "steps"); ``reason`` says what is wrong with it."""

    def __init__(self, key: str, reason: str) -> None:
        code = "invalid" if key == "type" else "invalid_metadata"
        super().__init__(f"{key}: {reason}", code=code, key=key)
        self.reason = reason


class ConfigurationError(Invalid):
    """A daemon configuration was rejected; ``key`` names the offending key (dotted for
    nested), ``reason`` says what is wrong with it."""

    code = "invalid_configuration"

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason, key=key)
        self.reason = reason


class UnknownDaemonType(Conflict):
    """A daemon's type has no registered class (its module is not installed)."""

    def __init__(self, daemon_type: str) -> None:
        super().__init__(
            f"no daemon class for type {daemon_type!r}; this daemon type is not installed"
        )
