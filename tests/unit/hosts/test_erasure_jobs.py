"""Erasure is a job: DeleteDocument and DeleteTenant each publish one terminal job snapshot
(outcome, counts) that GetJob on the front door answers, return its id, and write an audit
record (principal, tenant, action, document id; never document text). A repeat succeeds with
zero counts; a failure is a failed job with its reason.

A real gRPC server with the real authentication interceptor hosts the query service (on the
embedded stores, filled by the in-process pipeline) and the front door; they share one job
table, as every replica's table is rebuilt from the job topic (the producer here records the
snapshots instead of sending them to a broker, as in test_frontdoor)."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.hosts.service_frontdoor import IngestionServicer
from osmose.hosts.service_rpc import QueryServicer
from osmose.hosts.service_worker import ServiceBus
from osmose.security import PLANS, ApiKeys, Authenticator, Principal, hash_api_key
from osmose.security.interceptor import AuthInterceptor
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2_grpc as sgrpc
from tests.fixtures.builders import build_title_body_pptx
from tests.unit.hosts.test_frontdoor import FakeProducer

pytestmark = pytest.mark.anyio

KEYS = {"osk_alpha-user": Principal(subject="alpha-bot", tenant="alpha", plan=PLANS["business"], method="api-key"),
        "osk_admin": Principal(subject="ops", tenant="ops", plan=PLANS["enterprise"], roles=frozenset({"admin"}),
                               method="api-key")}


def _counts(job: epb.Job) -> dict[str, int]:
    return dict(job.counts)


async def test_erasures_are_jobs_with_outcome_counts_and_audit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    deck = build_title_body_pptx(tmp_path, title="Confidential Merger", body=("Target valuation", "Board vote"))
    settings = Settings(data_dir=tmp_path / "data")
    async with InProcessPipeline(settings) as pipeline:
        [report] = [r async for r in pipeline.ingest([deck], tenant="alpha")]
        assert report.status == "ok", report.error
        producer, table = FakeProducer(), JobTable()
        bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                         blobs=pipeline.resources.blobs, jobs=table, host="test:1")
        server = grpc.aio.server(interceptors=[AuthInterceptor(Authenticator(
            api_keys=ApiKeys({hash_api_key(k): p for k, p in KEYS.items()})))])
        sgrpc.add_QueryServiceServicer_to_server(QueryServicer(pipeline.resources, ledger=bus.ledger), server)
        sgrpc.add_IngestionServiceServicer_to_server(
            IngestionServicer(bus=bus, settings=settings, ready=lambda: True), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        caplog.set_level(logging.INFO, logger="osmose.audit")
        try:
            async with ServiceClient(f"127.0.0.1:{port}", api_key="osk_alpha-user") as alpha:
                erased = await alpha.delete_document(report.doc_id)
                assert (erased.documents, erased.chunks) == (1, report.chunks) and erased.job_id
                job = await alpha.get_job(erased.job_id)               # the front door answers for it
                assert (job.state, job.event, job.action, job.tenant, job.doc_id) == (
                    epb.JOB_STATE_SUCCEEDED, epb.JOB_EVENT_DONE, "delete-document", "alpha", report.doc_id)
                assert _counts(job) == {"documents": 1, "chunks": report.chunks,
                                        "cache_entries": erased.cache_entries, "blobs": erased.blobs}
                published = [epb.Job.FromString(v) for t, v in producer.sent if t == "p.jobs"]
                assert [j.job_id for j in published] == [erased.job_id]   # one snapshot, on the job topic

                repeat = await alpha.delete_document(report.doc_id)     # idempotent: success, zero counts
                assert repeat.job_id != erased.job_id
                assert (repeat.documents, repeat.chunks, repeat.cache_entries, repeat.blobs) == (0, 0, 0, 0)
                again = await alpha.get_job(repeat.job_id)
                assert again.state == epb.JOB_STATE_SUCCEEDED and set(_counts(again).values()) == {0}

                with pytest.raises(RequestRejected) as bad:             # never reaches a store or a path
                    await alpha.delete_document("../../etc")
                assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
                with pytest.raises(RequestRejected) as denied:
                    await alpha.delete_tenant("alpha")
                assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED

            async with ServiceClient(f"127.0.0.1:{port}", api_key="osk_admin") as admin:
                [back] = [r async for r in pipeline.ingest([deck], tenant="alpha")]
                assert back.status == "ok" and back.embedded == report.embedded   # no hit from the erased one
                tenant_erased = await admin.delete_tenant("alpha")
                assert tenant_erased.documents == 1
                job = await admin.get_job(tenant_erased.job_id)
                assert (job.action, job.state, job.counts["documents"]) == ("delete-tenant", epb.JOB_STATE_SUCCEEDED, 1)

                await pipeline.resources.vectors.close()                # a store that fails: a failed job
                with pytest.raises(RequestRejected):
                    await admin.delete_document(report.doc_id, tenant="alpha")
                failed = [epb.Job.FromString(v) for t, v in producer.sent if t == "p.jobs"][-1]
                assert (failed.action, failed.state, failed.event) == (
                    "delete-document", epb.JOB_STATE_FAILED, epb.JOB_EVENT_FAILED)
                assert failed.reason and failed.error and (await admin.get_job(failed.job_id)).state == failed.state
        finally:
            await server.stop(0)

    records = [r for r in caplog.records if r.name == "osmose.audit" and getattr(r, "action", "").startswith("delete")]
    assert [(r.action, r.principal, r.tenant, r.outcome) for r in records] == [  # type: ignore[attr-defined]
        ("delete-document", "alpha-bot", "alpha", "ok"), ("delete-document", "alpha-bot", "alpha", "ok"),
        ("delete-tenant", "ops", "alpha", "ok"), ("delete-document", "ops", "alpha", "failed")]
    assert all(getattr(r, "doc_id", None) == report.doc_id for r in records if r.action == "delete-document")  # type: ignore[attr-defined]
    assert all(getattr(r, "job_id", "") for r in records)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert "Confidential Merger" not in logged and "valuation" not in logged    # no document text
