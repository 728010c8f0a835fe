"""The extractor's language-model path against a local vLLM-like server: packing, schema
validation and repair, provenance, fallback to the heuristics, per-segment caching."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, Fault, LatencyModel
from osmose.models import ModelUnavailableError
from osmose.models.config import RouterConfig
from osmose.services.extractor import ExtractorStage
from osmose.services.extractor.llm_extract import SYSTEM
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import closed_port_url, router, runtime

pytestmark = pytest.mark.anyio

TOPICS = [
    ("Zero Trust Network Access", ["Zero Trust Network Access (ZTNA) replaces the corporate VPN",
                                   "Every request is checked by the Identity Provider"]),
    ("Identity Provider", ["The Identity Provider issues short-lived tokens",
                           "Multi-Factor Authentication (MFA) is required for administrators"]),
    ("Security Operations Center", ["The Security Operations Center (SOC) watches alerts around the clock",
                                    "Analysts use Microsoft Sentinel for correlation"]),
    ("Data Loss Prevention", ["Data Loss Prevention (DLP) rules block uploads of customer records",
                              "DLP alerts go to the SOC"]),
    ("Privileged Access Management", ["Privileged Access Management (PAM) vaults administrator passwords",
                                      "Sessions are recorded for the audit team"]),
    ("Patch Management", ["Critical patches are applied within 14 days",
                          "Patch Management reports go to the CISO"]),
    ("Security Awareness", ["Phishing simulations run every quarter",
                            "Security Awareness training is mandatory for every employee"]),
    ("Incident Response", ["The Incident Response plan names the on-call Incident Commander",
                           "Lessons learned feed the Security Operations Center playbooks"]),
    ("Backup and Recovery", ["Immutable backups protect against ransomware",
                             "Recovery tests run twice a year"]),
]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer(latency=LatencyModel(time_scale=0)) as server:
        yield server


def _slides(segments: int) -> list[tuple[str, list[str]]]:
    out = []
    for title, bullets in TOPICS[:segments]:
        out.append((title, bullets[:1]))
        out.append((f"{title} in practice", bullets[1:]))
    return out


async def _run(item: ppb.WorkItem, config: RouterConfig, cache_dir: Path) -> ppb.WorkItem:
    models = runtime(config, cache_dir)

    async def go() -> ppb.WorkItem:
        try:
            return await ExtractorStage(models=models).process(item)
        finally:
            await models.aclose()

    return await go()


@pytest.mark.parametrize(("segments", "per_call"), [(7, 3), (4, 4), (9, 2), (1, 4)])
async def test_segments_are_packed_several_to_a_call(chat: ChatServer, tmp_path: Path, item_factory: Callable,
                                               segments: int, per_call: int) -> None:
    item = item_factory(_slides(segments), per_segment=2)
    out = await _run(item, router(llm=chat.openai_url, batch_size=per_call), tmp_path)
    calls = math.ceil(segments / per_call)
    assert chat.chat_requests == calls
    assert out.model_usage.by_task["concept_extraction"].calls == calls
    assert out.concepts and all(list(c.methods) == ["llm"] for c in out.concepts)
    assert list(out.warnings) == []
    # static instructions first and identical in every call: the server's prefix cache works
    assert {body["messages"][0]["content"] for body in chat.log} == {SYSTEM}
    assert chat.scrape()["vllm:prefix_cache_hits_total"] > 0 or calls == 1


async def test_concepts_keep_their_provenance(chat: ChatServer, tmp_path: Path, item_factory: Callable) -> None:
    item = item_factory(_slides(4), per_segment=2)
    out = await _run(item, router(llm=chat.openai_url), tmp_path)
    text = {s.number: " ".join([s.title, *(b.text for b in s.blocks)]).lower() for s in item.document.slides}
    by_name = {c.name: c for c in out.concepts}
    ztna = by_name["Zero Trust Network Access"]
    assert list(ztna.aliases) == ["ZTNA"] and ztna.type == pb.CONCEPT_TYPE_ENTITY
    assert [m.slide for m in ztna.mentions] == [1, 2]
    # the alias counts: "SOC" on slide 8 is the Security Operations Center
    assert [m.slide for m in by_name["Security Operations Center"].mentions] == [5, 6, 8]
    for concept in out.concepts:  # every mention points to a slide that says the name or an alias
        forms = [concept.name.lower(), *(a.lower() for a in concept.aliases)]
        assert concept.mentions and concept.segment_ids
        assert all(any(f in text[m.slide] for f in forms) for m in concept.mentions), concept.name


async def test_a_malformed_answer_is_repaired_with_one_more_call(chat: ChatServer, tmp_path: Path,
                                                           item_factory: Callable) -> None:
    chat.set_faults(Fault("malformed", count=1))
    out = await _run(item_factory(_slides(4), per_segment=2), router(llm=chat.openai_url, batch_size=4), tmp_path)
    assert chat.chat_requests == 2
    assert "previous answer could not be used" in chat.log[1]["messages"][1]["content"]
    assert all(list(c.methods) == ["llm"] for c in out.concepts) and list(out.warnings) == []


async def test_output_that_stays_malformed_falls_back_to_heuristics(chat: ChatServer, tmp_path: Path,
                                                              item_factory: Callable) -> None:
    chat.set_faults(Fault("malformed"))
    out = await _run(item_factory(_slides(2), per_segment=2), router(llm=chat.openai_url), tmp_path)
    assert chat.chat_requests == 2  # the call and its repair, then no more
    assert out.concepts and not any("llm" in c.methods for c in out.concepts)
    assert any("heuristics used" in w for w in out.warnings)
    assert out.model_usage.by_task["concept_extraction"].fallbacks == 2


async def test_server_down_means_heuristics_and_the_document_completes(tmp_path: Path, item_factory: Callable) -> None:
    item = item_factory(_slides(3), per_segment=2)
    out = await _run(item, router(llm=closed_port_url(), attempts=2), tmp_path)
    offline = await ExtractorStage().process(item_factory(_slides(3), per_segment=2))
    assert [c.name for c in out.concepts] == [c.name for c in offline.concepts]
    usage = out.model_usage.by_task["concept_extraction"]
    assert usage.fallbacks == 3 and usage.failures == 1 and usage.calls == 2
    assert any("did not answer for 3 of 3 segments" in w for w in out.warnings)


async def test_fallback_fail_makes_the_document_retryable(tmp_path: Path, item_factory: Callable) -> None:
    with pytest.raises(ModelUnavailableError, match="concept extraction failed"):
        await _run(item_factory(_slides(2)), router(llm=closed_port_url(), attempts=1, fallback="fail"), tmp_path)


async def test_a_replay_makes_no_call_and_a_changed_segment_costs_one(chat: ChatServer, tmp_path: Path,
                                                                 item_factory: Callable) -> None:
    config = router(llm=chat.openai_url, batch_size=3)
    first = await _run(item_factory(_slides(6), per_segment=2), config, tmp_path)
    assert chat.chat_requests == 2
    again = await _run(item_factory(_slides(6), per_segment=2), config, tmp_path)
    assert chat.chat_requests == 2  # no new call
    assert again.model_usage.by_task["concept_extraction"].cache_hits == 6
    assert [c.name for c in again.concepts] == [c.name for c in first.concepts]

    changed = _slides(6)
    changed[6] = (changed[6][0], ["Patch Management now covers Kubernetes clusters",
                                  "Kubernetes nodes are patched every week"])  # segment 4 only
    third = await _run(item_factory(changed, per_segment=2), config, tmp_path)
    assert chat.chat_requests == 3
    usage = third.model_usage.by_task["concept_extraction"]
    assert (usage.calls, usage.cache_hits) == (1, 5)
    assert chat.log[-1]["messages"][1]["content"].count("SEGMENT ") == 1
    assert "Kubernetes" in {c.name for c in third.concepts}


async def test_all_calls_of_a_document_are_in_flight_up_to_the_backend_limit(tmp_path: Path,
                                                                        item_factory: Callable) -> None:
    with ChatServer(slots=16, latency=LatencyModel(base_s=0.1, decode_tps=1e9, prefill_tps=1e9)) as server:
        item = item_factory(_slides(9), per_segment=2)
        await _run(item, router(llm=server.openai_url, batch_size=1, concurrency=3), tmp_path)
        metrics = server.scrape()
    assert metrics['fakeserver_requests_total{code="200",route="chat"}'] == 9
    assert metrics["fakeserver_peak_requests_in_flight"] == 3
