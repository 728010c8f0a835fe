"""The miner stage on work items: canonical concepts, ids, merges, relations, idempotence."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from osmose import ids
from osmose.services.miner import MinerConfig, MinerLimits, MinerStage
from osmose.stage import PipelineStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio

ROLE, TOOL, TOPIC = pb.CONCEPT_TYPE_ROLE, pb.CONCEPT_TYPE_TOOL, pb.CONCEPT_TYPE_TOPIC


def _item(make_concept: Callable[..., pb.Concept], tier: int = pb.TIER_DEEP) -> ppb.WorkItem:
    concepts = [
        make_concept("Key Performance Indicators", aliases=["KPI"], methods=["acronym"], mentions={3: 1},
                     segments=["seg-1"], score=1.1),
        make_concept("KPI", methods=["acronym"], mentions={3: 2, 4: 1}, segments=["seg-1", "seg-2"], score=0.8),
        make_concept("developers", ROLE, mentions={1: 2, 2: 1}, segments=["seg-0"], score=0.7),
        make_concept("Developer", ROLE, mentions={3: 1}, segments=["seg-1"], score=0.4),
        make_concept("SQL Server", TOOL, mentions={2: 1}, segments=["seg-0", "seg-1"], score=0.9),
        make_concept("threat modeling", pb.CONCEPT_TYPE_PRACTICE, mentions={5: 1}, segments=["seg-2"], score=0.6),
        make_concept("threat modelling", pb.CONCEPT_TYPE_PRACTICE, mentions={6: 1}, segments=["seg-2"], score=0.5),
        make_concept("threat modeling tool", TOOL, mentions={6: 1}, segments=["seg-2"], score=0.3),
    ]
    return ppb.WorkItem(
        job_id="job-1", tenant="acme", document=pb.Document(doc_id="doc-1", language="en"),
        plan=ppb.TriagePlan(tier=tier, language="en"), concepts=concepts,
    )


async def _run(item: ppb.WorkItem, embeddings, limits: MinerLimits | None = None) -> ppb.WorkItem:
    stage = MinerStage(MinerConfig(limits=limits or MinerLimits(merge_threshold=0.9)), embeddings=embeddings)
    return await stage.process(item)


def test_is_a_pipeline_stage(embeddings) -> None:
    stage = MinerStage(embeddings=embeddings)
    assert isinstance(stage, PipelineStage) and stage.name == "miner"


async def test_canonical_concepts_and_merges(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    item = await _run(_item(make_concept), embeddings)
    by_key = {c.canonical_key: c for c in item.concepts}
    assert sorted(by_key) == ["developer", "key performance indicator", "sql server", "threat modeling",
                              "threat modeling tool"]
    for concept in item.concepts:
        assert concept.concept_id == ids.concept_id("acme", concept.canonical_key)
    kpi = by_key["key performance indicator"]
    assert list(kpi.aliases) == ["KPI"] and sum(m.count for m in kpi.mentions) == 4
    assert by_key["developer"].type == ROLE and not by_key["developer"].aliases
    # Same words, another type: the tool is not merged into the practice.
    assert by_key["threat modeling tool"].type == TOOL
    reasons = sorted((m.reason, m.from_key, m.into_key) for m in item.merges)
    assert reasons == [
        ("acronym", "kpi", "key performance indicator"),
        ("plural", "developers", "developer"),
        ("similarity", "threat modelling", "threat modeling"),
    ]
    scores = [c.score for c in item.concepts]
    assert scores == sorted(scores, reverse=True)


async def test_relations_only_in_deep(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    standard = await _run(_item(make_concept, tier=pb.TIER_STANDARD), embeddings)
    assert standard.concepts and not standard.relations

    deep = await _run(_item(make_concept), embeddings)
    # CO_OCCURS needs two shared slides beyond chance (text_relations): here every pair shares at
    # most one slide, so sharing a segment ("developer"/"sql server" in seg-0 and seg-1) joins nothing.
    assert not [r for r in deep.relations if r.kind == pb.RELATION_KIND_CO_OCCURS]
    assert deep.relations  # SIMILAR names still relate
    for relation in deep.relations:
        assert relation.source_key < relation.target_key


async def test_typed_relations_from_elsewhere_are_kept(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    item = _item(make_concept)
    item.relations.append(pb.Relation(source_key="a", target_key="b", kind=pb.RELATION_KIND_TYPED, label="uses"))
    out = await _run(item, embeddings)
    assert [r.label for r in out.relations if r.kind == pb.RELATION_KIND_TYPED] == ["uses"]


async def test_idempotent_and_independent_of_input_order(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    once = await _run(_item(make_concept), embeddings)
    twice = await _run(await _run(_item(make_concept), embeddings), embeddings)
    assert once.SerializeToString(deterministic=True) == twice.SerializeToString(deterministic=True)

    shuffled = _item(make_concept)
    concepts = list(shuffled.concepts)
    random.Random(5).shuffle(concepts)
    del shuffled.concepts[:]
    shuffled.concepts.extend(concepts)
    assert (await _run(shuffled, embeddings)).SerializeToString(deterministic=True) == once.SerializeToString(
        deterministic=True
    )


async def test_embeds_each_name_once(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    await _run(_item(make_concept), embeddings)
    (call,) = embeddings.calls
    assert len(call) == len(set(call))


async def test_empty_items_pass_through(embeddings) -> None:
    empty = ppb.WorkItem(tenant="acme", plan=ppb.TriagePlan(tier=pb.TIER_DEEP))
    out = await _run(empty, embeddings)
    assert not out.concepts and not out.relations and not embeddings.calls
