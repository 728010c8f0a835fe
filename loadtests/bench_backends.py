"""`make bench-backends`: how busy the pipeline keeps a GPU pool, against the local vLLM/TEI servers.

Each scenario starts a fresh chat (vLLM-like) and TEI server from
``loadtests.fakeservers`` with a capacity model (slots; latency = 300 ms + prompt
tokens / prefill rate + ms per output token), ingests cold (empty caches) through
the in-process host, and prints:

* wall: first document in to last report out;
* floor: the chat server's busy slot-seconds / its slots (``fakeserver_busy_seconds_total``:
  every slot busy from the first call to the last) — no client can beat it;
* ratio = wall / floor, and utilisation = busy / (wall x slots);
* calls by task (read from the requests the server received) and tokens.

Scenarios: (a) a generated 250-slide deck in DEEP with 16 slots at 10 and 40 ms per
output token; (b) a backlog of real documents from the corpus, triage choosing tiers,
16 slots, in-process (b40, b10) and through the six `osmose serve` processes over a
real Kafka broker (k40, k10: ``loadtests/backends_kafka.py``; the broker of
``dev/kafka.sh``, which `make bench-backends` starts on ``KAFKA_PORT``), with the
ratio Kafka wall / in-process wall when both ran; (c) the same backlog with 64 slots; ka40, ka10: the
(a) deck through the six services (``BENCH_LOOKAHEAD=false``: without look-aheads, the staged service run).
``--only`` (env ``BENCH_ONLY``) picks scenarios. The client's router config gets the
server's slot count as the endpoint's ``concurrency`` (what an operator writes for
vLLM's ``max_num_seqs``). Results go to bench-results/backends.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make `loadtests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.backends_kafka import run_backlog  # noqa: E402
from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer  # noqa: E402
from osmose.config import Settings  # noqa: E402
from osmose.hosts.inprocess import InProcessPipeline  # noqa: E402
from osmose.models.config import default_router_text  # noqa: E402
from osmose.pipeline import tier_from_name  # noqa: E402
from osmose.samples import build_large_deck  # noqa: E402

BASE_S = 0.3  # per-request overhead of the simulated server (scheduling, first token)
PREFILL_TPS = 10_000.0


def _task_of(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name", "")
    if name == "osmose_concepts":
        return "concept_extraction"
    if name == "osmose_relations":
        return "relation_typing"
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return "vision_summary"
    return name or "other"


def _router_file(directory: Path, slots: int) -> Path:
    """The shipped router config with the LLM endpoints' concurrency set to the server's slots."""
    raw = yaml.safe_load(default_router_text())
    raw["endpoints"]["llm"]["concurrency"] = slots
    raw["endpoints"]["vision"]["concurrency"] = max(1, slots // 2)
    path = directory / "router.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def _ingest(files: list[Path], settings: Settings, tier: str | None) -> tuple[list[Any], float, float]:
    async with InProcessPipeline(settings) as pipeline:
        pipeline.stages  # noqa: B018 - open stores and model clients before the clock starts
        t0 = time.perf_counter()
        reports = [r async for r in pipeline.ingest(files, tenant="bench", tier=tier_from_name(tier))]
        return reports, time.perf_counter() - t0, t0


def idle_breakdown(spans: list[tuple[float, float]], *, start: float, end: float, slots: int) -> dict[str, float]:
    """Where the slots sat idle between `start` and `end` (slot-seconds): before the pool first
    filled (the head: parsing, the first documents' calls not yet cut), while it had been full
    (the middle: dips between waves) and after it was full for the last time (the tail: the
    last documents' last calls decoding alone). Also when the first call started, when the pool
    first filled and when it was full for the last time, in seconds from `start`."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running, t_prev, idle = 0, start, 0.0
    first_full = last_full = None
    idle_at_first_full = idle_at_last_full = 0.0
    for t, step in events:
        t = min(max(t, start), end)
        idle += (slots - min(running, slots)) * (t - t_prev)
        t_prev = t
        running += step
        if running >= slots:
            if first_full is None:
                first_full, idle_at_first_full = t, idle
        elif step < 0 and running == slots - 1:
            last_full, idle_at_last_full = t, idle  # a slot just freed after the pool was full
    idle += (slots - min(running, slots)) * (end - t_prev)
    if first_full is None:  # never full: all of it is "head"
        return {"head": round(idle, 1), "middle": 0.0, "tail": 0.0,
                "first_call_s": round(min((s for s, _ in spans), default=end) - start, 1),
                "full_s": None, "last_full_s": None}
    last_full = last_full if last_full is not None else first_full
    return {"head": round(idle_at_first_full, 1), "middle": round(idle_at_last_full - idle_at_first_full, 1),
            "tail": round(idle - idle_at_last_full, 1),
            "first_call_s": round(min(s for s, _ in spans) - start, 1),
            "full_s": round(first_full - start, 1), "last_full_s": round(last_full - start, 1)}


def _cpu_seconds() -> float:
    """CPU seconds of this process (the pipeline and the fake servers' threads, which are light)
    and of its finished children (LibreOffice converting and rendering)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_scenario(name: str, files: list[Path], *, tier: str | None, slots: int, ms_per_token: float,
                 tei_slots: int = 4, kafka: bool = False) -> dict[str, Any]:
    """One scenario on fresh model servers: in-process, or (`kafka`) through the six services."""
    latency = LatencyModel(base_s=BASE_S, prefill_tps=PREFILL_TPS, decode_tps=1000.0 / ms_per_token)
    extra: dict[str, Any] = {"host": "kafka" if kafka else "in-process"}
    with tempfile.TemporaryDirectory() as tmp, \
            ChatServer(slots=slots, latency=latency) as llm, TeiServer(slots=tei_slots) as tei:
        assert isinstance(llm, ChatServer) and isinstance(tei, TeiServer)
        router = _router_file(Path(tmp), slots)
        if kafka:
            run = run_backlog(files, tier=tier_from_name(tier), llm_url=llm.openai_url, tei_url=tei.url,
                              router=router)
            reports, wall, cpu, started = run.reports, run.wall_s, run.cpu_s, run.started
            extra.update(in_flight=run.in_flight, waited_s=run.waited_s, submit_s=run.submit_s)
        else:
            settings = Settings.from_env().with_overrides(
                data_dir=Path(tmp) / "data", llm_url=llm.openai_url, vision_url=llm.openai_url, tei_url=tei.url,
                router_config=router)
            cpu0 = _cpu_seconds()
            reports, wall, started = asyncio.run(_ingest(files, settings, tier))
            cpu = _cpu_seconds() - cpu0
        chat, emb = llm.scrape(), tei.scrape()
        calls = Counter(_task_of(body) for body in llm.log)
        assert llm.capacity is not None
        idle = idle_breakdown(list(llm.capacity.spans), start=started, end=started + wall, slots=slots)
    busy = chat["fakeserver_busy_seconds_total"]
    floor = busy / slots
    tei_floor = emb["fakeserver_busy_seconds_total"] / tei_slots
    failed = [r for r in reports if r.status != "ok"]
    tiers = Counter(r.tier or "-" for r in reports)
    result = {
        "scenario": name, "files": len(files), "failed": len(failed), "tiers": dict(tiers),
        "slides": sum(r.slides for r in reports), "slots": slots, "ms_per_token": ms_per_token,
        "wall_s": round(wall, 2), "floor_s": round(floor, 2), "ratio": round(wall / floor, 2) if floor else None,
        "utilisation": round(busy / (wall * slots), 3) if wall else None,
        "busy_s": round(busy, 2), "tei_floor_s": round(tei_floor, 2),
        "calls": dict(sorted(calls.items())), "embed_requests": int(emb.get("te_request_success", 0)),
        "prompt_tokens": int(chat.get("vllm:prompt_tokens_total", 0)),
        "output_tokens": int(chat.get("vllm:generation_tokens_total", 0)),
        "peak_running": int(chat.get("fakeserver_peak_requests_running", 0)),
        "cpu_s": round(cpu, 1), "idle_slot_s": idle,
        "concepts": sum(r.concepts for r in reports), "relations": sum(r.relations for r in reports),
        "chunks": sum(r.chunks for r in reports),
        "stage_s": {k: round(sum(r.seconds.get(k, 0.0) for r in reports), 1)
                    for k in dict.fromkeys(k for r in reports for k in r.seconds)},
        **extra,
    }
    for r in failed:
        print(f"  ! {Path(r.file).name}: {r.error}", file=sys.stderr)
    _print_row(result)
    return result


HEADER = (f"  {'scenario':<30}{'files':>6}{'slides':>7}{'slots':>6}{'ms/tok':>7}{'wall s':>8}{'floor s':>8}"
          f"{'ratio':>7}{'util':>6}{'peak':>5}{'cpu s':>7}  calls (task: n), tokens in/out")


def _print_row(r: dict[str, Any]) -> None:
    calls = ", ".join(f"{k.split('_')[0]}: {v}" for k, v in r["calls"].items())
    print(f"  {r['scenario']:<30}{r['files']:>6}{r['slides']:>7}{r['slots']:>6}{r['ms_per_token']:>7g}"
          f"{r['wall_s']:>8.1f}{r['floor_s']:>8.1f}{r['ratio'] or 0:>7.2f}{r['utilisation'] or 0:>6.2f}"
          f"{r['peak_running']:>5}{r['cpu_s']:>7.1f}  {calls}; embed: {r['embed_requests']}; "
          f"{r['prompt_tokens']}/{r['output_tokens']} tok", flush=True)
    print("      stage seconds (summed over documents): "
          + ", ".join(f"{k} {v:g}" for k, v in r["stage_s"].items()), flush=True)
    idle = r["idle_slot_s"]
    print(f"      idle slot-seconds: {idle['head']:g} before the pool first filled (first call at {idle['first_call_s']:g} s, "
          f"full at {idle['full_s']} s), {idle['middle']:g} in the middle, {idle['tail']:g} in the tail "
          f"(full for the last time at {idle['last_full_s']} s)", flush=True)
    if r.get("host") == "kafka":
        print("      in flight per stage: " + ", ".join(f"{k} {v}" for k, v in r["in_flight"].items())
              + f"; submitting took {r['submit_s']:g} s; waited before each stage (summed): "
              + ", ".join(f"{k} {v:g}" for k, v in r["waited_s"].items()), flush=True)


def _compare_hosts(results: list[dict[str, Any]]) -> None:
    """Kafka wall / in-process wall for each backlog run both ways (the target: within 10%)."""
    for kafka in (r for r in results if r.get("host") == "kafka"):
        same = [r for r in results if r.get("host") == "in-process" and r["slots"] == kafka["slots"]
                and r["ms_per_token"] == kafka["ms_per_token"] and r["files"] == kafka["files"]]
        if same:
            ratio = kafka["wall_s"] / same[0]["wall_s"]
            kafka["kafka_over_inprocess"] = round(ratio, 2)
            print(f"  Kafka / in-process wall at {kafka['slots']} slots, {kafka['ms_per_token']:g} ms/token: "
                  f"{kafka['wall_s']:.1f} s / {same[0]['wall_s']:.1f} s = {ratio:.2f} (target <= 1.10)", flush=True)


def backlog(corpus: Path, count: int) -> list[Path]:
    """`count` documents, pptx and pdf alternating (sorted by name), so the backlog mixes both."""
    pptx = sorted(p for p in corpus.glob("pptx/*") if p.is_file())
    pdf = sorted(p for p in corpus.glob("pdf/*") if p.is_file())
    mixed = [p for pair in zip(pptx, pdf, strict=False) for p in pair]
    mixed += pptx[len(pdf):] + pdf[len(pptx):]
    return mixed[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--slides", type=int, default=250)
    parser.add_argument("--documents", type=int, default=26, help="backlog size (scenarios b and c)")
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY") or "a10,a40,b40,k40,b10,c40",
                        help="comma-separated: a10,a40,b40,b10,c40,c10, and k40,k10 (the b backlog through the "
                             "six services over Kafka), ka40,ka10 (the a deck over Kafka) [env BENCH_ONLY]")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    results = []
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        deck = build_large_deck(Path(tmp) / f"deck-{args.slides}.pptx", args.slides)
        for ms in (10, 40):
            if f"a{ms}" in wanted:
                results.append(run_scenario(f"(a) {args.slides}-slide deck DEEP", [deck], tier="deep", slots=16,
                                            ms_per_token=ms))
            if f"ka{ms}" in wanted:   # the same deck through the six services (look-aheads: BENCH_LOOKAHEAD)
                results.append(run_scenario(f"(a) {args.slides}-slide deck over Kafka", [deck], tier="deep",
                                            slots=16, ms_per_token=ms, kafka=True))
    files = backlog(args.corpus, args.documents)
    if files:
        for key, slots, ms in (("b40", 16, 40), ("k40", 16, 40), ("b10", 16, 10), ("k10", 16, 10),
                               ("c40", 64, 40), ("c10", 64, 10)):
            if key in wanted:
                kafka = key.startswith("k")
                label = "(b) backlog over Kafka" if kafka else f"({key[0]}) backlog, triage tiers"
                results.append(run_scenario(label, files, tier=None, slots=slots, ms_per_token=ms, kafka=kafka))
        _compare_hosts(results)
    elif wanted & {"b40", "b10", "c40", "c10", "k40", "k10"}:
        raise SystemExit(f"no corpus at {args.corpus}: the backlog scenarios need it (CORPUS=...)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backends.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {args.out / 'backends.json'} (cpu s: this process and its children, {os.cpu_count()} cores; load average then: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
