"""Envelopes: one document at one stage, as bytes on a Kafka topic.

The body is the serialized :class:`~osmose.v1.pipeline_pb2.WorkItem`, inline when it
is small and in the blob store (claim check) above :data:`CLAIM_CHECK_BYTES`: a
parsed 200-slide deck with its chunk vectors is megabytes, a Kafka message stays
well under the broker's 1 MB limit. Submitted files always go to the blob store;
the work item then names them by reference (``source_uri``).

A claim-checked work item is split in two (:func:`split_run_part`): the blob holds what
depends only on the document and the tenant (parse, segments, concepts, chunks...); the
envelope carries the run-specific rest inline (``run_part``: job id, timings, counters,
model usage). So the same deck submitted 100 times stores one copy of each intermediate:
every job's stage output has the same bytes, hence the same content address.
"""

from __future__ import annotations

import time

from google.protobuf.message import DecodeError

from osmose.bus.blobs import BlobStore
from osmose.bus.exceptions import EnvelopeError
from osmose.bus.trace import HEADER, TraceContext
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = [
    "CLAIM_CHECK_BYTES",
    "decode",
    "encode",
    "forward",
    "headers",
    "message_key",
    "now_ms",
    "pack",
    "split_run_part",
    "unpack",
]

#: work items above this many serialized bytes travel by reference
CLAIM_CHECK_BYTES = 256 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


#: WorkItem fields that differ between two jobs of the same document (see the module docstring)
RUN_FIELDS = ("job_id", "timings", "counters", "model_usage")


def split_run_part(item: ppb.WorkItem) -> tuple[ppb.WorkItem, ppb.WorkItem]:
    """`item` as (content, run part): the content has the run-specific fields cleared, the
    run part holds only them; merging the run part into the content gives `item` back."""
    content, run = ppb.WorkItem(), ppb.WorkItem()
    content.CopyFrom(item)
    for name in RUN_FIELDS:
        content.ClearField(name)
        if name == "job_id":
            run.job_id = item.job_id
        elif name == "timings":
            run.timings.extend(item.timings)
        elif item.HasField(name):
            getattr(run, name).CopyFrom(getattr(item, name))
    return content, run


def pack(envelope: epb.Envelope, item: ppb.WorkItem, blobs: BlobStore, *,
         threshold: int = CLAIM_CHECK_BYTES) -> epb.Envelope:
    """Put `item` in `envelope`: inline, or in the blob store when above `threshold` (its
    document-only part, content addressed; the run part stays in the envelope)."""
    data = item.SerializeToString(deterministic=True)
    envelope.ClearField("run_part")
    if len(data) > threshold:
        content, run = split_run_part(item)
        envelope.blob_ref = blobs.put(content.SerializeToString(deterministic=True))
        if envelope.tenant:   # the ownership index tenant and document erasure read
            blobs.claim(envelope.blob_ref, envelope.tenant, envelope.doc_id)
        envelope.run_part = run.SerializeToString(deterministic=True)
    else:
        envelope.payload = data
    return envelope


def unpack(envelope: epb.Envelope, blobs: BlobStore) -> ppb.WorkItem:
    """The envelope's work item (fetched from the blob store for a claim check)."""
    body = envelope.WhichOneof("body")
    if body is None:
        raise EnvelopeError(f"envelope of job {envelope.job_id} has no work item")
    data = envelope.payload if body == "payload" else blobs.get(envelope.blob_ref)
    item = ppb.WorkItem()
    try:
        item.ParseFromString(data)
        if body == "blob_ref" and envelope.run_part:
            item.MergeFromString(envelope.run_part)
    except DecodeError as exc:
        raise EnvelopeError(f"work item of job {envelope.job_id} does not parse: {exc}") from exc
    return item


def forward(envelope: epb.Envelope, *, stage: str, tier: pb.Tier) -> epb.Envelope:
    """The envelope for the next stage: same job, no body yet, attempts reset."""
    out = epb.Envelope()
    out.CopyFrom(envelope)
    out.ClearField("body")
    out.ClearField("run_part")
    out.stage = stage
    out.tier = tier
    out.attempt = 0
    return out


def encode(envelope: epb.Envelope) -> bytes:
    return envelope.SerializeToString(deterministic=True)


def decode(data: bytes | None) -> epb.Envelope:
    envelope = epb.Envelope()
    try:
        envelope.ParseFromString(data or b"")
    except DecodeError as exc:
        raise EnvelopeError(f"not an osmose envelope: {exc}") from exc
    if not envelope.job_id or not envelope.stage:
        raise EnvelopeError("not an osmose envelope: no job id or stage")
    return envelope


def message_key(envelope: epb.Envelope) -> bytes:
    """Partition key: the document id, so one document's versions stay in order and
    documents spread over partitions; the job id before the document is known."""
    return (envelope.doc_id or envelope.job_id).encode()


def headers(envelope: epb.Envelope, trace: TraceContext) -> list[tuple[str, bytes]]:
    """Kafka headers: trace context, plus ids for tools that read topics without decoding."""
    return [
        (HEADER, trace.traceparent.encode()),
        ("osmose-job", envelope.job_id.encode()),
        ("osmose-tenant", envelope.tenant.encode()),
        ("osmose-stage", envelope.stage.encode()),
    ]
