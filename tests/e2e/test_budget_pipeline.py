"""The per-document budget through the distributed pipeline: the generated 27 MB deck,
submitted to the front door, ends `failed` with `too-large` and a dead letter at triage,
while the front door keeps answering (health, GetJob) meanwhile.

Only the front door (triage) runs: a refused document never reaches another stage."""

from __future__ import annotations

import asyncio

import pytest
from grpc_health.v1 import health_pb2

from osmose.hosts.service_client import ServiceClient
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import Cluster, health_status
from tests.fixtures.dense_deck import dense_deck_once
from tests.support import run_osmose

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def front_door(kafka_bootstrap: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("budget-cluster")
    (root / "logs").mkdir()
    cluster = Cluster(bootstrap=kafka_bootstrap, prefix=f"{topic_prefix}-budget", data_dir=root / "data",
                      log_dir=root / "logs")
    cluster.start("triage")
    try:
        cluster.wait_serving(["triage"])
        yield cluster
    finally:
        cluster.stop_all()


async def test_generated_27mb_deck_is_refused_and_dead_lettered(front_door: Cluster,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    deck = dense_deck_once(tmp_path_factory.getbasetemp())
    async with ServiceClient(front_door.front_door, connect_timeout_s=60) as client:
        job_id = (await client.submit(deck, tenant="budget")).job_id
        watching = asyncio.ensure_future(client.watch(job_id, timeout_s=600))
        # The front door answers while the deck is parsed and triaged (in worker processes/threads).
        answered = 0
        while not watching.done():
            assert health_status(front_door.ports["triage"], timeout_s=5) == health_pb2.HealthCheckResponse.SERVING
            await client.get_job(job_id)
            answered += 1
            await asyncio.sleep(0.5)
        job = await watching
    assert answered > 0
    assert job.state == epb.JOB_STATE_FAILED and job.reason == "too-large", job
    assert job.error.startswith("too-large: about ") and "OSMOSE_MAX_EMBED_TOKENS" in job.error
    listed = run_osmose("dlq", "list", "triage", "--json", env={
        "OSMOSE_KAFKA_BOOTSTRAP": front_door.bootstrap, "OSMOSE_TOPIC_PREFIX": front_door.prefix})
    assert listed.code == 0, listed.stderr
    [letter] = [d for d in listed.json_lines() if d["job_id"] == job_id]
    assert letter["reason"] == "too-large" and letter["retryable"] is False and letter["tenant"] == "budget"
