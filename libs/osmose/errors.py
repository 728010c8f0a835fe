"""One error tree for the whole platform.

Whether a message is retried or dead-lettered depends only on the class of the
error it raised; errors from dependencies are translated into these types at the
boundary that calls the dependency (parsers, stores, backends)::

    OsmoseError
    ├── ConfigurationError          bad settings or a missing system tool; fix and restart
    ├── RetryableError              transient: retry with backoff, then dead-letter
    │   └── BackendUnavailableError a store or model server did not answer
    └── PermanentError              retrying cannot help: dead-letter at once
        └── DocumentError           the input file is rejected; `reason` is a stable code
            ├── EmptyDocumentError
            ├── CorruptDocumentError
            ├── EncryptedDocumentError
            ├── UnsupportedFormatError
            └── DocumentTooLargeError
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "CorruptDocumentError",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "OsmoseError",
    "PermanentError",
    "RetryableError",
    "UnsupportedFormatError",
]


class OsmoseError(Exception):
    """Root of every error Osmose raises on purpose."""


class ConfigurationError(OsmoseError):
    """Settings are invalid or a required tool is missing."""


class RetryableError(OsmoseError):
    """A transient failure: the same input may succeed later."""


class BackendUnavailableError(RetryableError):
    """A store or model server could not be reached or timed out."""


class PermanentError(OsmoseError):
    """Retrying the same input cannot succeed."""


class DocumentError(PermanentError):
    """An input document is rejected. `reason` is a short stable code for machines,
    the message explains it to people."""

    reason = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}" if self.args else self.reason


class EmptyDocumentError(DocumentError):
    reason = "empty"


class CorruptDocumentError(DocumentError):
    reason = "corrupt"


class EncryptedDocumentError(DocumentError):
    reason = "encrypted"


class UnsupportedFormatError(DocumentError):
    reason = "unsupported-format"


class DocumentTooLargeError(DocumentError):
    reason = "too-large"
