"""The miner with the real local model (all-MiniLM-L6-v2): thresholds that make sense on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from osmose.embeddings.minilm import MiniLMEmbeddings
from osmose.services.miner import MinerStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def model() -> MiniLMEmbeddings:
    # A declared dependency: its absence is a failure, not a skip.
    return MiniLMEmbeddings()


async def test_real_model_merges_spelling_variants_only(make_concept: Callable[..., pb.Concept], model) -> None:
    practice, standard, role = pb.CONCEPT_TYPE_PRACTICE, pb.CONCEPT_TYPE_STANDARD, pb.CONCEPT_TYPE_ROLE
    item = ppb.WorkItem(
        tenant="acme", plan=ppb.TriagePlan(tier=pb.TIER_DEEP, language="en"),
        concepts=[
            make_concept("threat modeling", practice, score=2.0),
            make_concept("threat modelling", practice, score=1.0),
            make_concept("ISO 27001", standard),
            make_concept("ISO 27002", standard),
            make_concept("developer", role),
            make_concept("attacker", role),
            make_concept("software developer", role),
        ],
    )
    out = await MinerStage(embeddings=model).process(item)
    keys = {c.canonical_key for c in out.concepts}
    assert "threat modelling" not in keys and "threat modeling" in keys
    assert {"iso 27001", "iso 27002", "developer", "attacker", "software developer"} <= keys
    similar = {(r.source_key, r.target_key) for r in out.relations if r.kind == pb.RELATION_KIND_SIMILAR}
    # Kept apart on purpose (different numbers), but related.
    assert ("iso 27001", "iso 27002") in similar
    assert ("developer", "software developer") in similar
    assert ("attacker", "developer") not in similar
