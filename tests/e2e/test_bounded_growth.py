"""Submit is idempotent and atomic, and the claim-check store does not grow with resubmissions,
against a real broker and `osmose serve` processes (the FAST plan: triage, embedder, persister,
sharing one blob folder).

- the same deck submitted 100 times adds one set of blobs (intermediates carry no job field);
- a retry with the same idempotency key returns the existing job, and one envelope is published;
- a front door that dies between publishing the envelope and the queued snapshot leaves no
  orphan: the envelope creates its job, which ends;
- `osmose blobs sweep` removes old blobs but keeps those a dead letter needs, `osmose dlq replay`
  still works for that letter, and says so clearly when the blob is gone anyway;
- `osmose submit DIR` while the front door is down retries, and reports every file once it is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.jobs import JobTable, is_terminal, read_topic
from osmose.bus.kafka_client import BusConfig, Producer
from osmose.bus.topics import input_topic
from osmose.bus.trace import TraceContext
from osmose.hosts.service_client import ServiceClient
from osmose.hosts.service_frontdoor import enqueue
from osmose.hosts.service_worker import ServiceBus
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from tests.e2e.cluster import Cluster, running_cluster
from tests.fixtures.builders import build_title_body_pptx
from tests.support import OSMOSE, CliResult, run_osmose

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(900)]

FAST_PLAN = ["triage", "embedder", "persister"]
SUBMISSIONS = 100


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(kafka_bootstrap, f"{topic_prefix}-growth", tmp_path_factory.mktemp("growth"),
                         FAST_PLAN) as cluster:
        yield cluster


def _blobs(cluster: Cluster) -> Path:
    return cluster.data_dir / "blobs"


def _blob_files(cluster: Cluster) -> set[str]:
    root = _blobs(cluster) / "sha256"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def _osmose(cluster: Cluster, *args: object, timeout: float = 300) -> CliResult:
    return run_osmose(*args, env={"OSMOSE_KAFKA_BOOTSTRAP": cluster.bootstrap, "OSMOSE_TOPIC_PREFIX": cluster.prefix,
                                  "OSMOSE_DATA_DIR": str(cluster.data_dir)}, timeout=timeout)


def _envelopes(cluster: Cluster, stage: str, priority: str = "bulk") -> list[epb.Envelope]:
    found: list[epb.Envelope] = []

    def collect(record: object) -> None:
        envelope = epb.Envelope()
        envelope.ParseFromString(record.value)  # type: ignore[attr-defined]
        found.append(envelope)

    read_topic(BusConfig(bootstrap=cluster.bootstrap, prefix=cluster.prefix), input_topic(cluster.prefix, stage,
                                                                                          priority), collect)
    return found


async def _watch_all(cluster: Cluster, job_ids: list[str], timeout_s: float = 600) -> list[epb.Job]:
    async with ServiceClient(cluster.front_door, connect_timeout_s=60) as client:
        return list(await asyncio.gather(*(client.watch(j, timeout_s=timeout_s) for j in job_ids)))


async def test_the_same_deck_submitted_100_times_adds_one_set_of_blobs(cluster: Cluster, tmp_path: Path) -> None:
    deck = build_title_body_pptx(tmp_path, body=[f"Point {i}: revenue, costs and margins by region" for i in range(150)])
    before = _blob_files(cluster)
    async with ServiceClient(cluster.front_door) as client:
        first = await client.submit(deck, tenant="growth", tier=pb.TIER_FAST)
    (job,) = await _watch_all(cluster, [first.job_id])
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    one_set = _blob_files(cluster) - before
    assert len(one_set) >= 3, one_set      # the deck, and the claim-checked outputs of triage and embedder

    async with ServiceClient(cluster.front_door) as client:
        job_ids = [(await client.submit(deck, tenant="growth", tier=pb.TIER_FAST)).job_id
                   for _ in range(SUBMISSIONS - 1)]
    jobs = await _watch_all(cluster, job_ids)
    assert {j.state for j in jobs} == {epb.JOB_STATE_SUCCEEDED}
    assert len(set(job_ids) | {first.job_id}) == SUBMISSIONS           # 100 distinct jobs ...
    after = _blob_files(cluster)
    assert after - before == one_set, f"{len(after - before)} blobs after {SUBMISSIONS} jobs, {len(one_set)} after 1"
    assert not list((_blobs(cluster) / "tmp").glob("*"))               # ... and no temporary file left
    print(f"\n{SUBMISSIONS} submissions of one deck: {len(one_set)} blobs "
          f"({sum((_blobs(cluster) / 'sha256' / n[:2] / n).stat().st_size for n in one_set):,} bytes) in total")


async def test_a_retry_with_the_same_idempotency_key_returns_the_existing_job(cluster: Cluster, tmp_path: Path) -> None:
    deck = build_title_body_pptx(tmp_path, name="idem.pptx", title="Idempotent")
    async with ServiceClient(cluster.front_door) as client:
        first = await client.submit(deck, tenant="idem", tier=pb.TIER_FAST, idempotency_key="batch-7/idem.pptx")
        retry = await client.submit(deck, tenant="idem", tier=pb.TIER_FAST, idempotency_key="batch-7/idem.pptx")
        (job,) = await _watch_all(cluster, [first.job_id])
        late = await client.submit(deck, tenant="idem", tier=pb.TIER_FAST, idempotency_key="batch-7/idem.pptx")
    assert (retry.job_id, retry.existing) == (first.job_id, True) and not first.existing
    assert (late.job_id, late.existing) == (first.job_id, True)           # also after the job ended
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    published = [e for e in _envelopes(cluster, "triage") if e.job_id == first.job_id]
    assert len(published) == 1                                             # one envelope: one job, run once


async def test_a_front_door_dying_between_envelope_and_snapshot_leaves_no_orphan(cluster: Cluster,
                                                                                  tmp_path: Path) -> None:
    """The dying front door runs here, on the cluster's broker and blob folder: its envelope is
    acknowledged, then it dies before the queued snapshot. The cluster's stages still run the job."""
    deck = build_title_body_pptx(tmp_path, name="orphan.pptx", title="Crash in between")
    blobs = LocalBlobStore(_blobs(cluster))
    ref = blobs.put(deck.read_bytes())
    config = BusConfig(bootstrap=cluster.bootstrap, prefix=cluster.prefix, client_id="dying-front-door")
    producer = Producer(config)
    await asyncio.to_thread(producer.start)
    bus = ServiceBus(config=config, producer=producer, blobs=blobs, jobs=JobTable(), host="dying:1",
                     claim_check_bytes=4096)

    class Died(BaseException):
        """The process died here (SIGKILL, OOM): nothing after this line runs."""

    async def die(job: epb.Job, trace: TraceContext | None) -> None:
        raise Died

    bus.ledger._publish = die
    header = spb.SubmitHeader(file_name="orphan.pptx", tenant="orphan", tier=pb.TIER_FAST, file=str(deck))
    try:
        with pytest.raises(Died):
            await enqueue(bus, header, ref, TraceContext.new(), first_stage="triage", timeout_s=30)
    finally:
        await asyncio.to_thread(producer.close)
    (envelope,) = [e for e in _envelopes(cluster, "triage") if e.tenant == "orphan"]
    (job,) = await _watch_all(cluster, [envelope.job_id])
    assert job.state == epb.JOB_STATE_SUCCEEDED and job.file == str(deck), job.error
    assert json.loads(job.report_json)["chunks"] > 0


async def test_sweep_keeps_what_dead_letters_need_and_replay_works_inside_retention(cluster: Cluster,
                                                                                     tmp_path: Path) -> None:
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK\x03\x04" + b"not a deck at all " * 300)
    good = build_title_body_pptx(tmp_path, name="kept.pptx", title="Swept")
    async with ServiceClient(cluster.front_door) as client:
        bad_id = (await client.submit(broken, tenant="sweep", tier=pb.TIER_FAST)).job_id
        good_id = (await client.submit(good, tenant="sweep", tier=pb.TIER_FAST)).job_id
    bad, ok = await _watch_all(cluster, [bad_id, good_id])
    assert bad.state == epb.JOB_STATE_FAILED and ok.state == epb.JOB_STATE_SUCCEEDED
    letter_blob = LocalBlobStore(_blobs(cluster)).put(broken.read_bytes())   # already there: the same ref

    # Fifteen days pass with nothing stored again: every blob is past the 14-day retention.
    past = time.time() - 15 * 86400
    for path in (_blobs(cluster) / "sha256").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    before = _blob_files(cluster)
    dry = _osmose(cluster, "blobs", "sweep", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert json.loads(dry.stdout)["removed"] == len(before) - json.loads(dry.stdout)["kept_referenced"]
    assert _blob_files(cluster) == before
    swept = _osmose(cluster, "blobs", "sweep", "--json")
    assert swept.code == 0, swept.stderr
    report = json.loads(swept.stdout)
    assert report["kept_referenced"] >= 1 and report["removed"] >= 1 and report["examined"] == len(before)
    left = _blob_files(cluster)
    assert letter_blob.removeprefix("sha256:") in left                     # the dead letter's file is kept
    assert len(left) == report["kept_referenced"]
    # The ownership markers of the removed blobs went with them; the kept blobs' claims stay.
    markers = [str(p) for top in ("owners", "claims", "documents") for p in (_blobs(cluster) / top).rglob("*")
               if p.is_file()]
    assert report["markers_removed"] >= report["removed"]
    assert all(any(digest in m for digest in left) for m in markers), markers
    assert any(letter_blob.removeprefix("sha256:") in m for m in markers)

    replayed = _osmose(cluster, "dlq", "replay", "triage", "--job", bad_id)
    assert replayed.code == 0, replayed.stderr
    assert f"replayed {bad_id}" in replayed.stdout
    async with ServiceClient(cluster.front_door) as client:
        deadline = time.monotonic() + 120
        while not ((job := await client.get_job(bad_id)).replay == 1 and is_terminal(job)):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.2)
    assert job.state == epb.JOB_STATE_FAILED and job.reason == bad.reason   # it ran again: same verdict

    # The blob is gone anyway (a bucket rule shorter than the dead letters' retention): said clearly.
    (_blobs(cluster) / "sha256" / letter_blob[7:9] / letter_blob[7:]).unlink()
    expired = _osmose(cluster, "dlq", "replay", "triage", "--job", bad_id)
    assert expired.code == 1
    assert f"NOT replayed {bad_id}" in expired.stderr and "blob-expired" in expired.stderr, expired.stderr


async def test_submit_retries_while_the_front_door_is_down_and_reports_every_file(cluster: Cluster,
                                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "decks"
    folder.mkdir()
    files = [build_title_body_pptx(folder, name=f"deck-{i}.pptx", title=f"Deck {i}") for i in range(4)]
    assert cluster.terminate("triage") == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
    proc = subprocess.Popen([str(OSMOSE), "submit", str(folder), "--server", cluster.front_door, "--tenant", "retry",
                             "--tier", "fast", "--json", "--retry-for", "300"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        while not any("retry 1" in line for line in seen):   # the server is down: the client waits and retries
            line = proc.stderr.readline()
            assert line, f"submit ended without retrying: {seen}"
            seen.append(line)
        cluster.start("triage")
        cluster.wait_serving(["triage"])
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert sorted(d["file"] for d in lines) == sorted(str(f) for f in files)   # every file, once
    assert {d["status"] for d in lines} == {"queued"}
    job_ids = [d["job_id"] for d in lines]
    assert len(set(job_ids)) == len(files)
    jobs = await _watch_all(cluster, job_ids)
    assert {j.state for j in jobs} == {epb.JOB_STATE_SUCCEEDED}
    retried = [e for e in _envelopes(cluster, "triage") if e.tenant == "retry"]
    assert len(retried) == len(files)               # retries made no second job


def test_submit_reports_every_file_when_the_server_never_comes_back(tmp_path: Path) -> None:
    folder = tmp_path / "decks"
    folder.mkdir()
    for i in range(3):
        build_title_body_pptx(folder, name=f"deck-{i}.pptx")
    result = run_osmose("submit", folder, "--server", "127.0.0.1:9", "--json", "--retry-for", "2")
    assert result.code == 2, result.stderr
    lines = result.json_lines()
    assert len(lines) == 3 and {d["status"] for d in lines} == {"error"}
    assert all(d["error"].startswith("unavailable") for d in lines), lines
