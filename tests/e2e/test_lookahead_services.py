"""Look-aheads through the six `osmose serve` processes over the real broker: a DEEP deck ingested
with look-aheads (the extractor sends its work item ahead to the embedder and the miner) writes
exactly the graph and vectors of the staged run (``OSMOSE_LOOKAHEAD=false``), and the real
embedder and miner messages find their answers in the caches the look-aheads filled.

The model calls are answered by the local vLLM/TEI-protocol servers with a small latency (so the
extraction's calls overlap the look-aheads, as on a GPU pool); nothing here asserts a duration."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.service_client import ServiceClient
from osmose.samples import build_large_deck
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import STAGES, running_cluster
from tests.unit.hosts.test_preview_inprocess import TENANT, _same_vectors, _stores
from tests.unit.models.backends import write_router

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]


def _lookaheads(port: int) -> dict[tuple[str, str], float]:
    """osmose_lookahead_items_total of one process: (stage, outcome) -> count."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    counts = {}
    for m in re.finditer(r"^osmose_lookahead_items_total\{([^}]*)\} (\S+)$", text, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m[1]))
        counts[labels["stage"], labels["outcome"]] = float(m[2])
    return counts


async def _ingest(bootstrap: str, prefix: str, root: Path, deck: Path, llm: ChatServer, tei: TeiServer, *,
                  lookahead: bool, stages: tuple[str, ...] = ("extractor", "embedder", "miner", "persister")
                  ) -> tuple[dict[str, Any], dict[str, Any], Any, dict[tuple[str, str], float]]:
    root.mkdir(parents=True, exist_ok=True)
    router = write_router(root / "router.yaml", llm="${llm_url}", vision="${vision_url}", tei="${tei_url}",
                          packing="load", timeout_initial=60.0)
    env = {"OSMOSE_LLM_URL": llm.openai_url, "OSMOSE_VISION_URL": llm.openai_url, "OSMOSE_TEI_URL": tei.url,
           "OSMOSE_ROUTER_CONFIG": str(router), "OSMOSE_LOOKAHEAD": str(lookahead).lower()}
    with running_cluster(bootstrap, prefix, root, STAGES, extra_env=env) as cluster:
        async with ServiceClient(cluster.front_door) as client:
            submitted = await client.submit(deck, tenant=TENANT, tier=pb.TIER_DEEP)
            job = await client.watch(submitted.job_id, timeout_s=600)
        counts: dict[tuple[str, str], float] = {}
        for stage in stages:
            counts.update(_lookaheads(cluster.metrics_ports[stage]))
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    report = json.loads(job.report_json)
    async with InProcessPipeline(Settings(data_dir=root / "data")) as pipeline:   # the persister's stores
        graph, vectors = await _stores(pipeline)
    return report, graph, vectors, counts


async def test_lookaheads_write_the_staged_runs_graph_and_vectors_from_the_caches(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    deck = build_large_deck(tmp_path / "deck.pptx", 40)
    latency = LatencyModel(base_s=0.05, decode_tps=400.0)   # calls of ~0.1-0.5 s: the stages overlap them
    with ChatServer(latency=latency, slots=16) as llm, TeiServer(latency=latency) as tei:
        staged, staged_graph, staged_vectors, staged_counts = await _ingest(
            kafka_bootstrap, f"{topic_prefix}-staged", tmp_path / "staged", deck, llm, tei, lookahead=False)
        ahead, ahead_graph, ahead_vectors, ahead_counts = await _ingest(
            kafka_bootstrap, f"{topic_prefix}-ahead", tmp_path / "ahead", deck, llm, tei, lookahead=True)

    # Same results.
    assert staged["tier"] == ahead["tier"] == "deep"
    assert staged_graph["concepts"] and staged_graph["relations"]
    assert ahead_graph == staged_graph
    _same_vectors(ahead_vectors, staged_vectors)
    for key in ("slides", "segments", "concepts", "relations", "chunks"):
        assert ahead[key] == staged[key], key

    # The staged run sent no look-ahead; this one sent one to the embedder and one to the miner, and
    # both ran (the persister never gets one).
    assert not staged_counts.get(("extractor", "published"))
    assert ahead_counts.get(("extractor", "published")) == 2, ahead_counts
    assert ahead_counts.get(("embedder", "ok")) == 1 and ahead_counts.get(("miner", "ok")) == 1, ahead_counts
    assert not any(stage == "persister" for stage, _ in ahead_counts)

    # The job's model usage is the real messages': the embedder embedded nothing itself (every chunk
    # from the cache the look-ahead filled), the miner recalled relation answers; the extraction is
    # the same work in both runs.
    usage, staged_usage = ahead["model"]["by_task"], staged["model"]["by_task"]
    assert staged["embedded"] > 0 and ahead["embedded"] == 0
    assert ahead["chunks"] > 0
    extraction = ("calls", "prompt_tokens", "output_tokens")
    assert [usage["concept_extraction"][k] for k in extraction] == [
        staged_usage["concept_extraction"][k] for k in extraction]
    assert staged_usage["relation_typing"]["calls"] > 0
    assert usage["relation_typing"]["cache_hits"] > 0
    assert usage["relation_typing"]["calls"] < staged_usage["relation_typing"]["calls"]


async def test_vision_sends_the_segments_it_does_not_touch_to_the_extractor_ahead(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """A deck with one diagram flagged for vision: the vision stage sends the other segments ahead to
    the extractor, whose real message recalls them; results are the staged run's."""
    from tests.unit.models.test_models_pipeline import build_deck

    deck = build_deck(tmp_path / "deck.pptx")   # 4 segments, the diagram's flagged for vision
    latency = LatencyModel(base_s=0.05, decode_tps=400.0)
    with ChatServer(latency=latency, slots=16) as llm, TeiServer(latency=latency) as tei:
        staged, staged_graph, staged_vectors, staged_counts = await _ingest(
            kafka_bootstrap, f"{topic_prefix}-vstaged", tmp_path / "staged", deck, llm, tei, lookahead=False)
        ahead, ahead_graph, ahead_vectors, ahead_counts = await _ingest(
            kafka_bootstrap, f"{topic_prefix}-vahead", tmp_path / "ahead", deck, llm, tei, lookahead=True,
            stages=("vision", "extractor", "embedder", "miner", "persister"))

    assert staged["segments"] == ahead["segments"] == 4
    assert staged["model"]["by_task"]["vision_summary"]["calls"] == 1   # the diagram, rendered and summarised
    assert ahead_graph == staged_graph and staged_graph["concepts"]
    _same_vectors(ahead_vectors, staged_vectors)
    assert not staged_counts.get(("vision", "published"))
    assert ahead_counts.get(("vision", "published")) == 1 and ahead_counts.get(("extractor", "ok")) == 1, ahead_counts
    # the real extraction message recalled the untouched segments and asked about the diagram's only
    extraction = ahead["model"]["by_task"]["concept_extraction"]
    assert extraction["cache_hits"] >= 3 and extraction["calls"] >= 1
    assert staged["model"]["by_task"]["concept_extraction"]["cache_hits"] == 0
