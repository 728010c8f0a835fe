"""Errors of the bus package, placed in the platform's error tree (:mod:`osmose.errors`)::

    OsmoseError
    └── BusError                    root of everything this package raises
        ├── BusUnavailableError     the broker did not answer in time (also a BackendUnavailableError:
        │                           retryable); a service that cannot publish exits and is restarted
        ├── TopicError              topics cannot be created or are missing (also a ConfigurationError)
        ├── EnvelopeError           a message is not a valid envelope (also a PermanentError: poison)
        ├── BlobNotFoundError       a claim-check reference points at nothing (also a PermanentError)
        ├── BlobStoreUnavailableError  the blob store did not answer, or failed a write (also a
        │                           BackendUnavailableError: retryable)
        └── BlobStoreConfigurationError  the bucket is missing, credentials are refused or the blob
                                    store's URL is malformed (also a ConfigurationError)

kafka-python's exceptions are translated into these at one place, :mod:`osmose.bus.kafka_client`;
boto3's at one place too, :mod:`osmose.bus.blobs.s3`.
"""

from __future__ import annotations

from osmose.errors import BackendUnavailableError, ConfigurationError, OsmoseError, PermanentError

__all__ = [
    "BlobNotFoundError",
    "BlobStoreConfigurationError",
    "BlobStoreUnavailableError",
    "BusError",
    "BusUnavailableError",
    "EnvelopeError",
    "TopicError",
]


class BusError(OsmoseError):
    """Root of the bus package's errors."""


class BusUnavailableError(BusError, BackendUnavailableError):
    """The Kafka broker could not be reached, or did not acknowledge in time."""


class TopicError(BusError, ConfigurationError):
    """Topics could not be created, or a topic the process needs does not exist."""


class EnvelopeError(BusError, PermanentError):
    """A Kafka message that is not a valid envelope: it can never be processed."""

    reason = "bad-envelope"


class BlobNotFoundError(BusError, PermanentError):
    """A claim-check reference whose blob is not in the store."""

    reason = "blob-not-found"


class BlobStoreUnavailableError(BusError, BackendUnavailableError):
    """The blob store could not be reached, timed out, answered with a server error, or a
    write to it failed (a full disk, a broken share): the same call may succeed later."""


class BlobStoreConfigurationError(BusError, ConfigurationError):
    """The blob store cannot work as configured: the bucket does not exist, the credentials
    are refused, or its URL is malformed."""
