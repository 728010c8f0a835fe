"""Every Kafka topic of the pipeline, derived from the stage declaration (:data:`osmose.pipeline.PIPELINE`).

Services create these topics idempotently at start (:func:`osmose.bus.kafka_client.ensure_topics`);
`osmose topics --json` prints the same declaration for the Helm chart and for operators.

Per stage ``S`` (``<prefix>`` is ``Settings.topic_prefix``, default ``osmose``):

``<prefix>.S.high`` / ``<prefix>.S.bulk``
    the stage's input, one topic per priority class. Separate topics rather than
    one topic with a priority field, because a consumer can only skip ahead by
    *partition*: with a class per topic it fetches and starts high-priority work
    first and pauses its bulk partitions while any high work is waiting, so a
    premium document never queues behind an onboarding burst (see
    :mod:`osmose.bus.consumer`).
``<prefix>.S.dlq``
    the stage's dead letters (:class:`osmose.v1.envelope_pb2.DeadLetter`), kept a month
    for ``osmose dlq list|replay``.

And once: ``<prefix>.jobs``, job status snapshots keyed by job id, compacted (the
latest snapshot of each job survives) and deleted after the retention, so every
replica of the front door rebuilds the job table from it at start.

Partitions: inputs have :data:`INPUT_PARTITIONS` (the ceiling for replicas of a stage
in one consumer group; autoscaling on lag never goes above it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from osmose.pipeline import PIPELINE, Pipeline
from osmose.v1 import envelope_pb2 as epb

__all__ = [
    "INPUT_PARTITIONS",
    "PRIORITIES",
    "TopicSpec",
    "consumer_group",
    "dead_letter_topic",
    "declare_topics",
    "describe_pipeline",
    "input_topic",
    "input_topics",
    "job_topic",
    "priority_from_name",
    "priority_name",
]

TopicKind = Literal["input", "dead-letter", "job-status"]

#: priority classes in the order a consumer prefers them
PRIORITIES: tuple[str, ...] = ("high", "bulk")
INPUT_PARTITIONS = 6
DEAD_LETTER_PARTITIONS = 1   # a trickle; one partition keeps `osmose dlq list` in failure order
JOB_PARTITIONS = 6
_DAY_MS = 24 * 3600 * 1000
INPUT_RETENTION_MS = 7 * _DAY_MS
DEAD_LETTER_RETENTION_MS = 30 * _DAY_MS
JOB_RETENTION_MS = 7 * _DAY_MS
# Compaction only cleans closed segments: roll the job topic hourly so it stays small.
JOB_SEGMENT_MS = 3600 * 1000
# Envelopes stay far below this (claim check at osmose.bus.envelope.CLAIM_CHECK_BYTES).
MAX_MESSAGE_BYTES = 1024 * 1024

_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_PRIORITY_NAMES: dict[epb.Priority, str] = {epb.PRIORITY_HIGH: "high", epb.PRIORITY_BULK: "bulk"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    kind: TopicKind
    partitions: int
    retention_ms: int
    compacted: bool
    description: str
    stage: str | None = None
    priority: str | None = None

    def configs(self) -> dict[str, str]:
        """Topic-level configs, as given to CreateTopics."""
        configs = {
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
            "cleanup.policy": "compact,delete" if self.compacted else "delete",
        }
        if self.compacted:
            configs["segment.ms"] = str(JOB_SEGMENT_MS)
            configs["min.cleanable.dirty.ratio"] = "0.1"
        return configs

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "stage": self.stage, "priority": self.priority,
                "partitions": self.partitions, "retention_ms": self.retention_ms,
                "compacted": self.compacted, "configs": self.configs(), "description": self.description}


def _check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"topic prefix must be 1-200 of [A-Za-z0-9._-], got {prefix!r}")
    return prefix


_STAGE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_stage(stage: str) -> str:
    # Names come from the declaration; this only keeps a topic name well-formed.
    if not _STAGE.match(stage):
        raise ValueError(f"stage name must be a lower-case identifier, got {stage!r}")
    return stage


def input_topic(prefix: str, stage: str, priority: str) -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; choose one of {', '.join(PRIORITIES)}")
    return f"{_check_prefix(prefix)}.{_check_stage(stage)}.{priority}"


def input_topics(prefix: str, stage: str) -> dict[str, str]:
    """The stage's input topics by priority class, preferred class first."""
    return {p: input_topic(prefix, stage, p) for p in PRIORITIES}


def dead_letter_topic(prefix: str, stage: str) -> str:
    return f"{_check_prefix(prefix)}.{_check_stage(stage)}.dlq"


def job_topic(prefix: str) -> str:
    return f"{_check_prefix(prefix)}.jobs"


def consumer_group(prefix: str, stage: str) -> str:
    return f"{_check_prefix(prefix)}.{_check_stage(stage)}"


def priority_name(priority: epb.Priority) -> str:
    """The topic class of an envelope's priority (unspecified is bulk)."""
    return _PRIORITY_NAMES.get(priority, "bulk")


def priority_from_name(name: str | None) -> epb.Priority:
    if not name:
        return epb.PRIORITY_BULK
    for value, label in _PRIORITY_NAMES.items():
        if label == name.lower():
            return value
    raise ValueError(f"unknown priority {name!r}; choose one of {', '.join(PRIORITIES)}")


def declare_topics(prefix: str, pipeline: Pipeline = PIPELINE) -> tuple[TopicSpec, ...]:
    """All topics of one deployment, inputs and dead letters in pipeline order, then the job topic."""
    specs: list[TopicSpec] = []
    for stage in pipeline:
        for priority in PRIORITIES:
            specs.append(TopicSpec(
                name=input_topic(prefix, stage.name, priority), kind="input", stage=stage.name,
                priority=priority, partitions=INPUT_PARTITIONS, retention_ms=INPUT_RETENTION_MS,
                compacted=False, description=f"{priority}-priority work for {stage.name}: {stage.description}"))
        specs.append(TopicSpec(
            name=dead_letter_topic(prefix, stage.name), kind="dead-letter", stage=stage.name,
            partitions=DEAD_LETTER_PARTITIONS, retention_ms=DEAD_LETTER_RETENTION_MS, compacted=False,
            description=f"messages {stage.name} gave up on, with the error; `osmose dlq replay {stage.name}`"))
    specs.append(TopicSpec(
        name=job_topic(prefix), kind="job-status", partitions=JOB_PARTITIONS, retention_ms=JOB_RETENTION_MS,
        compacted=True, description="latest status snapshot of every job, keyed by job id"))
    return tuple(specs)


def describe_pipeline(prefix: str, pipeline: Pipeline = PIPELINE) -> dict[str, Any]:
    """The pipeline as a deployment sees it (`osmose describe --json`): each stage's declaration
    with its consumer group and topics, each tier's plan, and every topic with its settings.
    The Helm chart is generated from and tested against this."""
    description = pipeline.describe()
    for stage in description["stages"]:
        name = stage["name"]
        stage["consumer_group"] = consumer_group(prefix, name)
        stage["topics"] = {"input": input_topics(prefix, name), "dead_letter": dead_letter_topic(prefix, name)}
        stage["partitions"] = INPUT_PARTITIONS
    return {"prefix": _check_prefix(prefix), **description, "job_topic": job_topic(prefix),
            "priorities": list(PRIORITIES), "topics": [t.as_dict() for t in declare_topics(prefix, pipeline)]}
