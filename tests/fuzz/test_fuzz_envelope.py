"""Envelope and work-item decoding under hostile bytes (property-based, Hypothesis): decode returns
an envelope with a job id and a stage or raises EnvelopeError; unpack returns a work item or an
Osmose error (never a KeyError, a path outside the blob store or a protobuf exception)."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osmose.bus.blobs.local import LocalBlobStore
from osmose.bus.envelope import decode, pack, unpack
from osmose.bus.exceptions import BlobNotFoundError, EnvelopeError
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.fuzz.targets import check_envelope, mutate, seeds

SEEDS = [data for _, data in seeds("envelope")]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
_text = st.one_of(
    st.text(max_size=64),
    st.sampled_from(["", "\x00", "../../etc/passwd", "sha256:" + "0" * 64, "sha256:../" + "a" * 61,
                     "sha256:" + "A" * 64, "x" * 5000, "\ud7ff\ue000\U0010ffff"]),
)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_are_refused(data: bytes) -> None:
    check_envelope(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 2**32))
def test_mutated_envelopes_decode_or_are_refused(seed: bytes, n: int) -> None:
    check_envelope(mutate(seed, random.Random(n)))


@FUZZ
@given(job_id=_text, stage=_text, tenant=_text, blob_ref=_text, payload=st.binary(max_size=2048),
       inline=st.booleans(), attempt=st.integers(0, 2**32 - 1), created=st.integers(-(2**63), 2**63 - 1))
def test_hostile_field_values(job_id: str, stage: str, tenant: str, blob_ref: str, payload: bytes, inline: bool,
                              attempt: int, created: int) -> None:
    envelope = epb.Envelope(job_id=job_id, stage=stage, tenant=tenant, attempt=attempt, created_at_ms=created)
    if inline:
        envelope.payload = payload
    else:
        envelope.blob_ref = blob_ref
    outcome = check_envelope(envelope.SerializeToString())
    if outcome == "ok" and not inline:
        raise AssertionError(f"a blob reference {blob_ref!r} resolved in an empty store")


def test_blob_reference_outside_the_store_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"tenant b")
    store = LocalBlobStore(tmp_path / "blobs")
    for ref in ("sha256:../../secret", "../secret", "sha256:" + "g" * 64, str(tmp_path / "secret")):
        envelope = epb.Envelope(job_id="j", stage="triage", blob_ref=ref)
        try:
            unpack(decode(envelope.SerializeToString()), store)
        except BlobNotFoundError:
            continue
        raise AssertionError(f"{ref!r} was read")


def test_claim_check_round_trip_and_corrupt_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    item = ppb.WorkItem(job_id="j", tenant="t")
    item.document.slides.add(number=1).blocks.add(text="x" * 4000)
    envelope = pack(epb.Envelope(job_id="j", stage="embedder"), item, store, threshold=100)
    assert envelope.WhichOneof("body") == "blob_ref"
    assert unpack(decode(envelope.SerializeToString()), store) == item
    # a blob whose bytes are not a work item (another stage's file, a truncated write)
    bad = epb.Envelope(job_id="j", stage="embedder", blob_ref=store.put(b"\xff\xff\xff\xff garbage"))
    try:
        unpack(bad, store)
    except EnvelopeError:
        return
    raise AssertionError("garbage blob unpacked")
