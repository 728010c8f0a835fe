"""Errors of the model backends, placed in Osmose's one error tree.

HTTP and network failures are translated here (by :func:`osmose.models.http.raise_for_response`
and :func:`osmose.models.http.translate`), nowhere else::

    OsmoseError
    ├── ConfigurationError
    │   └── RouterConfigError            the router YAML is invalid
    ├── RetryableError
    │   └── BackendUnavailableError
    │       └── ModelUnavailableError    a model server could not give an answer (after retries)
    │           ├── CircuitOpenError     the endpoint's breaker is open: not even tried
    │           ├── ModelOverloadedError 429: the server asks to come back later (retry_after)
    │           ├── ModelServerError     5xx
    │           ├── ModelTimeoutError    no answer within the call's deadline
    │           └── ModelConnectionError the server cannot be reached
    └── PermanentError
        └── ModelRequestError            4xx other than 429: the request itself is wrong
            └── ModelOutputError         the answer does not fit the schema, even after repair

Whether a call is retried depends only on the class: every ``ModelUnavailableError``
except ``CircuitOpenError`` is retried (within the per-call attempts and the
per-document retry budget); ``ModelRequestError`` never is.
"""

from __future__ import annotations

from osmose.errors import BackendUnavailableError, ConfigurationError, PermanentError

__all__ = [
    "CircuitOpenError",
    "ModelConnectionError",
    "ModelOutputError",
    "ModelOverloadedError",
    "ModelRequestError",
    "ModelServerError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "RouterConfigError",
]


class RouterConfigError(ConfigurationError):
    """The router configuration (YAML) is invalid."""


class ModelUnavailableError(BackendUnavailableError):
    """A model server could not give an answer; `endpoint` names it."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


class CircuitOpenError(ModelUnavailableError):
    """The endpoint's circuit breaker is open: the call was not attempted."""


class ModelOverloadedError(ModelUnavailableError):
    """429 Too Many Requests; `retry_after` is the server's Retry-After in seconds, if any."""

    def __init__(self, message: str, *, endpoint: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, endpoint=endpoint, status=429)
        self.retry_after = retry_after


class ModelServerError(ModelUnavailableError):
    """The server failed (5xx); `retry_after` is set when it sent a Retry-After (503)."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.retry_after = retry_after


class ModelTimeoutError(ModelUnavailableError):
    """No answer within the call's deadline."""


class ModelConnectionError(ModelUnavailableError):
    """The server could not be reached (refused, reset, DNS)."""


class ModelRequestError(PermanentError):
    """The server rejected the request (4xx other than 429): unknown model, input too long, ..."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


class ModelOutputError(ModelRequestError):
    """The model answered, but not in the required shape (even after a repair attempt)."""
