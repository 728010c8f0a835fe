"""Thin wrappers around kafka-python: the only module that imports it.

kafka-python's exceptions become :mod:`osmose.bus.exceptions` here. Nothing touches
the network in a constructor: the producer connects on first use, so building a
host (or running ``--help``) never needs a broker.

Producer guarantees: ``acks=all`` and the idempotent producer (kafka-python 3
supports it, on by default; set explicitly), so a retried send never duplicates
or reorders messages within a partition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from osmose.bus.exceptions import BusError, BusUnavailableError, TopicError
from osmose.bus.topics import TopicSpec

if TYPE_CHECKING:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.fetcher import ConsumerRecord

__all__ = ["BusConfig", "Producer", "ensure_topics", "new_consumer", "poll", "translate"]

logger = logging.getLogger(__name__)

_TOPIC_EXISTS = 36


@dataclass(frozen=True, kw_only=True)
class BusConfig:
    """How a process reaches the broker."""

    bootstrap: str = "127.0.0.1:9092"
    prefix: str = "osmose"
    client_id: str = "osmose"
    # How long to wait for the broker at start (and for each acknowledgement).
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    # Consumer group liveness: a process that died is evicted after this long.
    session_timeout_s: float = 10.0
    # Transport security (kafka-python's names and values).
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    # Created topics: replicas (None = the broker's default) and min.insync.replicas.
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    # False: the topics are an operator's (Strimzi KafkaTopic...); ensure_topics only waits for them.
    create_topics: bool = True

    @classmethod
    def from_settings(cls, settings: Any, *, client_id: str = "osmose", **overrides: Any) -> BusConfig:
        def path(value: Any) -> str | None:
            return str(value) if value else None

        password = settings.kafka_sasl_password
        return cls(bootstrap=settings.kafka_bootstrap, prefix=settings.topic_prefix, client_id=client_id,
                   security_protocol=settings.kafka_security_protocol, ssl_cafile=path(settings.kafka_ssl_cafile),
                   ssl_certfile=path(settings.kafka_ssl_certfile), ssl_keyfile=path(settings.kafka_ssl_keyfile),
                   sasl_mechanism=settings.kafka_sasl_mechanism, sasl_username=settings.kafka_sasl_username,
                   sasl_password=password.get_secret_value() if password else None,
                   replication_factor=settings.kafka_replication_factor,
                   min_insync_replicas=settings.kafka_min_insync_replicas,
                   create_topics=settings.kafka_create_topics, **overrides)

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    def common(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "bootstrap_timeout_ms": int(self.connect_timeout_s * 1000),
            "request_timeout_ms": int(self.request_timeout_s * 1000),
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options.update(ssl_check_hostname=True, ssl_cafile=self.ssl_cafile, ssl_certfile=self.ssl_certfile,
                           ssl_keyfile=self.ssl_keyfile)
        if self.security_protocol.startswith("SASL_"):
            options.update(sasl_mechanism=self.sasl_mechanism or "PLAIN", sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        return options


def translate(exc: BaseException, what: str, config: BusConfig) -> BusError:
    """A kafka-python exception as one of ours, with a message that says what to do."""
    from kafka import errors as kerr

    if isinstance(exc, BusError):
        return exc
    if isinstance(exc, kerr.KafkaTimeoutError | kerr.KafkaConnectionError):
        return BusUnavailableError(
            f"{what}: Kafka at {config.bootstrap} did not answer ({exc}); is the broker running? "
            "(`make kafka-up` starts one locally; OSMOSE_KAFKA_BOOTSTRAP points elsewhere)")
    if isinstance(exc, kerr.KafkaError) and getattr(exc, "retriable", False):
        return BusUnavailableError(f"{what}: {type(exc).__name__}: {exc}")
    return BusError(f"{what}: {type(exc).__name__}: {exc}")


def ensure_topics(config: BusConfig, specs: Iterable[TopicSpec], *, timeout_s: float = 30.0,
                  wait_s: float = 300.0, poll_s: float = 2.0) -> list[str]:
    """Create the topics that do not exist yet (idempotent; several processes may race).

    Returns the names created by this call. Existing topics are left as they are
    (their partitions and configs are the operator's to change). With ``config.create_topics``
    off (an operator such as Strimzi's Topic Operator owns them) nothing is created: the call
    waits up to ``wait_s`` for every declared topic to exist, then names the missing ones.
    """
    from kafka import KafkaAdminClient

    specs = list(specs)
    try:
        admin = KafkaAdminClient(**config.common())
    except Exception as exc:
        raise translate(exc, "connecting to create topics", config) from exc
    try:
        if not config.create_topics:
            _await_topics(admin, config, [s.name for s in specs], wait_s=wait_s, poll_s=poll_s)
            return []
        durability = {"min.insync.replicas": str(config.min_insync_replicas)} if config.min_insync_replicas else {}
        request = {s.name: {"num_partitions": s.partitions, "replication_factor": config.replication_factor or -1,
                            "configs": {**s.configs(), **durability}}
                   for s in specs}
        try:
            result = admin.create_topics(request, timeout_ms=int(timeout_s * 1000), raise_errors=False)
        except Exception as exc:
            raise translate(exc, "creating topics", config) from exc
        created, failed = [], []
        for topic in result.get("topics", []):
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(topic["name"])
            elif code != _TOPIC_EXISTS:
                failed.append(f"{topic['name']}: {topic.get('error_message') or code}")
        if failed:
            raise TopicError("cannot create topics: " + "; ".join(failed))
        try:
            admin.wait_for_topics([s.name for s in specs], timeout_ms=int(timeout_s * 1000))
        except Exception as exc:
            raise translate(exc, "waiting for topics", config) from exc
        if created:
            logger.info("created %d topics: %s", len(created), ", ".join(created))
        return created
    finally:
        admin.close()


def _await_topics(admin: Any, config: BusConfig, names: list[str], *, wait_s: float, poll_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            missing = sorted(set(names) - set(admin.list_topics()))
        except Exception as exc:
            raise translate(exc, "listing topics", config) from exc
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TopicError(f"{len(missing)} declared topics do not exist after {wait_s:.0f} s and "
                             f"OSMOSE_KAFKA_CREATE_TOPICS is false (the operator creates them; "
                             f"`osmose topics --json` lists them): {', '.join(missing)}")
        logger.info("waiting for %d topics the operator creates: %s", len(missing), ", ".join(missing[:5]))
        time.sleep(poll_s)


def new_consumer(config: BusConfig, *, group: str | None, **overrides: Any):  # -> KafkaConsumer
    """A consumer that never commits on its own (hosts commit after outputs are flushed)."""
    from kafka import KafkaConsumer

    options: dict[str, Any] = {
        **config.common(),
        "group_id": group,
        "enable_auto_commit": False,
        # A group's first member starts at the beginning: nothing submitted before
        # the first replica joined is lost.
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(config.session_timeout_s * 1000),
        "heartbeat_interval_ms": max(1000, int(config.session_timeout_s * 1000 / 3)),
        # How long the broker holds an empty fetch; data ends it at once, so this costs no latency.
        "fetch_max_wait_ms": 500,
    }
    options.update(overrides)
    try:
        return KafkaConsumer(**options)
    except Exception as exc:
        raise translate(exc, f"connecting consumer {group or ''}".strip(), config) from exc


def poll(consumer: KafkaConsumer, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
    """``consumer.poll``, working around a kafka-python 3.0 bug that starves resumed partitions.

    kafka-python keeps the fetched-but-not-returned records of a partition paused
    mid-batch aside (``_paused_partition_records``, KAFKA-7548) and gives them back on
    resume only when its in-line slot (``_next_partition_records``) is ``None``; but a
    fully consumed batch leaves an exhausted object there, never ``None``, so the parked
    records are never returned and the partition, counted as "has buffered data", is
    never fetched again: the partition stalls for good (reproduced with max_poll_records=2,
    pause mid-batch, resume). Resetting an exhausted slot to ``None`` after each poll is
    what the upstream code intends. Guarded, so a fixed release is unaffected.
    """
    records = consumer.poll(timeout_ms=timeout_ms)
    fetcher = getattr(consumer, "_fetcher", None)
    current = getattr(fetcher, "_next_partition_records", None)
    if fetcher is not None and current is not None and not current and hasattr(fetcher, "_paused_partition_records"):
        fetcher._next_partition_records = None
    return records


class Producer:
    """One per process, shared by every stage it hosts (KafkaProducer is thread-safe).

    :meth:`publish` waits for the broker's acknowledgement, which is what "flushed"
    means in the commit protocol (:mod:`osmose.bus.consumer`).
    """

    def __init__(self, config: BusConfig, *, linger_ms: int = 5) -> None:
        self.config = config
        self._linger_ms = linger_ms
        self._producer = None
        self._lock = threading.Lock()
        # send() can block (metadata of a new topic): off the event loop, on threads of its own so
        # CPU-bound stage work in the default executor never delays a publish.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kafka-send")

    def _get(self):  # -> KafkaProducer
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                try:
                    self._producer = KafkaProducer(
                        **self.config.common(), acks="all", enable_idempotence=True,
                        linger_ms=self._linger_ms, max_block_ms=int(self.config.request_timeout_s * 1000),
                    )
                except Exception as exc:
                    raise translate(exc, "connecting producer", self.config) from exc
            return self._producer

    def start(self) -> None:
        """Connect now (hosts call it at start so a missing broker fails fast)."""
        self._get()

    def send(self, topic: str, *, key: bytes, value: bytes | None,
             headers: list[tuple[str, bytes]] | None = None):  # -> kafka Future
        try:
            return self._get().send(topic, key=key, value=value, headers=headers or [])
        except Exception as exc:
            raise translate(exc, f"publishing to {topic}", self.config) from exc

    def publish_sync(self, topic: str, *, key: bytes, value: bytes | None,
                     headers: list[tuple[str, bytes]] | None = None, timeout_s: float | None = None) -> None:
        future = self.send(topic, key=key, value=value, headers=headers)
        try:
            future.get(timeout=timeout_s or self.config.request_timeout_s)
        except Exception as exc:
            raise translate(exc, f"publishing to {topic}", self.config) from exc

    async def publish(self, topic: str, *, key: bytes, value: bytes | None,
                      headers: list[tuple[str, bytes]] | None = None, timeout_s: float | None = None) -> None:
        """Send and wait for the acknowledgement (acks=all) without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future = await loop.run_in_executor(
            self._executor, functools.partial(self.send, topic, key=key, value=value, headers=headers))
        done: asyncio.Future[None] = loop.create_future()

        def settle(result: object = None, error: BaseException | None = None) -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)

        future.add_callback(lambda _meta: loop.call_soon_threadsafe(settle))
        future.add_errback(lambda exc: loop.call_soon_threadsafe(settle, None, exc))
        try:
            await asyncio.wait_for(done, timeout_s or self.config.request_timeout_s)
        except Exception as exc:
            raise translate(exc if not isinstance(exc, TimeoutError) else _timeout(exc), f"publishing to {topic}",
                            self.config) from exc

    def flush(self, timeout_s: float | None = None) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._executor.shutdown(wait=False)
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=timeout_s)
                except Exception:  # closing must not mask the reason we are shutting down
                    logger.exception("closing the Kafka producer failed")
                self._producer = None


def _timeout(exc: BaseException) -> BaseException:
    from kafka.errors import KafkaTimeoutError

    return KafkaTimeoutError(f"no acknowledgement in time ({exc or 'timeout'})")

