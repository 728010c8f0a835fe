"""Document counters on `osmose serve` processes and a real broker (the FAST plan), scraped from
every process's /metrics:

* completeness reconciles across `osmose dlq replay`:
  ``accepted + replayed = persisted + failed + cancelled + in flight`` after a dead-lettered
  document is replayed (and fails again) while a good one persists -- without the replay counter
  the replayed run's second end would be one more than was accepted;
* a stuck backlog burns the freshness budget before it drains: with the embedder down, a FAST
  document is counted late by the front door while it waits, and not again when the embedder
  is back and it completes (late)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from osmose.bus.jobs import is_terminal
from osmose.hosts.service_client import ServiceClient
from osmose.telemetry.overdue import GRACE_S, SCAN_INTERVAL_S
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import Cluster, running_cluster
from tests.fixtures.builders import build_title_body_pptx
from tests.support import run_osmose

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

OBJECTIVE = load_spec().tiers["fast"].objective_seconds

FAST_PLAN = ["triage", "embedder", "persister"]
COUNTERS = ("accepted", "replayed", "persisted", "failed", "cancelled")


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(kafka_bootstrap, f"{topic_prefix}-replay", tmp_path_factory.mktemp("replay"),
                         FAST_PLAN) as cluster:
        yield cluster


def _samples(cluster: Cluster, stage: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples with `labels` on `stage`'s /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.metrics_ports[stage]}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _counters(cluster: Cluster) -> dict[str, float]:
    """osmose_documents_<name>_total summed over every process and label set."""
    return {name: sum(_samples(cluster, stage, f"osmose_documents_{name}_total") for stage in FAST_PLAN)
            for name in COUNTERS}


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


@pytest.mark.slow
async def test_a_stuck_backlog_is_counted_late_while_stuck_and_once(cluster: Cluster, tmp_path: Path) -> None:
    late = {"tier": "fast", "tenant_class": "default"}
    within = {**late, "le": f"{float(OBJECTIVE)}"}
    before_late = _samples(cluster, "triage", "osmose_documents_late_total", **late)
    before_within = _samples(cluster, "persister", "osmose_document_e2e_seconds_bucket", **within)
    before_count = _samples(cluster, "persister", "osmose_document_e2e_seconds_count", **late)
    assert cluster.terminate("embedder") == 0                  # the backlog is stuck at the embedder
    deck = build_title_body_pptx(tmp_path, name="stuck.pptx", title="Stuck")
    async with ServiceClient(cluster.front_door, connect_timeout_s=60) as client:
        job_id = (await client.submit(deck, tenant="stuck", tier=pb.TIER_FAST)).job_id
        # counted while nothing completes: the objective, the grace and a scan or two later
        deadline = time.monotonic() + OBJECTIVE + GRACE_S + 6 * SCAN_INTERVAL_S + 30
        while _samples(cluster, "triage", "osmose_documents_late_total", **late) - before_late < 1:
            assert time.monotonic() < deadline, "the stuck document was not counted late"
            await asyncio.sleep(1)
        job = await client.get_job(job_id)
        assert not is_terminal(job) and job.overdue_at_ms, job
        assert _samples(cluster, "persister", "osmose_document_e2e_seconds_count", **late) == before_count
        cluster.start("embedder")
        cluster.wait_serving(["embedder"])
        done = await client.watch(job_id, timeout_s=300)
    assert done.state == epb.JOB_STATE_SUCCEEDED and done.overdue_at_ms == job.overdue_at_ms
    deadline = time.monotonic() + 30
    while _samples(cluster, "persister", "osmose_document_e2e_seconds_count", **late) == before_count:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(2 * SCAN_INTERVAL_S)                    # scans after the end: nothing more to count
    # once: late in flight, not good at the end, not late again
    assert _samples(cluster, "triage", "osmose_documents_late_total", **late) - before_late == 1
    assert _samples(cluster, "persister", "osmose_document_e2e_seconds_bucket", **within) == before_within
