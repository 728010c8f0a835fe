"""Completeness counters reconcile across `osmose dlq replay`, on `osmose serve` processes and a
real broker (the FAST plan): scraped from every process's /metrics,

    accepted + replayed = persisted + failed + cancelled + in flight

holds after a dead-lettered document is replayed (and fails again) while a good one persists.
Without the replay counter the replayed run's second end would be one more than was accepted."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from osmose.bus.jobs import is_terminal
from osmose.bus.kafka_client import BusConfig, ensure_topics
from osmose.bus.topics import declare_topics
from osmose.hosts.service_client import ServiceClient
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import Cluster, delete_topics, wait_for_leaders
from tests.fixtures.builders import build_title_body_pptx
from tests.support import run_osmose

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

FAST_PLAN = ["triage", "embedder", "persister"]
COUNTERS = ("accepted", "replayed", "persisted", "failed", "cancelled")


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replay")
    (root / "logs").mkdir()
    prefix = f"{topic_prefix}-replay"
    cluster = Cluster(bootstrap=kafka_bootstrap, prefix=prefix, data_dir=root / "data", log_dir=root / "logs")
    try:
        config = BusConfig(bootstrap=kafka_bootstrap, prefix=prefix)
        ensure_topics(config, declare_topics(prefix))
        wait_for_leaders(kafka_bootstrap, [t.name for t in declare_topics(prefix)])
        for stage in FAST_PLAN:
            cluster.start(stage)
        cluster.wait_serving(FAST_PLAN)
        yield cluster
    finally:
        cluster.stop_all()
        delete_topics(kafka_bootstrap, prefix)


def _counters(cluster: Cluster) -> dict[str, float]:
    """osmose_documents_<name>_total summed over every process and label set."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    for stage in FAST_PLAN:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.metrics_ports[stage]}/metrics", timeout=10) as r:
            text = r.read().decode()
        for family in text_string_to_metric_families(text):
            name = family.name.removeprefix("osmose_documents_")
            if family.name.startswith("osmose_documents_") and name in totals:
                totals[name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals


async def test_counters_reconcile_after_a_dlq_replay(cluster: Cluster, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04" + b"not a deck at all " * 300)
    good = build_title_body_pptx(tmp_path, name="good.pptx", title="Replay")
    async with ServiceClient(cluster.front_door, connect_timeout_s=60) as client:
        bad_id = (await client.submit(broken, tenant="replay", tier=pb.TIER_FAST)).job_id
        good_id = (await client.submit(good, tenant="replay", tier=pb.TIER_FAST)).job_id
        bad, ok = await asyncio.gather(client.watch(bad_id, timeout_s=300), client.watch(good_id, timeout_s=300))
        assert bad.state == epb.JOB_STATE_FAILED and ok.state == epb.JOB_STATE_SUCCEEDED, (bad.error, ok.error)
        replayed = await asyncio.to_thread(
            run_osmose, "dlq", "replay", "triage", "--job", bad_id,
            env={"OSMOSE_KAFKA_BOOTSTRAP": cluster.bootstrap, "OSMOSE_TOPIC_PREFIX": cluster.prefix,
                 "OSMOSE_DATA_DIR": str(cluster.data_dir)}, timeout=300)
        assert replayed.code == 0, replayed.stderr
        deadline = time.monotonic() + 120
        while not ((job := await client.get_job(bad_id)).replay == 1 and is_terminal(job)):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.2)
    assert job.state == epb.JOB_STATE_FAILED
    # the counters are updated right after each snapshot is acknowledged: wait for the last one
    deadline = time.monotonic() + 30
    while (totals := _counters(cluster))["failed"] < 2:
        assert time.monotonic() < deadline, totals
        await asyncio.sleep(0.2)
    assert totals == {"accepted": 2, "replayed": 1, "persisted": 1, "failed": 2, "cancelled": 0}
    assert totals["accepted"] + totals["replayed"] == totals["persisted"] + totals["failed"] + totals["cancelled"]
