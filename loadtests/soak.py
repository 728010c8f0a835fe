"""`make soak`: the six stages as `osmose serve` processes over a real Kafka broker, fed a
steady mix of submissions for SOAK_SECONDS (default 600); resources must stay flat.

What runs: the same cluster as the e2e tests (tests/e2e/cluster.py: one process per
stage, a shared data folder with the blob store, the embedded graph, vectors and caches,
a fresh topic prefix), the local embedding model and heuristic extraction (no model
server). A client keeps ``--concurrency`` jobs in flight, cycling through a mix: the
sample deck, data deck and PDF, a generated 60-slide deck, a corrupt file (must fail
with its reason every time), two tenants, triage's tier or FAST requested, bulk and high
priority. The same files come back round after round, so a steady state exists: every
store write is an idempotent upsert and every embedding is cached after the first round.

What is measured, every ``--interval`` seconds: the RSS of each stage process with its
children (triage's parser workers), and the disk use of the blob store, the caches and
the whole data folder. After the warm-up (``--warmup``, default a quarter of the run, at
least 60 s), the first and last samples are compared (median of three each): a process
whose RSS grows by more than ``--rss-tolerance`` (fraction) plus ``--rss-slack-mb``, a
folder whose size grows by more than ``--disk-tolerance`` plus ``--disk-slack-mb``, any
unexpected failure (a good file failing, the bad file failing with another reason, a job
not finished within ``--job-timeout``) or a stage process exiting fails the run. Prints a
table of the samples and one of the verdicts; writes bench-results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from osmose.hosts.service_client import ServiceClient
from osmose.samples import build_large_deck, build_samples
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import STAGES, Cluster, broker_reachable, delete_topics

MIB = 2**20


@dataclass(frozen=True)
class Submission:
    path: Path
    tenant: str
    tier: pb.Tier = pb.TIER_UNSPECIFIED
    priority: epb.Priority = epb.PRIORITY_BULK
    expect_reason: str | None = None     # None: must succeed


@dataclass
class Tally:
    submitted: int = 0
    succeeded: int = 0
    expected_failures: int = 0
    unexpected: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _mix(folder: Path) -> list[Submission]:
    deck, data_deck, pdf = build_samples(folder / "samples")
    large = build_large_deck(folder / "large-60.pptx", 60)
    bad = folder / "corrupt.pptx"
    bad.write_bytes(b"PK\x03\x04 this is not a presentation " * 64)
    return [
        Submission(deck, "soak-a"),
        Submission(data_deck, "soak-b", tier=pb.TIER_FAST),
        Submission(pdf, "soak-a", priority=epb.PRIORITY_HIGH),
        Submission(large, "soak-b"),
        Submission(bad, "soak-a", expect_reason="truncated"),
        Submission(deck, "soak-b", tier=pb.TIER_FAST, priority=epb.PRIORITY_HIGH),
        Submission(data_deck, "soak-a"),
    ]


async def _drive(target: str, mix: list[Submission], *, until: float, concurrency: int, job_timeout: float,
                 tally: Tally) -> None:
    async with ServiceClient(target, connect_timeout_s=60) as client:
        slots = asyncio.Semaphore(concurrency)
        next_index = 0

        async def one(sub: Submission) -> None:
            started = time.monotonic()
            try:
                job_id = (await client.submit(sub.path, tenant=sub.tenant, tier=sub.tier,
                                              priority=sub.priority)).job_id
                job = await client.watch(job_id, timeout_s=job_timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                tally.unexpected.append(f"{sub.path.name}: {type(exc).__name__}: {exc}")
                return
            finally:
                slots.release()
            tally.seconds.append(time.monotonic() - started)
            if sub.expect_reason is None and job.state == epb.JOB_STATE_SUCCEEDED:
                tally.succeeded += 1
            elif sub.expect_reason is not None and job.state == epb.JOB_STATE_FAILED and job.reason == sub.expect_reason:
                tally.expected_failures += 1
            else:
                tally.unexpected.append(f"{sub.path.name}: {epb.JobState.Name(job.state)} {job.reason} {job.error}")

        tasks: set[asyncio.Task[None]] = set()
        while time.monotonic() < until:
            await slots.acquire()
            sub = mix[next_index % len(mix)]
            next_index += 1
            tally.submitted += 1
            task = asyncio.create_task(one(sub))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)


def _rss_mb(pid: int, *, only_children: bool = False) -> float:
    try:
        proc = psutil.Process(pid)
        procs = proc.children(recursive=True) if only_children else [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / MIB


def _du_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / MIB


def _sample(cluster: Cluster, data: Path, started: float, tally: Tally) -> dict[str, float]:
    row: dict[str, float] = {"t": round(time.monotonic() - started), "jobs": tally.succeeded + tally.expected_failures,
                             "errors": len(tally.unexpected)}
    for stage in STAGES:
        row[f"rss:{stage}"] = _rss_mb(cluster.procs[stage].pid)
    # triage's share that is its parser worker processes (recycled, capped by their own ceiling)
    row["rss:parsers"] = _rss_mb(cluster.procs["triage"].pid, only_children=True)
    row["disk:blobs"] = _du_mb(data / "blobs")
    row["disk:cache"] = _du_mb(data / "cache")
    row["disk:data"] = _du_mb(data)
    return row


def _print_samples(rows: list[dict[str, float]]) -> None:
    columns = list(rows[0])
    names = [c.split(":")[-1][:9] for c in columns]
    print("\nsamples (RSS and disk in MiB)")
    print("  " + "".join(f"{n:>10}" for n in names))
    for row in rows:
        print("  " + "".join(f"{row[c]:>10.0f}" for c in columns))


def _verdicts(rows: list[dict[str, float]], warmup_s: float, args: argparse.Namespace) -> list[dict[str, object]]:
    steady = [r for r in rows if r["t"] >= warmup_s]
    if len(steady) < 4:
        raise SystemExit(f"soak: only {len(steady)} samples after the warm-up; run longer or sample more often")
    head, tail = steady[:3], steady[-3:]
    out = []
    for column in rows[0]:
        if not column.startswith(("rss:", "disk:")):
            continue
        first = statistics.median(r[column] for r in head)
        last = statistics.median(r[column] for r in tail)
        tolerance, slack = ((args.rss_tolerance, args.rss_slack_mb) if column.startswith("rss:")
                            else (args.disk_tolerance, args.disk_slack_mb))
        allowed = first * (1 + tolerance) + slack
        out.append({"what": column, "after_warmup": round(first, 1), "end": round(last, 1),
                    "growth": round(last - first, 1), "allowed": round(allowed, 1), "ok": last <= allowed})
    return out


async def soak(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get("OSMOSE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
    if not broker_reachable(bootstrap):
        raise SystemExit(f"soak: no Kafka broker at {bootstrap} (`make kafka-up`, or set OSMOSE_KAFKA_BOOTSTRAP)")
    duration = float(args.seconds)
    warmup = args.warmup if args.warmup is not None else max(60.0, duration / 4)
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="osmose-soak-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        data = root / "data"
        mix = _mix(root)
        # The job tables' bound is what keeps memory flat; the soak sets it low enough
        # (SOAK_JOB_TABLE, default 300 ended jobs) to be reached within the warm-up.
        cap = os.environ.get("SOAK_JOB_TABLE") or "300"
        cluster = Cluster(bootstrap=bootstrap, prefix=prefix, data_dir=data, log_dir=root / "logs",
                          extra_env={"OSMOSE_JOB_TABLE_MAX_ENDED": cap})
        cluster.start_all()
        tally = Tally()
        rows: list[dict[str, float]] = []
        exited: dict[str, int] = {}
        try:
            cluster.wait_serving()
            print(f"soak: six stages serving (topic prefix {prefix}); {duration:.0f} s of submissions, "
                  f"warm-up {warmup:.0f} s, {args.concurrency} jobs in flight")
            started = time.monotonic()
            driver = asyncio.create_task(_drive(cluster.front_door, mix, until=started + duration,
                                                concurrency=args.concurrency, job_timeout=args.job_timeout,
                                                tally=tally))
            while not driver.done():
                rows.append(await asyncio.to_thread(_sample, cluster, data, started, tally))
                exited.update({s: p.returncode for s, p in cluster.procs.items() if p.poll() is not None})
                await asyncio.wait({driver}, timeout=args.interval)
            await driver
            rows.append(_sample(cluster, data, started, tally))
        finally:
            codes = cluster.stop_all()
            delete_topics(bootstrap, prefix)
        if exited:
            for stage in exited:
                print(cluster.log_tail(stage))
    _print_samples(rows)
    verdicts = _verdicts(rows, warmup, args)
    print("\nafter warm-up (median of the first three samples) vs the end (median of the last three)")
    print(f"  {'what':<16}{'warm MiB':>10}{'end MiB':>10}{'growth':>9}{'allowed':>10}  verdict")
    for v in verdicts:
        print(f"  {v['what']:<16}{v['after_warmup']:>10.1f}{v['end']:>10.1f}{v['growth']:>9.1f}"
              f"{v['allowed']:>10.1f}  {'ok' if v['ok'] else 'GROWS'}")
    by_reason = Counter(u.split(":")[0] for u in tally.unexpected)
    rate = (tally.succeeded + tally.expected_failures) / max(duration, 1) * 60
    print(f"\njobs: {tally.submitted} submitted, {tally.succeeded} succeeded, {tally.expected_failures} failed as "
          f"expected (corrupt file), {len(tally.unexpected)} unexpected ({dict(by_reason)}); {rate:.1f} jobs/min; "
          f"job p50 {statistics.median(tally.seconds) if tally.seconds else 0:.1f} s; stage exits during the run: "
          f"{exited or 'none'}; exit codes at stop: {codes}")
    for line in tally.unexpected[:10]:
        print(f"  unexpected: {line}")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps({"seconds": duration, "warmup_s": warmup, "samples": rows,
                                               "verdicts": verdicts, "jobs": tally.__dict__}, indent=1, default=str))
    failed = [v["what"] for v in verdicts if not v["ok"]]
    if failed or tally.unexpected or exited:
        print(f"\nsoak FAILED: growing {failed or 'nothing'}, {len(tally.unexpected)} unexpected job outcomes, "
              f"exits {exited or 'none'}")
        return 1
    print("\nsoak passed: RSS and disk flat after warm-up, no unexpected failure, every process up")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 600))
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default: max(60, a quarter))")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--concurrency", type=int, default=3, help="jobs in flight")
    parser.add_argument("--job-timeout", type=float, default=300.0)
    parser.add_argument("--rss-tolerance", type=float, default=0.15)
    parser.add_argument("--rss-slack-mb", type=float, default=30.0)
    parser.add_argument("--disk-tolerance", type=float, default=0.10)
    parser.add_argument("--disk-slack-mb", type=float, default=5.0)
    sys.exit(asyncio.run(soak(parser.parse_args())))


if __name__ == "__main__":
    main()
