"""The job table: snapshots ordered by (replay, progress), never going back; watchers see each event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from osmose.bus.jobs import PROGRESS_DONE, JobTable, is_terminal
from osmose.hosts.job_ledger import event_kind, event_name, progress_of
from osmose.v1 import envelope_pb2 as epb

pytestmark = pytest.mark.anyio


def _job(event: str, stage: str = "", *, replay: int = 0, state: int = epb.JOB_STATE_RUNNING) -> epb.Job:
    return epb.Job(job_id="j", event=event_kind(event), stage=stage, replay=replay, state=state,
                   progress=progress_of(event_kind(event), stage))


def test_progress_is_monotone_along_the_pipeline() -> None:
    order = [progress_of(event_kind("queued"), ""), progress_of(event_kind("entered"), "triage"), progress_of(event_kind("finished"), "triage"),
             progress_of(event_kind("entered"), "embedder"), progress_of(event_kind("finished"), "persister"), progress_of(event_kind("done"), "persister")]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert progress_of(event_kind("failed"), "miner") == PROGRESS_DONE


def test_older_snapshots_are_ignored_and_the_first_end_wins() -> None:
    table = JobTable()
    assert table.apply(_job("queued", state=epb.JOB_STATE_QUEUED))
    assert table.apply(_job("entered", "embedder"))
    assert not table.apply(_job("finished", "triage"))      # a redelivered older event
    assert table.get("j").stage == "embedder"
    retry = _job("retrying", "embedder")
    retry.attempt = 1
    assert table.apply(retry)                                  # same progress (a retry) updates
    assert table.apply(_job("done", "persister", state=epb.JOB_STATE_SUCCEEDED))
    assert not table.apply(_job("cancelled", state=epb.JOB_STATE_CANCELLED))
    assert table.get("j").state == epb.JOB_STATE_SUCCEEDED and is_terminal(table.get("j"))
    # a replay from the dead-letter topic starts a new run that supersedes the end
    assert table.apply(_job("replayed", "miner", replay=1, state=epb.JOB_STATE_QUEUED))
    assert not table.accepts(_job("done", "persister", state=epb.JOB_STATE_SUCCEEDED))


async def test_watch_yields_history_then_updates_until_the_end() -> None:
    async def scenario() -> list[str]:
        table = JobTable()
        table.apply(_job("queued", state=epb.JOB_STATE_QUEUED))
        seen: list[str] = []

        async def watch() -> None:
            async for job in table.watch("j"):
                seen.append(event_name(job.event))

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        table.apply(_job("entered", "triage"))
        table.apply(_job("finished", "triage"))
        table.apply(_job("failed", "triage", state=epb.JOB_STATE_FAILED))
        table.apply(_job("entered", "vision"))                  # ignored: the job ended
        await asyncio.wait_for(watcher, 5)
        return seen

    assert await scenario() == ["queued", "entered", "finished", "failed"]


async def test_watch_of_an_ended_job_returns_at_once() -> None:
    async def scenario() -> list[str]:
        table = JobTable()
        table.apply(_job("done", "persister", state=epb.JOB_STATE_SUCCEEDED))
        return [event_name(job.event) async for job in table.watch("j")]

    assert await scenario() == ["done"]


def test_the_same_snapshot_twice_is_not_news() -> None:
    table = JobTable()
    entered = _job("entered", "triage")
    assert table.apply(entered)
    assert not table.apply(entered)          # write-through, then the same record from the topic
    retry = _job("entered", "triage")
    retry.attempt = 1
    assert table.apply(retry)                # same progress, new content: still news


def test_the_table_forgets_ended_jobs_by_count_and_age_never_open_ones() -> None:
    now = [1_000_000.0]
    table = JobTable(max_ended=3, ended_ttl_s=3600, clock=lambda: now[0])

    def snapshot(job_id: str, state: int, at: float, progress: int) -> epb.Job:
        return epb.Job(job_id=job_id, state=state, progress=progress, updated_at_ms=int(at * 1000))

    table.apply(snapshot("open", epb.JOB_STATE_RUNNING, now[0] - 7200, 10))
    for i in range(5):
        table.apply(snapshot(f"done-{i}", epb.JOB_STATE_SUCCEEDED, now[0] - 60 + i, 1000))
    assert sorted(j.job_id for j in table.jobs()) == ["done-2", "done-3", "done-4", "open"]
    now[0] += 3600 - 57.5                                                  # done-2 is now past the age
    table.apply(snapshot("done-5", epb.JOB_STATE_FAILED, now[0], 1000))
    assert sorted(j.job_id for j in table.jobs()) == ["done-3", "done-4", "done-5", "open"]
    # A rebuild from the compacted topic skips what ended long ago; open jobs always stay.
    table.apply(snapshot("ancient", epb.JOB_STATE_SUCCEEDED, now[0] - 86400, 1000))
    assert table.get("ancient") is None and table.get("open") is not None
    assert [j.job_id for j in table.open_jobs()] == ["open"]


def test_worker_processes_keep_no_job_history(tmp_path: Path) -> None:
    """Only the front door replays history (WatchJob); a worker-only table keeps the latest
    snapshot of each job, so its memory per job does not grow with the job's events."""
    from osmose.config import Settings
    from osmose.hosts.service import job_table

    settings = Settings(data_dir=tmp_path, job_table_max_ended=7)
    worker, front = job_table(settings, serves_watchers=False), job_table(settings, serves_watchers=True)
    assert (worker.max_ended, front.max_ended) == (7, 7)
    for table in (worker, front):
        for stage in ["triage", "extractor", "embedder", "persister"]:
            table.apply(_job("entered", stage))
    assert [j.stage for j in worker._history["j"]] == ["persister"]
    assert [j.stage for j in front._history["j"]] == ["triage", "extractor", "embedder", "persister"]
    assert worker.get("j") == front.get("j")
