"""Calls sized from the server's live load (``load_source: metrics``): other clients' requests count.

Against the local vLLM-protocol server: another client (raw HTTP, like another pod) fills its
slots and queues requests; a runtime reading the server's ``/metrics`` then packs its
segments, where one seeing only its own calls sends one segment per call. A scrape that fails
leaves the client's view, and calls go on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.fakeservers import ChatServer, Fault, LatencyModel, TeiServer
from osmose.models import ModelRuntime, ask_segments
from osmose.models.config import parse_router_config
from osmose.models.exceptions import RouterConfigError
from osmose.models.server_load import LoadProbe, metrics_url_of, parse_server_load
from osmose.models.structured import call_size
from osmose.services.extractor.llm_extract import TASK
from tests.support import until
from tests.unit.models.backends import (
    LLM_MODEL,
    VISION_MODEL,
    FakeClock,
    closed_port_url,
    router_dict,
    runtime,
)
from tests.unit.models.test_models_load import UNITS

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "metrics"

#: /metrics of a vLLM V1 server (data parallel, two engines) as it prints them, trimmed
VLLM_METRICS = """\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 16.0
vllm:num_requests_running{engine="1",model_name="Qwen/Qwen2.5-7B-Instruct"} 14.0
vllm:num_requests_running{engine="0",model_name="other/model"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 7.0
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-7B-Instruct"} 2.0
vllm:num_requests_waiting{engine="0",model_name="other/model"} 40.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 0.83
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="Qwen/Qwen2.5-7B-Instruct"} 1523.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="Qwen/Qwen2.5-7B-Instruct"} 12.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="Qwen/Qwen2.5-7B-Instruct"} 0.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen2.5-7B-Instruct"} 1535.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 1535.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="Qwen/Qwen2.5-7B-Instruct"} 9876.5
"""

TEI_METRICS = """\
# TYPE te_queue_size gauge
te_queue_size 37
# TYPE te_batch_current_size gauge
te_batch_current_size 64
# TYPE te_request_count counter
te_request_count{method="batch"} 120
"""


def test_the_parser_reads_vllm_v1_metrics_summed_over_engines_of_the_endpoints_models() -> None:
    assert parse_server_load(VLLM_METRICS, protocol="openai", models={LLM_MODEL}) == (30, 9)
    # the endpoint's models not named (another name served): every label set counts
    assert parse_server_load(VLLM_METRICS, protocol="openai", models={"unknown"}) == (33, 49)
    assert parse_server_load(VLLM_METRICS, protocol="openai") == (33, 49)
    assert parse_server_load(TEI_METRICS, protocol="tei") == (0, 37)
    # the hand-written fixtures of the metric contract test (tests/fixtures/metrics/README.md)
    assert parse_server_load((FIXTURES / "vllm.prom").read_text(), protocol="openai", models={LLM_MODEL}) == (3, 1)
    assert parse_server_load((FIXTURES / "tei.prom").read_text(), protocol="tei") == (0, 4)
    with pytest.raises(ValueError, match="vllm:num_requests_running"):
        parse_server_load(TEI_METRICS, protocol="openai")
    with pytest.raises(ValueError):
        parse_server_load("<html>not metrics</html>", protocol="openai")


def test_the_metrics_url_is_the_server_root_unless_given() -> None:
    assert metrics_url_of("http://vllm:8000/v1", "openai") == "http://vllm:8000/metrics"
    assert metrics_url_of("http://tei:80", "tei") == "http://tei:80/metrics"

    def endpoint(**more: Any) -> dict[str, Any]:
        raw = router_dict(llm="http://vllm:8000/v1")
        raw["endpoints"]["llm"].update(more)
        return raw

    config = parse_router_config(endpoint(load_source="metrics", metrics_url="http://gw:9090/vllm/metrics",
                                          metrics_interval=0.5), urls={})
    assert config.endpoints["llm"].metrics_url == "http://gw:9090/vllm/metrics"
    assert parse_router_config(router_dict(llm="http://vllm:8000/v1"), urls={}).endpoints["llm"].load_source == "client"
    for bad, message in [({"load_source": "gpu"}, "load_source"),
                         ({"metrics_url": "http://gw/metrics"}, "only read with load_source: metrics"),
                         ({"server_slots": 64}, "server_slots is only read"),
                         ({"load_source": "metrics", "metrics_url": "gw/metrics"}, "metrics_url must start"),
                         ({"load_source": "metrics", "metrics_interval": 0}, "metrics_interval")]:
        with pytest.raises(RouterConfigError, match=message):
            parse_router_config(endpoint(**bad), urls={})


async def test_a_reading_older_than_three_intervals_is_not_used(chat: ChatServer) -> None:
    clock = FakeClock()
    probe = LoadProbe(f"{chat.url}/metrics", protocol="openai", interval=1.0, clock=clock)
    try:
        assert probe.current() is None
        load = await probe.scrape()
        assert load is not None and (load.running, load.waiting) == (0, 0)
        clock.advance(2.9)
        assert probe.current() == load
        clock.advance(0.1)
        assert probe.current() is None
    finally:
        await probe.aclose()


async def _release(hogs: list[asyncio.Task[httpx.Response]], *closing: httpx.AsyncClient | ModelRuntime) -> None:
    """The other client's held requests cancelled, then every client and runtime closed."""
    for task in hogs:
        task.cancel()
    await asyncio.gather(*hogs, return_exceptions=True)
    for thing in closing:
        await thing.aclose()


def _metrics_runtime(url: str, cache: Path, **endpoint: Any) -> ModelRuntime:
    raw = router_dict(llm=url, concurrency=4, batch_size=4, packing="load")
    raw["endpoints"]["llm"].update({"load_source": "metrics", "metrics_interval": 0.1, **endpoint})
    return runtime(parse_router_config(raw, urls={}), cache)


async def test_segments_are_packed_when_other_clients_fill_the_servers_slots(tmp_path: Path) -> None:
    # Two slots; the vision model's answers decode for ~hours (another pod's long calls),
    # ours at once.
    latency = LatencyModel(base_s=0.0, prefill_tps=1e12, decode_tps=1e9)
    hog = Fault(kind="slow", factor=1e12, route="chat", model=VISION_MODEL)
    with ChatServer(slots=2, latency=latency, faults=[hog]) as chat:
        seeing = _metrics_runtime(chat.openai_url, tmp_path / "metrics")
        blind = runtime(parse_router_config(router_dict(llm=chat.openai_url, concurrency=4, batch_size=4,
                                                        packing="load"), urls={}), tmp_path / "client")
        other = httpx.AsyncClient(base_url=chat.openai_url, timeout=None)
        body = {"model": VISION_MODEL, "messages": [{"role": "user", "content": "Describe the slide."}],
                "max_tokens": 64}
        hogs = [asyncio.create_task(other.post("chat/completions", json=body)) for _ in range(18)]
        try:
            await until(lambda: (chat.scrape()["vllm:num_requests_running"],
                                  chat.scrape()["vllm:num_requests_waiting"]) == (2, 16), "2 running, 16 waiting")
            backend = seeing.backends["llm"]
            await until(lambda: (load := backend.server_load()) is not None and load.waiting == 16,
                         "the probe reads the server's queue")
            assert backend.free == -16 and blind.backends["llm"].free == 4  # the server's queue is ahead: 4 waves
            # 8 segments: the client's view would send one per call; the server's queue says pack
            assert call_size(blind.session(), TASK.name, len(UNITS), 4) == 1
            assert call_size(seeing.session(), TASK.name, len(UNITS), 4) == 4

            packed = asyncio.create_task(ask_segments(seeing.session(), TASK, UNITS))
            single = asyncio.create_task(ask_segments(blind.session(), TASK, UNITS))
            await until(lambda: backend.limits.in_flight == 2 and blind.backends["llm"].limits.in_flight == 4,
                         "both runtimes' calls at the server")
            for task in hogs:  # the other pod goes away: its slots free up
                task.cancel()
            got_packed, got_single = await asyncio.wait_for(asyncio.gather(packed, single), 30)
            assert not got_packed.failed and not got_single.failed
            assert got_packed.answers == got_single.answers and len(got_packed.answers) == len(UNITS)
            assert backend.requests == 2 and blind.backends["llm"].requests == 8
            assert sum(1 for b in chat.log if b["model"] == LLM_MODEL) == 10

            # the queue gone, the same runtime goes back to one segment per call
            await until(lambda: (load := backend.server_load()) is not None and (load.running, load.waiting) == (0, 0),
                         "the probe reads an idle server")
            assert backend.free == 4
            assert call_size(seeing.session(), TASK.name, len(UNITS), 4) == 1
        finally:
            await _release(hogs, other, seeing, blind)
        assert backend.probe is not None and backend.probe._task is None  # stopped with the runtime


async def test_a_busy_server_that_does_not_queue_leaves_its_free_slots(tmp_path: Path) -> None:
    latency = LatencyModel(base_s=0.0, prefill_tps=1e12, decode_tps=1e9)
    hog = Fault(kind="slow", factor=1e12, route="chat", model=VISION_MODEL)
    with ChatServer(slots=4, latency=latency, faults=[hog]) as chat:
        # concurrency 4 each; the server said to run 4 (default), 3, or 64 sequences at once
        runtimes = {slots: _metrics_runtime(chat.openai_url, tmp_path / str(slots), **extra)
                    for slots, extra in [(4, {}), (3, {"server_slots": 3}), (64, {"server_slots": 64})]}
        other = httpx.AsyncClient(base_url=chat.openai_url, timeout=None)
        body = {"model": VISION_MODEL, "messages": [{"role": "user", "content": "Describe the slide."}],
                "max_tokens": 64}
        hogs: list[asyncio.Task[httpx.Response]] = []

        def reads(running: int, waiting: int) -> Callable[[], bool]:
            return lambda: all((load := m.backends["llm"].server_load()) is not None
                               and (load.running, load.waiting) == (running, waiting) for m in runtimes.values())

        try:
            hogs += [asyncio.create_task(other.post("chat/completions", json=body)) for _ in range(3)]
            await until(reads(3, 0), "3 running, none waiting")
            free = {slots: m.backends["llm"].free for slots, m in runtimes.items()}
            assert free == {4: 1, 3: 0, 64: 4}  # 64: only this process's own 4 bound it
            sizes = {slots: call_size(m.session(), TASK.name, len(UNITS), 4) for slots, m in runtimes.items()}
            assert sizes == {4: 4, 3: 2, 64: 1}  # 3: full, the 8 segments alone are 2 waves of its 4 slots
            hogs += [asyncio.create_task(other.post("chat/completions", json=body)) for _ in range(3)]
            await until(reads(4, 2), "4 running, 2 waiting")
            assert {slots: m.backends["llm"].free for slots, m in runtimes.items()} == {4: -2, 3: -2, 64: -2}
        finally:
            await _release(hogs, other, *runtimes.values())


@pytest.mark.parametrize("where", ["404", "down"])
async def test_a_failing_scrape_falls_back_to_the_clients_view_and_calls_go_on(
        chat: ChatServer, tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{chat.url}/no-metrics-here" if where == "404" else closed_port_url("/metrics")
    models = _metrics_runtime(chat.openai_url, tmp_path, metrics_url=url)
    backend = models.backends["llm"]
    assert backend.probe is not None
    try:
        with caplog.at_level(logging.INFO, logger="osmose.models.server_load"):
            assert backend.server_load() is None  # starts the probe
            await until(lambda: backend.probe is not None and backend.probe.failures >= 3, "three failed scrapes")
            assert backend.server_load() is None and backend.free == backend.limits.free == 4
            assert call_size(models.session(), TASK.name, len(UNITS), 4) == 1
            got = await ask_segments(models.session(), TASK, UNITS)
        assert not got.failed and len(got.answers) == len(UNITS)
        assert backend.requests == len(UNITS)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and url in warnings[0].getMessage()  # once, not per scrape
    finally:
        await models.aclose()


async def test_embeddings_pack_when_teis_queue_holds_other_clients_inputs(tmp_path: Path) -> None:
    # One slot; the next 4 requests (another client's, 8 texts each) take ~hours, ours no time.
    latency = LatencyModel(base_s=0.0, prefill_tps=1e12, decode_tps=1.0)
    hog = Fault(kind="slow", count=4, factor=1e15, route="embed")
    with TeiServer(slots=1, latency=latency, faults=[hog], max_client_batch_size=8) as tei:

        def tei_runtime(cache: Path, **endpoint: Any) -> ModelRuntime:
            raw = router_dict(tei=tei.url, concurrency=4)
            raw["endpoints"]["tei"].update(endpoint)
            return runtime(parse_router_config(raw, urls={}), cache)

        seeing = tei_runtime(tmp_path / "metrics", load_source="metrics", metrics_interval=0.1)
        blind = tei_runtime(tmp_path / "client")
        other = httpx.AsyncClient(base_url=tei.url, timeout=None)
        hogs = [asyncio.create_task(other.post("/embed", json={"inputs": [f"other pod text {i}-{j}" for j in range(8)]}))
                for i in range(4)]
        try:
            await until(lambda: tei.scrape()["te_queue_size"] == 24, "3 requests of 8 inputs queued")
            backend = seeing.backends["tei"]
            embeddings, plain = seeing.embeddings, blind.embeddings
            assert embeddings is not None and plain is not None
            await embeddings.info()
            await plain.info()
            await until(lambda: (load := backend.server_load()) is not None and load.waiting == 24,
                         "the probe reads TEI's queue")
            # three requests' worth queued at TEI: one of our four slots left
            assert embeddings._packer.limit(8) == 1 and plain._packer.limit(8) == 4

            texts = [f"segment {i} about zero trust" for i in range(6)]
            packed = asyncio.gather(*(embeddings.embed([t]) for t in texts))
            single = asyncio.gather(*(plain.embed([t]) for t in texts))
            await until(lambda: tei.scrape()["te_queue_size"] == 24 + 1 + 4, "our first requests queued at TEI")
            for task in hogs:
                task.cancel()
            got_packed, got_single = await asyncio.wait_for(asyncio.gather(packed, single), 30)
            assert all((a == b).all() for a, b in zip(got_packed, got_single, strict=True))
            # metrics: 1 request, then the 5 texts queued here in one; client view: 4 alone, then 2
            assert sorted(tei.batch_sizes) == [1, 1, 1, 1, 1, 2, 5]
            assert backend.requests == 1 + 2 and blind.backends["tei"].requests == 1 + 5
        finally:
            await _release(hogs, other, seeing, blind)


def test_a_probe_reused_on_a_later_event_loop_reads_again(chat: ChatServer) -> None:
    probe = LoadProbe(f"{chat.url}/metrics", protocol="openai", interval=0.1)

    async def read(more_than: int) -> None:
        probe.start()
        await until(lambda: probe.scrapes > more_than and probe.current() is not None, "a fresh reading")

    asyncio.run(read(0))  # the loop ends, and its connections with it
    first = probe.scrapes
    asyncio.run(read(first))
    assert probe.failures == 0

    async def close() -> None:
        await probe.aclose()

    asyncio.run(close())
