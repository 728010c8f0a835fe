"""Two clients ("pods") share one vLLM-protocol pool: call sizing from the client's view vs the server's.

In a cluster the extractor and miner replicas each hold their own model runtime, so each sees
only its own calls. Here pod A asks about a document's segments on an idle 16-slot server
(``loadtests.fakeservers``: 300 ms + prompt tokens / 10,000 per s + N ms per output token,
scaled by ``--time-scale``); once A's calls fill every slot, pod B starts a document of the same
size. With ``load_source: client`` B sees 16 free slots and sends one segment per call into the
server's queue; with ``load_source: metrics`` B reads the queue from ``/metrics`` and packs
``batch_size`` segments per call. Prints, for each mode and per-token latency: wall time, calls
per pod, the server's busy slot-seconds and its floor (busy / slots), and prompt tokens.

    .venv/bin/python -m loadtests.shared_pool [--per-token-ms 10 40] [--time-scale 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from loadtests.fakeservers import ChatServer, LatencyModel
from osmose.cache import SqliteCache
from osmose.models import ModelRuntime, SegmentBlock, ask_segments
from osmose.models.cache import ModelCache
from osmose.models.config import parse_router_config

SLOTS = 16
SEGMENTS = 48  # per pod
MODEL = "Qwen/Qwen2.5-7B-Instruct"
TASK_NAME = "concept_extraction"


def _segments(pod: str) -> list[SegmentBlock]:
    return [SegmentBlock(f"{pod}-{i}", " ".join(
        f"[slide {pod}{i}.{k}] Topic {i}-{k}: the {pod} Platform uses Secure Gateway {i} and Identity Broker {k} "
        "for zero trust network access." for k in range(6))) for i in range(SEGMENTS)]


def _runtime(url: str, mode: str, cache: Path) -> ModelRuntime:
    timeout = {"connect": 5, "initial": 600, "min": 30, "max": 600}
    llm = {"url": url, "concurrency": SLOTS, "timeout": timeout}
    if mode == "metrics":
        llm.update(load_source="metrics", metrics_interval=0.1)
    raw = {"endpoints": {"llm": llm}, "tasks": {TASK_NAME: {
        "chain": [{"endpoint": "llm", "model": MODEL, "params": {"temperature": 0, "max_tokens": 2048}}],
        "batch_size": 4, "packing": "load"}}}
    config = parse_router_config(raw, urls={}, source="<shared_pool>")
    return ModelRuntime(config, cache=ModelCache(SqliteCache(cache / "models.sqlite", namespace="models")))


async def _run(mode: str, per_token_ms: float, time_scale: float) -> str:
    from osmose.services.extractor.llm_extract import TASK

    latency = LatencyModel(base_s=0.3, prefill_tps=10_000, decode_tps=1000 / per_token_ms, time_scale=time_scale)
    with ChatServer(slots=SLOTS, latency=latency) as chat, tempfile.TemporaryDirectory() as tmp:
        a, b = _runtime(chat.openai_url, mode, Path(tmp) / "a"), _runtime(chat.openai_url, mode, Path(tmp) / "b")
        try:
            started = time.perf_counter()
            first = asyncio.create_task(ask_segments(a.session(), TASK, _segments("A")))
            while chat.scrape()["vllm:num_requests_running"] < SLOTS:  # A holds every slot
                await asyncio.sleep(0.01)
            b.backends["llm"].server_load()  # B's probe starts...
            deadline = time.monotonic() + 10
            while mode == "metrics" and b.backends["llm"].server_load() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # ...and reads the server before B sizes its calls
            second = asyncio.create_task(ask_segments(b.session(), TASK, _segments("B")))
            got = await asyncio.gather(first, second)
            wall = time.perf_counter() - started
            if any(g.failed for g in got):
                raise RuntimeError(f"segments without an answer: {[len(g.failed) for g in got]}")
            seen = chat.scrape()
            busy = seen["fakeserver_busy_seconds_total"]
            return (f"{mode:8s} {per_token_ms:3.0f} ms/token: wall {wall:6.2f} s, calls A {a.backends['llm'].requests:2d} "
                    f"B {b.backends['llm'].requests:2d}, busy {busy:7.2f} slot-s, floor {busy / SLOTS:5.2f} s, "
                    f"prompt tokens {int(seen['vllm:prompt_tokens_total'])}")
        finally:
            await a.aclose()
            await b.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-token-ms", type=float, nargs="+", default=[10.0, 40.0])
    parser.add_argument("--time-scale", type=float, default=0.25, help="latency multiplier (1 = the model's)")
    args = parser.parse_args()
    for per_token_ms in args.per_token_ms:
        for mode in ("client", "metrics"):
            print(asyncio.run(_run(mode, per_token_ms, args.time_scale)), flush=True)


if __name__ == "__main__":
    main()
