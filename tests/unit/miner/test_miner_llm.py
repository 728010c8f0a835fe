"""The miner's typed relations (DEEP) from a language model behind a local vLLM-like server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel
from osmose.embeddings.base import Embeddings
from osmose.models.config import RouterConfig
from osmose.services.miner import MinerStage
from osmose.services.miner.llm_relations import LABELS
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import closed_port_url, router, runtime

pytestmark = pytest.mark.anyio

SLIDES = {
    1: ("Access", ["Zero Trust Network Access uses the Identity Provider for every request"]),
    2: ("Tokens", ["The Identity Provider is part of Microsoft Entra"]),
    3: ("Monitoring", ["The Security Operations Center uses Microsoft Sentinel",
                       "Microsoft Sentinel depends on Log Analytics"]),
}
CONCEPTS = [  # name, segment, slides
    ("Zero Trust Network Access", "seg-a", {1: 1}),
    ("Identity Provider", "seg-a", {1: 1, 2: 1}),
    ("Microsoft Entra", "seg-a", {2: 1}),
    ("Security Operations Center", "seg-b", {3: 1}),
    ("Microsoft Sentinel", "seg-b", {3: 2}),
    ("Log Analytics", "seg-b", {3: 1}),
]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer(latency=LatencyModel(time_scale=0)) as server:
        yield server


def _item(make_concept: Callable[..., pb.Concept], tier: int = pb.TIER_DEEP) -> ppb.WorkItem:
    slides = []
    for number, (title, lines) in SLIDES.items():
        slide = pb.Slide(number=number, title=title)
        slide.blocks.add(text=title, role=pb.BLOCK_ROLE_TITLE)
        for line in lines:
            slide.blocks.add(text=line, role=pb.BLOCK_ROLE_BODY)
        slides.append(slide)
    return ppb.WorkItem(
        tenant="acme", document=pb.Document(doc_id="d", slides=slides),
        segments=[pb.Segment(segment_id="seg-a", index=0, slide_numbers=[1, 2]),
                  pb.Segment(segment_id="seg-b", index=1, slide_numbers=[3])],
        concepts=[make_concept(n, pb.CONCEPT_TYPE_ENTITY, segments=[seg], mentions=m, score=2.0 - i / 10)
                  for i, (n, seg, m) in enumerate(CONCEPTS)],
        plan=ppb.TriagePlan(tier=tier, language="en"),
    )


async def _run(item: ppb.WorkItem, config: RouterConfig, tmp_path: Path, embeddings: Embeddings
               ) -> ppb.WorkItem:
    models = runtime(config, tmp_path)

    async def go() -> ppb.WorkItem:
        try:
            return await MinerStage(embeddings=embeddings, models=models).process(item)
        finally:
            await models.aclose()

    return await go()


def _typed(item: ppb.WorkItem) -> set[tuple[str, str, str]]:
    return {(r.source_key, r.target_key, r.label) for r in item.relations if r.kind == pb.RELATION_KIND_TYPED}


async def test_deep_gets_typed_relations_in_one_packed_call(chat: ChatServer, tmp_path: Path, make_concept,
                                                      embeddings) -> None:
    out = await _run(_item(make_concept), router(llm=chat.openai_url), tmp_path, embeddings)
    typed = _typed(out)
    assert ("zero trust network access", "identity provider", "USES") in typed
    assert ("identity provider", "microsoft entra", "PART_OF") in typed
    assert ("microsoft sentinel", "log analytics", "DEPENDS_ON") in typed
    assert all(label in LABELS for _, _, label in typed)
    # The model's relation (evidence: its segment); the text's own "depends on" is stated per slide.
    relation = next(r for r in out.relations if r.label == "DEPENDS_ON" and "seg-b" in r.evidence)
    assert list(relation.evidence) == ["seg-b"] and relation.weight == 1.0
    assert chat.chat_requests == 1  # two segments, one prompt
    assert "CONCEPT c1: " in chat.log[0]["messages"][1]["content"]
    assert out.model_usage.by_task["relation_typing"].calls == 1


async def test_a_replay_changes_nothing_and_calls_nothing(chat: ChatServer, tmp_path: Path, make_concept,
                                                    embeddings) -> None:
    config = router(llm=chat.openai_url)
    once = await _run(_item(make_concept), config, tmp_path, embeddings)
    twice = await _run(once, config, tmp_path, embeddings)
    assert chat.chat_requests == 1
    assert [r.SerializeToString(deterministic=True) for r in twice.relations] == \
        [r.SerializeToString(deterministic=True) for r in once.relations]
    assert twice.model_usage.by_task["relation_typing"].cache_hits >= 2


async def test_standard_tier_types_nothing(chat: ChatServer, tmp_path: Path, make_concept, embeddings) -> None:
    out = await _run(_item(make_concept, pb.TIER_STANDARD), router(llm=chat.openai_url), tmp_path, embeddings)
    assert not out.relations and chat.chat_requests == 0


async def test_model_down_keeps_cooccurrence_and_says_so(tmp_path: Path, make_concept, embeddings) -> None:
    out = await _run(_item(make_concept), router(llm=closed_port_url(), attempts=1), tmp_path, embeddings)
    # Only the relations the text states (evidence: slides) are TYPED; the model typed none.
    assert all(all(e.startswith("slide:") for e in r.evidence)
               for r in out.relations if r.kind == pb.RELATION_KIND_TYPED)
    assert any("did not type relations for 2 of 2 segments" in w for w in out.warnings)
    assert out.model_usage.by_task["relation_typing"].fallbacks == 2
