"""The document SLI and completeness counters, fed by the job ledger: counted once per accepted
snapshot, reconciling (accepted = persisted + failed + cancelled + in flight), with the document's
trace as the exemplar; the in-flight collector shows stuck work before it drains."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from osmose.bus.envelope import now_ms
from osmose.bus.jobs import JobTable
from osmose.bus.trace import TraceContext
from osmose.errors import CorruptDocumentError
from osmose.hosts.job_ledger import JobLedger, transition
from osmose.telemetry.collectors import InFlightCollector
from osmose.telemetry.documents import outcome_of
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio

LANE = "high"   # these tests count on the high lane of class "default"; deltas, since the registry is global


class Recorder:
    async def __call__(self, job: epb.Job, trace: TraceContext | None) -> None:
        pass


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _envelope(job_id: str, *, age_s: float = 0.0) -> epb.Envelope:
    return epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=pb.TIER_FAST, stage="triage",
                        priority=epb.PRIORITY_HIGH, created_at_ms=now_ms() - int(age_s * 1000), file="deck.pptx")


def _item(job_id: str, tier: int = pb.TIER_FAST) -> ppb.WorkItem:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = tier
    return item


async def test_counters_reconcile_and_the_sli_is_observed_once_per_document() -> None:
    names = ("osmose_documents_accepted_total", "osmose_documents_cancelled_total")
    before = {n: _value(n, tenant_class="default", lane=LANE) for n in names}
    persisted = _value("osmose_documents_persisted_total", tier="fast", tenant_class="default", lane=LANE)
    failed = _value("osmose_documents_failed_total", tier="fast", tenant_class="default", lane=LANE, stage="embedder")
    sli_ok = _value("osmose_document_e2e_seconds_count", tier="fast", tenant_class="default", lane=LANE, outcome="ok")
    sli_failed = _value("osmose_document_e2e_seconds_count", tier="fast", tenant_class="default", lane=LANE,
                        outcome="failed")
    ledger = JobLedger(table=JobTable(), publish=Recorder())
    trace = TraceContext.new()
    for n in range(5):
        await ledger.queued(_envelope(f"j{n}", age_s=2), _item(f"j{n}"), trace)
    for n in (0, 1):
        await ledger.entered(_envelope(f"j{n}"), "persister", _item(f"j{n}"), trace)
        await ledger.done(_envelope(f"j{n}", age_s=2), "persister", _item(f"j{n}"), trace)
        await ledger.done(_envelope(f"j{n}", age_s=2), "persister", _item(f"j{n}"), trace)   # redelivery: no news
    await ledger.failed(_envelope("j2"), "embedder", _item("j2"), CorruptDocumentError("bad"), attempts=1,
                        retryable=False, trace=trace)
    await ledger.cancel(ledger.get("j3"), trace)
    # j4 stays in flight
    accepted = _value(names[0], tenant_class="default", lane=LANE) - before[names[0]]
    cancelled = _value(names[1], tenant_class="default", lane=LANE) - before[names[1]]
    persisted = _value("osmose_documents_persisted_total", tier="fast", tenant_class="default", lane=LANE) - persisted
    failed = _value("osmose_documents_failed_total", tier="fast", tenant_class="default", lane=LANE,
                    stage="embedder") - failed
    assert (accepted, persisted, failed, cancelled) == (5, 2, 1, 1)
    assert accepted == persisted + failed + cancelled + len(ledger.table.open_jobs())
    assert _value("osmose_document_e2e_seconds_count", tier="fast", tenant_class="default", lane=LANE,
                  outcome="ok") - sli_ok == 2
    assert _value("osmose_document_e2e_seconds_count", tier="fast", tenant_class="default", lane=LANE,
                  outcome="failed") - sli_failed == 1
    # the 60 s objective of FAST is a bucket boundary: "within the objective" is exact
    objective = load_spec().tiers["fast"].objective_seconds
    assert _value("osmose_document_e2e_seconds_bucket", tier="fast", tenant_class="default", lane=LANE,
                  outcome="ok", le=str(float(objective))) >= 2
    # exemplars (OpenMetrics) carry the document's trace; the text format has none
    assert f'trace_id="{trace.trace_id}"' in generate_openmetrics(REGISTRY).decode()
    assert "trace_id=" not in generate_latest(REGISTRY).decode()


def test_degraded_means_done_with_model_fallbacks_or_failures() -> None:
    done = epb.Job(state=epb.JOB_STATE_SUCCEEDED, report_json=json.dumps({"model": {"fallbacks": 0, "failures": 0}}))
    assert outcome_of(done) == "ok"
    done.report_json = json.dumps({"model": {"fallbacks": 3, "failures": 0}})
    assert outcome_of(done) == "degraded"
    assert outcome_of(epb.Job(state=epb.JOB_STATE_FAILED)) == "failed"


def test_in_flight_collector_counts_the_oldest_and_the_overdue_per_tier_and_stage() -> None:
    table = JobTable()
    fast = load_spec().tiers["fast"].objective_seconds
    for job_id, age, stage in (("a", 5, "embedder"), ("b", fast + 30, "embedder"), ("c", 1, "")):
        env = _envelope(job_id, age_s=age)
        kind = epb.JOB_EVENT_ENTERED if stage else epb.JOB_EVENT_QUEUED
        table.apply(transition(None, env, kind, stage=stage, item=_item(job_id)))
    table.apply(transition(table.get("c"), _envelope("c"), epb.JOB_EVENT_DONE, stage="persister", item=_item("c")))
    families = {f.name: {tuple(s.labels.values()): s.value for s in f.samples}
                for f in InFlightCollector(table).collect()}
    assert families["osmose_documents_in_flight"][("fast", "embedder")] == 2
    assert families["osmose_documents_overdue"][("fast", "embedder")] == 1
    # every stage of every tier's plan is exported, zero included, so "overdue > 0" finds a series
    assert families["osmose_documents_overdue"][("deep", "miner")] == 0
    assert sum(families["osmose_documents_in_flight"].values()) == 2
    oldest = families["osmose_documents_in_flight_oldest_age_seconds"][("fast", "embedder")]
    assert fast + 29 < oldest < fast + 30 + (time.time() % 1) + 5


async def test_the_plan_on_the_envelope_is_the_tenant_class_of_every_snapshot() -> None:
    """The front door writes the caller's plan on the envelope; every later snapshot (written by
    other stages from the envelope) keeps it, so a document is counted in its plan's class."""
    accepted = _value("osmose_documents_accepted_total", tenant_class="business", lane="bulk")
    persisted = _value("osmose_documents_persisted_total", tier="fast", tenant_class="business", lane="bulk")
    unknown = _value("osmose_documents_accepted_total", tenant_class="other", lane="bulk")
    ledger = JobLedger(table=JobTable(), publish=Recorder())
    trace = TraceContext.new()
    business = _envelope("p1")
    business.priority, business.plan = epb.PRIORITY_BULK, "business"
    await ledger.queued(business, _item("p1"), trace)
    later = epb.Envelope()
    later.CopyFrom(business)
    later.ClearField("plan")     # an envelope written before plans existed: the snapshot keeps the class
    await ledger.entered(later, "persister", _item("p1"), trace)
    await ledger.done(business, "persister", _item("p1"), trace)
    job = ledger.get("p1")
    assert job is not None and job.plan == "business"
    assert _value("osmose_documents_accepted_total", tenant_class="business", lane="bulk") - accepted == 1
    assert _value("osmose_documents_persisted_total", tier="fast", tenant_class="business",
                  lane="bulk") - persisted == 1
    typo = _envelope("p2")
    typo.priority, typo.plan = epb.PRIORITY_BULK, "platinum-acme-corp"
    await ledger.queued(typo, _item("p2"), trace)
    assert _value("osmose_documents_accepted_total", tenant_class="other", lane="bulk") - unknown == 1


async def test_a_dlq_replay_is_counted_once_so_the_counters_still_reconcile() -> None:
    """`osmose dlq replay` publishes a ``replayed`` snapshot and the envelope again (replay + 1); the
    stage that takes it counts the replay once -- whether its table has read the ``replayed``
    snapshot yet or not, and not again on a redelivery -- so after the replayed run ends:
    accepted + replayed = persisted + failed + cancelled + in flight."""
    labels = {"tenant_class": "starter", "lane": "bulk"}
    tiered = {"tier": "fast", **labels}
    names = ("osmose_documents_accepted_total", "osmose_documents_replayed_total", "osmose_documents_cancelled_total")
    before = {n: _value(n, **labels) for n in names}
    persisted = _value("osmose_documents_persisted_total", **tiered)
    failed = _value("osmose_documents_failed_total", stage="embedder", **tiered)

    def envelope(job_id: str, replay: int = 0) -> epb.Envelope:
        env = _envelope(job_id)
        env.priority, env.plan, env.replay, env.stage = epb.PRIORITY_BULK, "starter", replay, "embedder"
        return env

    front, stage = JobLedger(table=JobTable(), publish=Recorder()), JobLedger(table=JobTable(), publish=Recorder())
    trace = TraceContext.new()
    for job_id in ("r1", "r2", "r3"):
        await front.queued(envelope(job_id), _item(job_id), trace)
        stage.table.apply(front.get(job_id))
        await stage.failed(envelope(job_id), "embedder", _item(job_id), CorruptDocumentError("bad"), attempts=1,
                           retryable=False, trace=trace)
        front.table.apply(stage.get(job_id))
    # r1: the stage's table has read the replayed snapshot; r2: not yet; r3: cancelled before it is taken
    for job_id, seen in (("r1", True), ("r2", False), ("r3", True)):
        replayed = transition(stage.get(job_id), envelope(job_id, 1), epb.JOB_EVENT_REPLAYED, stage="embedder")
        front.table.apply(replayed)
        if seen:
            stage.table.apply(replayed)
    for job_id in ("r1", "r2"):
        await stage.entered(envelope(job_id, 1), "embedder", _item(job_id), trace)
        await stage.entered(envelope(job_id, 1), "embedder", _item(job_id), trace, deliveries=2)   # redelivery
    await stage.done(envelope("r1", 1), "embedder", _item("r1"), trace)
    await stage.failed(envelope("r2", 1), "embedder", _item("r2"), CorruptDocumentError("bad"), attempts=1,
                       retryable=False, trace=trace)
    await front.cancel(front.get("r3"), trace)
    delta = {n: _value(n, **labels) - before[n] for n in names}
    persisted = _value("osmose_documents_persisted_total", **tiered) - persisted
    failed = _value("osmose_documents_failed_total", stage="embedder", **tiered) - failed
    assert delta == {names[0]: 3, names[1]: 3, names[2]: 1}
    assert (persisted, failed) == (1, 4)
    assert delta[names[0]] + delta[names[1]] == persisted + failed + delta[names[2]] + 0   # nothing in flight
