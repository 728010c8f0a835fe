"""Dead letters: what a stage gave up on, listed and re-driven (`osmose dlq list|replay STAGE`).

A dead letter keeps the envelope exactly as the stage received it, so a replay
re-drives the same work (its claim-checked work item is still in the blob store).
A replay publishes the job as ``queued`` again with ``replay + 1`` first (readers
order snapshots by replay, so the job leaves its failed state) and then the
envelope, attempts reset, to the stage's input topic of the job's priority.
Without ``--job``, replay re-drives every job whose latest state is still the
failure that dead-lettered it (not already replayed or resubmitted).

The blobs a letter needs (its claim-checked work item, the submitted file) are kept by the
blob retention sweep for as long as the letter is on its topic (:func:`referenced_blobs`).
A letter whose blob is gone anyway (swept by another tool, a bucket lifecycle rule shorter
than the dead-letter retention) is not replayed: it is reported with ``blob-expired`` and
the file has to be submitted again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from osmose.bus.blobs import BlobStore, is_blob_ref
from osmose.bus.envelope import encode, headers, message_key
from osmose.bus.exceptions import BlobNotFoundError, EnvelopeError
from osmose.bus.jobs import JobTable, decode_job, read_topic
from osmose.bus.kafka_client import BusConfig, Producer
from osmose.bus.topics import dead_letter_topic, input_topic, job_topic, priority_name
from osmose.bus.trace import TraceContext, parse
from osmose.hosts.job_ledger import transition
from osmose.pipeline import PIPELINE, Pipeline
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord

__all__ = ["DeadLetterEntry", "letter_blobs", "list_dead_letters", "read_jobs", "referenced_blobs",
           "replay_dead_letters"]

logger = logging.getLogger(__name__)


@dataclass
class DeadLetterEntry:
    partition: int
    offset: int
    letter: epb.DeadLetter
    #: blobs the letter needs that are not in the store (then it is not replayed)
    missing_blobs: list[str] = field(default_factory=list)

    @property
    def expired(self) -> bool:
        return bool(self.missing_blobs)

    def as_dict(self) -> dict[str, object]:
        env, letter = self.letter.envelope, self.letter
        return {
            "job_id": env.job_id, "tenant": env.tenant, "file": env.file, "doc_id": env.doc_id,
            "stage": letter.stage, "error_class": letter.error_class, "reason": letter.reason,
            "message": letter.message, "attempts": letter.attempts, "retryable": letter.retryable,
            "failed_at": datetime.fromtimestamp(letter.failed_at_ms / 1000, UTC).isoformat(timespec="seconds"),
            "replay": env.replay, "host": letter.host, "trace_id": letter.trace_id,
            "partition": self.partition, "offset": self.offset,
        }


def list_dead_letters(config: BusConfig, stage: str) -> list[DeadLetterEntry]:
    """Every dead letter of `stage` still on its topic, oldest first."""
    entries: list[DeadLetterEntry] = []

    def collect(record: ConsumerRecord) -> None:
        letter = epb.DeadLetter()
        try:
            letter.ParseFromString(record.value or b"")
        except Exception:
            logger.warning("skipping an undecodable dead letter at %s[%d]@%d", record.topic, record.partition,
                           record.offset)
            return
        entries.append(DeadLetterEntry(record.partition, record.offset, letter))

    read_topic(config, dead_letter_topic(config.prefix, stage), collect)
    entries.sort(key=lambda e: (e.letter.failed_at_ms, e.partition, e.offset))
    return entries


def letter_blobs(letter: epb.DeadLetter, blobs: BlobStore) -> tuple[set[str], set[str]]:
    """The blobs a replay of `letter` needs, as (present, missing): its claim-checked work item
    and the submitted file the work item names."""
    envelope = letter.envelope
    present: set[str] = set()
    missing: set[str] = set()
    data: bytes | None = None
    body = envelope.WhichOneof("body")
    if body == "blob_ref":
        try:
            data = blobs.get(envelope.blob_ref)
            present.add(envelope.blob_ref)
        except BlobNotFoundError:
            missing.add(envelope.blob_ref)
    elif body == "payload":
        data = envelope.payload
    if data is not None:
        item = ppb.WorkItem()
        try:
            item.ParseFromString(data)
        except Exception:   # an undecodable letter (it was dead-lettered for that): nothing to keep
            return present, missing
        if is_blob_ref(item.source_uri):
            (present if blobs.exists(item.source_uri) else missing).add(item.source_uri)
    return present, missing


def referenced_blobs(config: BusConfig, blobs: BlobStore, pipeline: Pipeline = PIPELINE) -> set[str]:
    """Every blob a dead letter on any stage's dead-letter topic needs: what the retention
    sweep keeps so `osmose dlq replay` works for the dead-letter topics' retention."""
    refs: set[str] = set()
    for stage in pipeline.names():
        for entry in list_dead_letters(config, stage):
            refs |= letter_blobs(entry.letter, blobs)[0]
    return refs


def read_jobs(config: BusConfig) -> JobTable:
    """The job table as the compacted job topic has it now."""
    table = JobTable(history_limit=1)

    def collect(record: ConsumerRecord) -> None:
        job = decode_job(record.value)
        if job is not None:
            table.apply(job)

    read_topic(config, job_topic(config.prefix), collect)
    return table


def replay_dead_letters(config: BusConfig, stage: str, *, job_ids: Iterable[str] | None = None,
                        producer: Producer | None = None, blobs: BlobStore | None = None) -> list[DeadLetterEntry]:
    """Re-drive dead letters of `stage`; returns the entries chosen. With `blobs`, a letter
    whose blobs are gone is not replayed: its entry says which (``missing_blobs``)."""
    wanted = set(job_ids or ())
    latest: dict[str, DeadLetterEntry] = {}
    for entry in list_dead_letters(config, stage):
        latest[entry.letter.envelope.job_id] = entry     # the last failure of each job
    jobs = read_jobs(config)
    chosen = []
    for job_id, entry in latest.items():
        job = jobs.get(job_id)
        if wanted:
            if job_id in wanted:
                chosen.append(entry)
        elif job is None or (job.state == epb.JOB_STATE_FAILED and job.replay == entry.letter.envelope.replay):
            chosen.append(entry)
    if wanted - {e.letter.envelope.job_id for e in chosen}:
        missing = ", ".join(sorted(wanted - {e.letter.envelope.job_id for e in chosen}))
        raise EnvelopeError(f"no dead letter of {stage} for job(s) {missing}")
    own = producer is None
    producer = producer or Producer(config)
    try:
        for entry in chosen:
            if blobs is not None:
                entry.missing_blobs = sorted(letter_blobs(entry.letter, blobs)[1])
                if entry.missing_blobs:
                    logger.warning("not replaying job %s: blob(s) %s expired", entry.letter.envelope.job_id,
                                   ", ".join(entry.missing_blobs))
                    continue
            _replay_one(config, producer, entry, jobs.get(entry.letter.envelope.job_id))
        producer.flush()
    finally:
        if own:
            producer.close()
    return chosen


def _replay_one(config: BusConfig, producer: Producer, entry: DeadLetterEntry, job: epb.Job | None) -> None:
    envelope = epb.Envelope()
    envelope.CopyFrom(entry.letter.envelope)
    envelope.attempt = 0
    envelope.replay = max(envelope.replay, job.replay if job else 0) + 1
    trace = parse(entry.letter.trace_id and f"00-{entry.letter.trace_id}-{'1' * 16}-01") or TraceContext.new()
    trace = trace.child()
    snapshot = transition(job, envelope, epb.JOB_EVENT_REPLAYED, stage=envelope.stage)
    producer.publish_sync(job_topic(config.prefix), key=envelope.job_id.encode(),
                          value=snapshot.SerializeToString())
    producer.publish_sync(input_topic(config.prefix, envelope.stage, priority_name(envelope.priority)),
                          key=message_key(envelope), value=encode(envelope), headers=headers(envelope, trace))
    logger.info("replayed job %s at %s (replay %d)", envelope.job_id, envelope.stage, envelope.replay)
