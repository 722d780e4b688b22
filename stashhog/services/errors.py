"""Errors services raise; the API maps each kind to its HTTP status."""


class ServiceError(Exception):
    """Base of the errors a caller can act on. ``code`` is machine-readable."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class Invalid(ServiceError):
    """Input that parsed but breaks a rule (e.g. a configuration key of the wrong type)."""

    status, code = 422, "invalid"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"
