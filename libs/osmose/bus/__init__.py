"""The bus of the distributed mode: Kafka topics, envelopes, claim check, consumers, job status.

Modules, one topic each:

``topics``        every topic, declared once from :data:`osmose.pipeline.STAGES`
``envelope``      envelope encoding, claim check, partition keys, headers
``blobs``         the claim-check blob store (``BlobStore`` protocol, ``LocalBlobStore``, ``S3BlobStore``)
``trace``         W3C ``traceparent`` propagation
``kafka_client``  the only module importing kafka-python: producer, admin, consumer factory
``offsets``       commit points between fetch and commit
``lanes``         priority classes and bounded in-flight work
``consumer``      a stage's consumer thread and its commit protocol
``jobs``          job status snapshots and the table rebuilt from the compacted topic
``dlq``           dead letters: list and replay
``exceptions``    the package's errors

Nothing here knows a stage's logic; :mod:`osmose.hosts.service` puts stages on the bus.
"""

from osmose.bus.blobs import BlobStore, LocalBlobStore
from osmose.bus.consumer import Delivery, StageConsumer
from osmose.bus.exceptions import BlobNotFoundError, BusError, BusUnavailableError, EnvelopeError, TopicError
from osmose.bus.jobs import JobTable, JobTail
from osmose.bus.kafka_client import BusConfig, Producer, ensure_topics
from osmose.bus.topics import TopicSpec, declare_topics

__all__ = [
    "BlobNotFoundError",
    "BlobStore",
    "BusConfig",
    "BusError",
    "BusUnavailableError",
    "Delivery",
    "EnvelopeError",
    "JobTable",
    "JobTail",
    "LocalBlobStore",
    "Producer",
    "StageConsumer",
    "TopicError",
    "TopicSpec",
    "declare_topics",
    "ensure_topics",
]
