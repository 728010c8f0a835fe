"""Every failure of a stage on the bus ends somewhere (issue 13): failures outside the stage
call, oversized headers and snapshots, a message that kills its process again and again, a
stage past its deadline, a dependency outage (a wait, not a dead letter), a broker outage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.consumer import Delivery
from osmose.bus.envelope import encode, now_ms, pack
from osmose.bus.exceptions import BusError, BusUnavailableError
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.errors import BackendUnavailableError
from osmose.hosts.job_ledger import event_name
from osmose.hosts.service_worker import (
    MAX_FILE_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_SNAPSHOT_BYTES,
    RetryPolicy,
    ServiceBus,
    StageWorker,
    bounded_job,
    bounded_letter,
)
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio


class Producer:
    """Records what is published; refuses messages over Kafka's 1 MiB as kafka-python does
    (MessageSizeTooLargeError, not retriable), and fails the publishes it is told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.fail: list[BaseException] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      timeout_s: float | None = None) -> None:
        if len(value) > 1024 * 1024:
            raise BusError(f"publishing to {topic}: MessageSizeTooLargeError: {len(value)} bytes")
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((topic, value))

    def on(self, suffix: str) -> list[bytes]:
        return [value for topic, value in self.sent if topic.endswith(suffix)]

    def jobs(self) -> list[epb.Job]:
        return [epb.Job.FromString(v) for v in self.on(".jobs")]

    def letters(self, stage: str) -> list[epb.DeadLetter]:
        return [epb.DeadLetter.FromString(v) for v in self.on(f"{stage}.dlq")]


class Stage:
    """A stage whose behaviour per call is scripted: an exception to raise, a number of seconds
    to hang, or None (succeed)."""

    def __init__(self, script: list[object], name: str = "embedder") -> None:
        self.name = name
        self.script = script
        self.calls = 0

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, int | float):
            await asyncio.sleep(step)
        item.counters.embedded = 3
        return item


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _worker(tmp_path: Path, script: list[object], *, stage: str = "embedder", jobs: JobTable | None = None,
            producer: Producer | None = None, **policy: float) -> tuple[StageWorker, Stage, Producer]:
    producer = producer or Producer()
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=jobs or JobTable(), host="test:1",
                     publish_retry_s=policy.pop("publish_retry_s", 300.0))
    fake = Stage(script, stage)
    retry = RetryPolicy(**{"max_attempts": 2, "base_s": 0.001, "cap_s": 0.002, "sleep": no_sleep, **policy})
    return StageWorker(stage=fake, bus=bus, retry=retry), fake, producer  # type: ignore[arg-type]


def _delivery(worker: StageWorker, *, job_id: str = "job-1", file: str = "decks/deck.pptx",
              notes: str = "") -> Delivery:
    stage = worker.name
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = pb.TIER_STANDARD
    item.document.doc_id, item.document.file_name = "d" * 32, "deck.pptx"
    if notes:
        item.document.title = notes
    env = pack(epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=pb.TIER_STANDARD, stage=stage,
                            created_at_ms=now_ms(), file=file), item, worker.bus.blobs, threshold=4096)
    return Delivery(topic=f"p.{stage}.bulk", partition=0, offset=7, key=b"k", value=encode(env), headers=[],
                    priority="bulk")


async def test_a_600_kb_file_header_fails_its_job_with_a_trimmed_snapshot_and_the_stage_serves_on(
        tmp_path: Path) -> None:
    worker, stage, producer = _worker(tmp_path, [], stage="persister")
    await worker.handle(_delivery(worker, job_id="huge", file="x" * 600_000))   # returns: nothing escapes
    (letter,) = producer.letters("persister")
    assert (letter.reason, letter.retryable) == ("header-too-large", False)
    assert letter.ByteSize() <= MAX_MESSAGE_BYTES and "characters cut" in letter.envelope.file
    failed = producer.jobs()[-1]
    assert failed.state == epb.JOB_STATE_FAILED and failed.reason == "header-too-large"
    assert failed.ByteSize() <= MAX_SNAPSHOT_BYTES and stage.calls == 0
    await worker.handle(_delivery(worker, job_id="next"))                          # the stage keeps serving
    assert producer.jobs()[-1].state == epb.JOB_STATE_SUCCEEDED and stage.calls == 1


async def test_a_failure_outside_the_stage_call_fails_the_job_instead_of_escaping(tmp_path: Path) -> None:
    worker, _, producer = _worker(tmp_path, [])
    producer.fail = [RuntimeError("snapshot publish broke")]   # the "entered" snapshot
    await worker.handle(_delivery(worker))
    (letter,) = producer.letters("embedder")
    assert (letter.reason, letter.error_class) == ("internal", "RuntimeError")
    assert producer.jobs()[-1].state == epb.JOB_STATE_FAILED


def test_the_largest_envelope_the_settings_allow_fits_in_a_message() -> None:
    """Inline items stop at OSMOSE_CLAIM_CHECK_BYTES (at most 900 KiB) and the file name at
    MAX_FILE_CHARS, so a next-stage envelope always fits (the worker checks it all the same)."""
    from osmose.config import Settings

    limit = Settings.model_fields["claim_check_bytes"].metadata
    most = max(m.le for m in limit if getattr(m, "le", None) is not None)
    env = epb.Envelope(job_id="j" * 40, doc_id="d" * 32, tenant="t" * 128, stage="miner", file="f" * MAX_FILE_CHARS,
                       payload=b"p" * most)
    assert len(encode(env)) < MAX_MESSAGE_BYTES


def test_snapshots_and_letters_are_bounded_by_construction() -> None:
    job = epb.Job(job_id="j", file="f" * 600_000, error="e" * 300_000, report_json='{"file": "' + "f" * 600_000 + '"}')
    assert bounded_job(job).ByteSize() <= MAX_SNAPSHOT_BYTES
    small = epb.Job(job_id="j", file="deck.pptx")
    assert bounded_job(small) is small
    letter = epb.DeadLetter(stage="s", message="m" * 2_000_000)
    letter.envelope.payload = b"p" * 1_100_000
    bounded = bounded_letter(letter)
    assert bounded.ByteSize() <= MAX_MESSAGE_BYTES and "not replayable" in bounded.message


async def test_a_message_that_kills_its_process_three_times_is_dead_lettered_without_running(
        tmp_path: Path) -> None:
    """Each run is cut short as a kill -9 would (the task dies mid-stage); the next process
    rebuilds its job table from what was published to the job topic, as JobTail does."""
    published = Producer()
    for death in range(3):
        table = JobTable()
        for job in published.jobs():
            table.apply(job)
        worker, stage, _ = _worker(tmp_path, [3600], jobs=table, producer=published, max_deliveries=3)
        task = asyncio.create_task(worker.handle(_delivery(worker)))
        while stage.calls == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert published.jobs()[-1].deliveries == death + 1
    table = JobTable()
    for job in published.jobs():
        table.apply(job)
    worker, stage, _ = _worker(tmp_path, [], jobs=table, producer=published, max_deliveries=3)
    await worker.handle(_delivery(worker))
    assert stage.calls == 0
    (letter,) = published.letters("embedder")
    assert (letter.reason, letter.retryable) == ("delivery-limit", False)
    assert published.jobs()[-1].state == epb.JOB_STATE_FAILED
    # another document of the same stage is served normally
    await worker.handle(_delivery(worker, job_id="other"))
    assert stage.calls == 1 and published.jobs()[-1].event == epb.JOB_EVENT_FINISHED


async def test_a_retry_is_not_a_delivery(tmp_path: Path) -> None:
    worker, _, producer = _worker(tmp_path, [BackendUnavailableError("busy")], max_deliveries=1)
    await worker.handle(_delivery(worker))
    assert producer.jobs()[-1].event == epb.JOB_EVENT_FINISHED and not producer.letters("embedder")


async def test_a_stage_past_its_deadline_is_dead_lettered_as_stage_timeout(tmp_path: Path) -> None:
    worker, stage, producer = _worker(tmp_path, [5.0], stage_timeout_s=0.05)
    await worker.handle(_delivery(worker))
    (letter,) = producer.letters("embedder")
    assert (letter.reason, letter.retryable) == ("stage-timeout", False) and stage.calls == 1
    assert producer.jobs()[-1].reason == "stage-timeout"


async def test_a_dependency_outage_is_a_wait_not_a_dead_letter(tmp_path: Path) -> None:
    down = BackendUnavailableError("TEI breaker open")
    worker, stage, producer = _worker(tmp_path, [down] * 9, outage_cap_s=0.01)
    states: list[bool] = []
    resumed: list[bool] = []
    worker.on_resume = lambda: resumed.append(True)
    real_sleep = worker.retry.sleep

    async def watching_sleep(seconds: float) -> None:
        states.append(worker.waiting)
        await real_sleep(seconds)

    object.__setattr__(worker.retry, "sleep", watching_sleep)
    await worker.handle(_delivery(worker))
    assert stage.calls == 10 and not producer.letters("embedder")
    assert True in states and not worker.waiting and resumed == [True]
    events = [event_name(j.event) for j in producer.jobs()]
    assert events[0] == "entered" and events[-1] == "finished" and producer.on(".miner.bulk")


async def test_an_outage_longer_than_the_bound_is_dead_lettered_as_dependency_unavailable(tmp_path: Path) -> None:
    worker, _, producer = _worker(tmp_path, [BackendUnavailableError("Neo4j down")] * 1000, outage_cap_s=0.001,
                                  outage_max_s=0.05)

    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    object.__setattr__(worker.retry, "sleep", slow_sleep)
    await worker.handle(_delivery(worker))
    (letter,) = producer.letters("embedder")
    assert (letter.reason, letter.retryable) == ("dependency-unavailable", True)
    assert not worker.waiting


async def test_publishes_outlast_a_short_broker_outage_and_give_up_after_the_bound(tmp_path: Path) -> None:
    worker, _, producer = _worker(tmp_path, [], publish_retry_s=30)
    producer.fail = [BusUnavailableError("no broker"), BusUnavailableError("no broker")]
    await worker.handle(_delivery(worker))
    assert producer.jobs()[-1].event == epb.JOB_EVENT_FINISHED and worker.bus.broker_down_since is None

    worker, _, producer = _worker(tmp_path, [], publish_retry_s=0.0)
    producer.fail = [BusUnavailableError("no broker")]
    with pytest.raises(BusUnavailableError):   # the consumer restarts; the message is redelivered
        await worker.handle(_delivery(worker, job_id="job-2"))
    assert not producer.letters("embedder")
