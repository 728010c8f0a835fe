"""Envelopes and the claim check: small items inline, large ones by reference, never over 1 MB."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.bus import envelope
from osmose.bus.blobs import LocalBlobStore, is_blob_ref
from osmose.bus.exceptions import BlobNotFoundError, EnvelopeError
from osmose.bus.trace import TraceContext, from_headers
from osmose.errors import PermanentError
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb


def _item(chunks: int) -> ppb.WorkItem:
    item = ppb.WorkItem(job_id="j1", tenant="acme")
    item.document.doc_id = "d" * 32
    for i in range(chunks):
        chunk = item.chunks.add(chunk_id=f"c{i}", slide=i, text="word " * 50)
        chunk.vector.extend([0.125] * 384)
    return item


def _envelope() -> epb.Envelope:
    return epb.Envelope(job_id="j1", doc_id="d" * 32, tenant="acme", stage="embedder",
                        priority=epb.PRIORITY_HIGH, created_at_ms=envelope.now_ms(), file="deck.pptx")


def test_small_items_travel_inline(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    env = envelope.pack(_envelope(), _item(2), blobs)
    assert env.WhichOneof("body") == "payload"
    decoded = envelope.decode(envelope.encode(env))
    assert envelope.unpack(decoded, blobs) == _item(2)
    assert not (tmp_path / "sha256").exists()


def test_large_items_go_to_the_blob_store_and_the_message_stays_small(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    item = _item(600)                        # ~1 MB of vectors: over Kafka's limit inline
    assert item.ByteSize() > 1024 * 1024
    env = envelope.pack(_envelope(), item, blobs)
    assert env.WhichOneof("body") == "blob_ref" and is_blob_ref(env.blob_ref)
    assert len(envelope.encode(env)) < 1024
    assert envelope.unpack(envelope.decode(envelope.encode(env)), blobs) == item
    # content addressed: packing the same item again stores nothing new
    again = envelope.pack(_envelope(), item, blobs)
    assert again.blob_ref == env.blob_ref
    assert len(list((tmp_path / "sha256").rglob("*"))) == 2   # one folder, one blob


def test_threshold_is_configurable(tmp_path: Path) -> None:
    env = envelope.pack(_envelope(), _item(1), LocalBlobStore(tmp_path), threshold=10)
    assert env.WhichOneof("body") == "blob_ref"


def test_a_missing_blob_or_garbage_is_a_permanent_error(tmp_path: Path) -> None:
    env = _envelope()
    env.blob_ref = "sha256:" + "0" * 64
    with pytest.raises(BlobNotFoundError) as caught:
        envelope.unpack(env, LocalBlobStore(tmp_path))
    assert isinstance(caught.value, PermanentError)
    with pytest.raises(EnvelopeError):
        envelope.decode(b"\xff\xfe not a protobuf")
    with pytest.raises(EnvelopeError, match="no job id"):
        envelope.decode(b"")
    with pytest.raises(EnvelopeError, match="no work item"):
        envelope.unpack(_envelope(), LocalBlobStore(tmp_path))


def test_forward_keeps_the_job_and_resets_the_attempts() -> None:
    env = _envelope()
    env.attempt, env.payload, env.replay = 3, b"x", 2
    out = envelope.forward(env, stage="miner", tier=3)
    assert (out.stage, out.tier, out.attempt, out.replay) == ("miner", 3, 0, 2)
    assert out.WhichOneof("body") is None
    assert (out.job_id, out.tenant, out.priority, out.created_at_ms, out.file) == (
        env.job_id, env.tenant, env.priority, env.created_at_ms, env.file)


def test_key_and_headers() -> None:
    env = _envelope()
    assert envelope.message_key(env) == b"d" * 32
    env.doc_id = ""
    assert envelope.message_key(env) == b"j1"
    trace = TraceContext.new()
    hdrs = envelope.headers(env, trace)
    assert from_headers(hdrs) == trace
    assert dict(hdrs)["osmose-tenant"] == b"acme"


def test_claim_checked_items_of_two_jobs_share_one_blob(tmp_path: Path) -> None:
    """Job id, timings, counters and model usage stay in the envelope: the blob is the document's."""
    blobs = LocalBlobStore(tmp_path)
    packed = []
    for job, seconds in (("j1", 0.5), ("j2", 0.75)):
        item = _item(400)
        item.job_id = job
        item.timings.add(stage="triage", seconds=seconds)
        item.counters.embedded = 3 if job == "j1" else 0
        item.counters.embed_cache_hits = 0 if job == "j1" else 3
        item.model_usage.total.calls = 2
        env = envelope.pack(_envelope(), item, blobs, threshold=1024)
        assert env.WhichOneof("body") == "blob_ref" and env.run_part
        assert envelope.unpack(envelope.decode(envelope.encode(env)), blobs) == item   # exactly the item again
        packed.append(env)
    assert packed[0].blob_ref == packed[1].blob_ref
    assert len([p for p in (tmp_path / "sha256").rglob("*") if p.is_file()]) == 1
    forwarded = envelope.forward(packed[0], stage="persister", tier=0)
    assert not forwarded.run_part and forwarded.WhichOneof("body") is None
