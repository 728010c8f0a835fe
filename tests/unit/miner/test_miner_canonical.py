"""Canonical keys and the three merge passes (keys, acronyms, similarity)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from osmose.services.miner.canonical import merge_acronyms, merge_by_key, merge_similar
from osmose.v1 import document_pb2 as pb

TOPIC, ROLE, TOOL, PRACTICE = (pb.CONCEPT_TYPE_TOPIC, pb.CONCEPT_TYPE_ROLE, pb.CONCEPT_TYPE_TOOL,
                               pb.CONCEPT_TYPE_PRACTICE)


def test_case_punctuation_and_plural_merges_are_recorded(make_concept: Callable[..., pb.Concept]) -> None:
    concepts = [
        make_concept("developer", ROLE, mentions={1: 2}, segments=["s1"], score=1.0),
        make_concept("Developers", ROLE, mentions={2: 1}, segments=["s2"], score=0.5),
        make_concept("PCI DSS", TOPIC, mentions={3: 1}),
        make_concept("PCI-DSS", pb.CONCEPT_TYPE_STANDARD, mentions={4: 1}),
        make_concept("SQL Server", TOOL, mentions={1: 2, 2: 1}, score=0.9),
        make_concept("sql server", TOOL, mentions={1: 2}, score=0.3),
    ]
    merged, merges = merge_by_key(concepts, "en")
    by_key = {c.canonical_key: c for c in merged}
    assert sorted(by_key) == ["developer", "pci dss", "sql server"]

    dev = by_key["developer"]
    assert dev.name == "developer" and dev.type == ROLE
    assert [(m.slide, m.count) for m in dev.mentions] == [(1, 2), (2, 1)]
    assert list(dev.segment_ids) == ["s1", "s2"] and dev.score == pytest.approx(1.5)
    assert not dev.aliases  # a plural is a spelling, not an alias
    # The same words in another case counted the same occurrences: the larger count is kept.
    assert [(m.slide, m.count) for m in by_key["sql server"].mentions] == [(1, 2), (2, 1)]
    assert by_key["pci dss"].type == pb.CONCEPT_TYPE_STANDARD  # the more specific type wins

    records = {(m.from_key, m.into_key, m.reason, m.similarity) for m in merges}
    assert records == {
        ("developers", "developer", "plural", 1.0),
        ("pci-dss", "pci dss", "punctuation", 1.0),
        ("sql server", "sql server", "case", 1.0),
    }


def test_acronym_merges_into_its_expansion(make_concept: Callable[..., pb.Concept]) -> None:
    concepts, _ = merge_by_key(
        [
            make_concept("Key Performance Indicators", aliases=["KPI"], methods=["acronym"], mentions={3: 1}),
            make_concept("KPI", methods=["acronym"], mentions={3: 1, 4: 2}, segments=["seg-1"]),
            make_concept("Key Performance Indicator", mentions={5: 1}, segments=["seg-2"]),
        ],
        "en",
    )
    merged, merges = merge_acronyms(concepts, "en")
    assert len(merged) == 1
    kpi = merged[0]
    # The singular spelling names the concept; the acronym stays as an alias.
    assert kpi.name == "Key Performance Indicator" and kpi.canonical_key == "key performance indicator"
    assert list(kpi.aliases) == ["KPI"]
    assert [(m.slide, m.count) for m in kpi.mentions] == [(3, 2), (4, 2), (5, 1)]
    assert list(kpi.segment_ids) == ["seg-0", "seg-1", "seg-2"]
    assert [(m.from_key, m.into_key, m.reason) for m in merges] == [("kpi", "key performance indicator", "acronym")]


def test_ambiguous_acronym_is_not_merged(make_concept: Callable[..., pb.Concept]) -> None:
    concepts, _ = merge_by_key(
        [
            make_concept("Project Manager", ROLE, aliases=["PM"]),
            make_concept("Product Manager", ROLE, aliases=["PM"]),
            make_concept("PM"),
        ],
        "en",
    )
    merged, merges = merge_acronyms(concepts, "en")
    assert len(merged) == 3 and not merges


def test_similarity_merges_near_duplicates_of_one_type(
    make_concept: Callable[..., pb.Concept], embeddings: Callable[..., pb.Concept]
) -> None:
    concepts, _ = merge_by_key(
        [
            make_concept("threat modeling", PRACTICE, score=2.0, mentions={1: 2}),
            make_concept("threat modelling", PRACTICE, score=1.0, mentions={2: 1}),
            make_concept("developer", ROLE),
        ],
        "en",
    )
    vectors = {c.name: embeddings.vector(c.name) for c in concepts}
    merged, merges = merge_similar(concepts, vectors, threshold=0.9)
    assert sorted(c.canonical_key for c in merged) == ["developer", "threat modeling"]
    modeling = next(c for c in merged if c.canonical_key == "threat modeling")
    assert list(modeling.aliases) == ["threat modelling"] and modeling.score == pytest.approx(3.0)
    (record,) = merges
    assert (record.from_key, record.into_key, record.reason) == ("threat modelling", "threat modeling", "similarity")
    assert 0.9 <= record.similarity < 1.0


def test_no_similarity_merge_across_types_numbers_or_acronyms(
    make_concept: Callable[..., pb.Concept], embeddings: Callable[..., pb.Concept]
) -> None:
    concepts, _ = merge_by_key(
        [
            make_concept("threat modeling", PRACTICE),
            make_concept("threat modelling", TOOL),  # same words, another type: kept apart
            make_concept("ISO 27001", pb.CONCEPT_TYPE_STANDARD),
            make_concept("ISO 27002", pb.CONCEPT_TYPE_STANDARD),
            make_concept("XSS"),
            make_concept("XSSI"),
        ],
        "en",
    )
    vectors = {c.name: embeddings.vector(c.name) for c in concepts}
    merged, merges = merge_similar(concepts, vectors, threshold=0.5)
    assert len(merged) == 6 and not merges


def test_similarity_merge_does_not_chain(make_concept: Callable[..., pb.Concept]) -> None:
    import numpy as np

    # a~b and b~c above the threshold, a and c not: c must not join a through b.
    a, b, c = np.array([1.0, 0.0]), np.array([0.8, 0.6]), np.array([0.28, 0.96])
    concepts = [make_concept(n, score=s) for n, s in (("alpha", 3.0), ("beta", 2.0), ("gamma", 1.0))]
    for concept in concepts:
        concept.canonical_key = concept.name
    vectors = {"alpha": a, "beta": b, "gamma": c}
    merged, merges = merge_similar(concepts, vectors, threshold=0.75)
    assert [m.from_key for m in merges] == ["beta"] and sorted(x.name for x in merged) == ["alpha", "gamma"]
