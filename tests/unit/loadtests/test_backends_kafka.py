"""The Kafka scenario of `make bench-backends`: how the waits between stages are read from job events."""

from __future__ import annotations

from loadtests.backends_kafka import _Waits
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb


def _event(job: str, kind: int, stage: str, at_ms: int, deliveries: int = 1) -> spb.JobEvent:
    return spb.JobEvent(job_id=job, stage=stage, event=kind,
                        job=epb.Job(job_id=job, stage=stage, updated_at_ms=at_ms, deliveries=deliveries))


def test_waits_run_from_the_previous_stage_end_to_the_next_stage_start_summed_over_jobs() -> None:
    waits = _Waits()
    for event in [
        _event("a", epb.JOB_EVENT_QUEUED, "", 1_000),
        _event("b", epb.JOB_EVENT_QUEUED, "", 1_500),
        _event("a", epb.JOB_EVENT_ENTERED, "triage", 1_200),
        _event("b", epb.JOB_EVENT_ENTERED, "triage", 4_500),      # waited 3 s for a triage slot
        _event("a", epb.JOB_EVENT_FINISHED, "triage", 2_000),
        _event("a", epb.JOB_EVENT_ENTERED, "extractor", 2_250),
        _event("a", epb.JOB_EVENT_RETRYING, "extractor", 3_000),
        _event("a", epb.JOB_EVENT_ENTERED, "extractor", 9_000, deliveries=2),  # a redelivery: not a hand-off
        _event("b", epb.JOB_EVENT_FINISHED, "triage", 5_000),
        _event("b", epb.JOB_EVENT_ENTERED, "extractor", 5_750),
    ]:
        waits(event)
    assert dict(waits.waited) == {"triage": 0.2 + 3.0, "extractor": 0.25 + 0.75}
