"""Co-occurrence and similarity relations."""

from __future__ import annotations

from collections.abc import Callable

from osmose.services.miner.relations import RelationLimits, co_occurrences, similarities
from osmose.v1 import document_pb2 as pb


def _keyed(make_concept: Callable[..., pb.Concept], name: str, segments: list[str], score: float = 1.0) -> pb.Concept:
    concept = make_concept(name, segments=segments, score=score)
    concept.canonical_key = name.casefold()
    return concept


def test_co_occurrence_weights_and_evidence(make_concept: Callable[..., pb.Concept]) -> None:
    concepts = [
        _keyed(make_concept, "SQL Server", ["s1", "s2", "s3"]),
        _keyed(make_concept, "Azure Data Studio", ["s2", "s1"]),
        _keyed(make_concept, "Developer", ["s3"]),
    ]
    relations = co_occurrences(concepts)
    got = {(r.source_key, r.target_key): (r.weight, list(r.evidence)) for r in relations}
    assert got == {
        ("azure data studio", "sql server"): (2.0, ["s1", "s2"]),
        ("developer", "sql server"): (1.0, ["s3"]),
    }
    assert all(r.kind == pb.RELATION_KIND_CO_OCCURS and r.source_key < r.target_key for r in relations)
    assert relations[0].weight == 2.0  # strongest first


def test_co_occurrence_cap_keeps_the_strongest(make_concept: Callable[..., pb.Concept]) -> None:
    concepts = [
        _keyed(make_concept, "a", ["s1", "s2", "s3"]),
        _keyed(make_concept, "b", ["s1", "s2", "s3"]),
        _keyed(make_concept, "c", ["s1"], score=5.0),
        _keyed(make_concept, "d", ["s1"], score=0.1),
    ]
    relations = co_occurrences(concepts, limit=2)
    assert [(r.source_key, r.target_key) for r in relations] == [("a", "b"), ("a", "c")]


def test_similar_relations_in_range(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    names = ["web application firewall", "web application firewalls plus", "penetration testing",
             "penetration tests", "developer"]
    concepts = [_keyed(make_concept, n, ["s1"]) for n in names]
    vectors = {n: embeddings.vector(n) for n in names}
    relations = similarities(concepts, vectors, limits=RelationLimits(similar_min=0.75))
    pairs = {(r.source_key, r.target_key) for r in relations}
    assert ("penetration testing", "penetration tests") in pairs
    assert not any("developer" in p for p in pairs)
    for r in relations:
        assert r.kind == pb.RELATION_KIND_SIMILAR and r.source_key < r.target_key
        assert 0.75 <= r.weight <= 1.0 and r.evidence == [f"sim:{r.weight:.2f}"]


def test_similar_neighbours_are_capped(make_concept: Callable[..., pb.Concept], embeddings) -> None:
    names = [f"cloud security control {i}" for i in range(8)]
    concepts = [_keyed(make_concept, n, ["s1"]) for n in names]
    vectors = {n: embeddings.vector(n) for n in names}
    relations = similarities(concepts, vectors, limits=RelationLimits(similar_min=0.5, similar_per_concept=2,
                                                                         max_similar=5))
    assert 0 < len(relations) <= 5
