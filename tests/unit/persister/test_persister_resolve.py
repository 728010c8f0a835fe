"""Concepts resolved across documents before the persister writes (osmose.services.persister.resolve).

Runs on the embedded store; the store methods it relies on (find_concepts) are
in the contract suite for every store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from osmose import ids
from osmose.services.persister.resolve import Resolution, resolve_across_documents
from osmose.stores.graph import (
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    MentionRow,
    MergeRow,
    RelationRow,
    SegmentRow,
    SlideRow,
)
from osmose.stores.sqlite_graph import SqliteGraphStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteGraphStore]:
    s = SqliteGraphStore(tmp_path / "graph.sqlite")
    yield s
    await s.close()


def doc(tenant: str, doc_id: str, concepts: list[tuple[str, str, str, tuple[str, ...]]],
        relations: list[tuple[str, str]] = (), merges: list[MergeRow] = ()) -> DocumentGraph:
    """concepts: (key, name, type, aliases), each mentioned once on slide 1."""
    segment = ids.segment_id(doc_id, 0)
    return DocumentGraph(
        tenant=tenant,
        document=DocumentRow(doc_id, f"{doc_id}.pptx", doc_id, "pptx", "en", "deep", 2, "0" * 64),
        slides=[SlideRow(ids.slide_id(doc_id, n), n, f"s{n}", segment) for n in (1, 2)],
        segments=[SegmentRow(segment, 0, "", (1, 2))],
        concepts=[ConceptRow(k, n, t, a) for k, n, t, a in concepts],
        mentions=[MentionRow(k, 1, 1) for k, _, _, _ in concepts],
        relations=[RelationRow(s, t, "CO_OCCURS", (segment,)) for s, t in relations],
        merges=list(merges),
    )


async def persist(store: SqliteGraphStore, graph: DocumentGraph) -> list[Resolution]:
    resolved, resolutions = await resolve_across_documents(store, graph)
    await store.write_document(resolved)
    return resolutions


KPI_LONG = ("key performance indicator", "Key Performance Indicator", "STANDARD", ("KPI",))
KPI_SHORT = ("kpi", "KPI", "ENTITY", ())


@pytest.mark.parametrize("order", ["expansion first", "acronym first"])
async def test_acronym_and_expansion_in_two_decks_are_one_node(store: SqliteGraphStore, order: str) -> None:
    first, second = (KPI_LONG, KPI_SHORT) if order == "expansion first" else (KPI_SHORT, KPI_LONG)
    assert await persist(store, doc("acme", "d1", [first, ("dashboard", "Dashboard", "TOOL", ())])) == []
    resolutions = await persist(store, doc("acme", "d2", [second, ("okr", "OKR", "ENTITY", ())],
                                           relations=[(second[0], "okr")]))

    assert resolutions == [Resolution(second[0], first[0], "tenant:acronym", 1.0)]
    assert (await store.stats("acme"))["acme"].concepts == 3  # kpi/expansion, dashboard, okr
    node = await store.get_concept("acme", first[0])
    assert node is not None and node.name == "KPI"  # one vote each: the smaller name, whatever the order
    slides = await store.slides_mentioning("acme", [first[0]], limit=5)
    assert {s.doc_id for s in slides[first[0]]} == {"d1", "d2"}  # provenance: both decks
    assert [r.canonical_key for r in (await store.related_concepts("acme", ["okr"]))["okr"]] == [first[0]]
    merges = await store._call(lambda: store._conn.execute(
        "SELECT doc_id, from_key, into_key, reason, similarity FROM merges WHERE tenant = 'acme'").fetchall())
    assert merges == [("d2", second[0], first[0], "tenant:acronym", 1.0)]  # recorded by the deck that merged

    # Replaying the second deck resolves the same way and changes nothing.
    before = (await store.stats("acme"), await store.get_concept("acme", first[0]))
    assert await persist(store, doc("acme", "d2", [second, ("okr", "OKR", "ENTITY", ())],
                                    relations=[(second[0], "okr")])) == resolutions
    assert (await store.stats("acme"), await store.get_concept("acme", first[0])) == before


async def test_near_duplicates_merge_only_within_a_type(store: SqliteGraphStore) -> None:
    await persist(store, doc("acme", "d1", [("e mail", "E-mail", "TOOL", ()), ("web site", "Web site", "ENTITY", ())]))
    resolutions = await persist(store, doc("acme", "d2", [("email", "Email", "TOOL", ()),
                                                          ("website", "Website", "TOPIC", ())]))
    assert resolutions == [Resolution("email", "e mail", "tenant:near-duplicate", 0.9091)]
    assert await store.get_concept("acme", "website") is not None  # other type: kept apart


async def test_no_merge_when_ambiguous_or_across_tenants(store: SqliteGraphStore) -> None:
    await persist(store, doc("acme", "d1", [
        ("certificate authority", "Certificate Authority", "ENTITY", ("CA",)),
        ("california", "California", "ENTITY", ("CA",)),
    ]))
    assert await persist(store, doc("acme", "d2", [("ca", "CA", "ENTITY", ())])) == []  # two candidates
    assert await persist(store, doc("globex", "d3", [KPI_SHORT])) == []
    await persist(store, doc("acme", "d4", [KPI_LONG]))
    assert await persist(store, doc("globex", "d5", [KPI_SHORT])) == []  # acme's expansion is not globex's


async def test_a_document_keeps_apart_what_its_miner_kept_apart(store: SqliteGraphStore) -> None:
    await persist(store, doc("acme", "d1", [KPI_LONG]))
    # This deck has both, unmerged (say, the miner found "KPI" ambiguous): neither moves.
    assert await persist(store, doc("acme", "d2", [KPI_SHORT, ("kpi dashboard", "KPI dashboard", "TOOL", ()),
                                                   ("key performance indicator", "KPIs", "ENTITY", ())])) == []
    # The deck's own "kpi" and the tenant's expansion both answer to "KPI": ambiguous.
    assert await persist(store, doc("acme", "d3", [("kpi", "KPI", "ENTITY", ()),
                                                   ("k p i", "K P I", "ENTITY", ("KPI",))])) == []


async def test_two_concepts_of_a_deck_never_go_into_one_node(store: SqliteGraphStore) -> None:
    await persist(store, doc("acme", "d1", [KPI_LONG]))
    assert await persist(store, doc("acme", "d2", [("kpi", "KPI", "ENTITY", ()),
                                                   ("k p i", "K P I", "ENTITY", ("KPI",))])) == []
    assert (await store.stats("acme"))["acme"].concepts == 3


async def test_merges_of_the_miner_follow_the_remapped_key(store: SqliteGraphStore) -> None:
    await persist(store, doc("acme", "d1", [KPI_LONG]))
    graph = doc("acme", "d2", [("kpi", "KPI", "ENTITY", ("KPIs",))], merges=[MergeRow("kpis", "kpi", "plural", 1.0)])
    resolved, _ = await resolve_across_documents(store, graph)
    assert [(m.from_key, m.into_key, m.reason) for m in resolved.merges] == [
        ("kpis", "key performance indicator", "plural"),
        ("kpi", "key performance indicator", "tenant:acronym"),
    ]
    assert {m.canonical_key for m in resolved.mentions} == {"key performance indicator"}


async def test_plural_aliases_resolve_like_the_miners_keys(store: SqliteGraphStore) -> None:
    # The alias "KPIs" folds to the key "kpi" (osmose.text.names.canonical_key), both ways.
    await persist(store, doc("acme", "d1", [KPI_SHORT]))
    resolutions = await persist(store, doc("acme", "d2", [
        ("key performance indicator", "Key Performance Indicators", "STANDARD", ("KPIs",))]))
    assert resolutions == [Resolution("key performance indicator", "kpi", "tenant:acronym", 1.0)]
    await persist(store, doc("globex", "d3", [("service level objective", "Service Level Objectives", "STANDARD", ("SLOs",))]))
    assert await persist(store, doc("globex", "d4", [("slo", "SLO", "ENTITY", ())])) == [
        Resolution("slo", "service level objective", "tenant:acronym", 1.0)]
