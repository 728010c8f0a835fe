"""The GraphStore contract, run against every implementation.

Add an implementation to IMPLEMENTATIONS. Tests isolate themselves by random
tenant names, never by a fresh database, so a server implementation (Neo4j)
can share one database per session: its factory connects to that server (or
skips when none is configured) and ignores the temporary folder.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osmose import ids
from osmose.errors import ConfigurationError
from osmose.stores.graph import (
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    GraphStore,
    MentionRow,
    MergeRow,
    RelatedConcept,
    RelationRow,
    SegmentRow,
    SlideRow,
    TenantCounts,
)
from osmose.stores.sqlite_graph import SqliteGraphStore

pytestmark = pytest.mark.anyio

IMPLEMENTATIONS: dict[str, Callable[[Path], GraphStore]] = {
    "sqlite": lambda folder: SqliteGraphStore(folder / "graph" / "graph.sqlite"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def graph_store(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[GraphStore]:
    store = IMPLEMENTATIONS[request.param](tmp_path)
    yield store
    await store.close()


def new_tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


Mentions = dict[str, dict[int, int]]  # concept key -> slide number -> count
Relation = tuple[str, str, str, Iterable[str]]  # source, target, kind, evidence ids


def deck(
    tenant: str,
    doc_id: str,
    *,
    slides: int = 3,
    mentions: Mentions | None = None,
    relations: Iterable[Relation] = (),
    names: dict[str, str] | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
    title: str = "A deck",
) -> DocumentGraph:
    """A document whose concepts are exactly the keys it mentions."""
    mentions = mentions or {}
    names = names or {}
    aliases = aliases or {}
    segment = ids.segment_id(doc_id, 0)
    return DocumentGraph(
        tenant=tenant,
        document=DocumentRow(
            doc_id=doc_id, file_name=f"{doc_id}.pptx", title=title, format="pptx", language="en",
            tier="standard", slides=slides, sha256="0" * 64,
        ),
        slides=[SlideRow(ids.slide_id(doc_id, n), n, f"Slide {n}", segment) for n in range(1, slides + 1)],
        segments=[SegmentRow(segment, 0, "Part one", tuple(range(1, slides + 1)))],
        concepts=[
            ConceptRow(key, names.get(key, key.capitalize()), "ENTITY", aliases.get(key, ())) for key in mentions
        ],
        mentions=[MentionRow(key, slide, count) for key, per_slide in mentions.items() for slide, count in per_slide.items()],
        relations=[RelationRow(s, t, kind, tuple(evidence)) for s, t, kind, evidence in relations],
        merges=[MergeRow(f"{key}-variant", key, "lexical", 0.97) for key in list(mentions)[:1]],
    )


async def counts(store: GraphStore, tenant: str) -> TenantCounts:
    return (await store.stats(tenant))[tenant]


async def weights(store: GraphStore, tenant: str, key: str) -> dict[tuple[str, str], float]:
    return {(r.canonical_key, r.kind): r.weight for r in (await store.related_concepts(tenant, [key]))[key]}


BASIC: Mentions = {"alpha": {1: 2}, "beta": {1: 1, 2: 3}, "gamma": {3: 1}}
BASIC_RELATIONS: list[Relation] = [
    ("alpha", "beta", "CO_OCCURS", ["s1", "s2"]),
    ("beta", "gamma", "TYPED", ["s3"]),
]


async def test_write_then_read(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    graph = deck(tenant, "doc-1", mentions=BASIC, relations=BASIC_RELATIONS)
    await graph_store.write_document(graph)

    assert await counts(graph_store, tenant) == TenantCounts(documents=1, slides=3, segments=1, concepts=3, relations=2)
    assert await graph_store.get_document(tenant, "doc-1") == graph.document
    assert await graph_store.get_document(tenant, "doc-2") is None
    assert await graph_store.get_document(new_tenant(), "doc-1") is None
    assert await weights(graph_store, tenant, "beta") == {("alpha", "CO_OCCURS"): 2.0, ("gamma", "TYPED"): 1.0}


async def test_write_is_idempotent(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    graph = deck(tenant, "doc-1", mentions=BASIC, relations=BASIC_RELATIONS)
    await graph_store.write_document(graph)
    first = (await counts(graph_store, tenant), await weights(graph_store, tenant, "beta"),
             await graph_store.concepts_for_slides(tenant, [("doc-1", 1), ("doc-1", 2)]))
    await graph_store.write_document(graph)
    await graph_store.write_document(graph)
    again = (await counts(graph_store, tenant), await weights(graph_store, tenant, "beta"),
             await graph_store.concepts_for_slides(tenant, [("doc-1", 1), ("doc-1", 2)]))
    assert again == first


async def test_rewrite_drops_stale_mentions_relations_and_orphans(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(tenant, "doc-1", mentions=BASIC, relations=BASIC_RELATIONS))
    smaller = deck(
        tenant, "doc-1", slides=2, title="v2",
        mentions={"alpha": {1: 1}, "beta": {2: 1}},
        relations=[("alpha", "beta", "CO_OCCURS", ["s1"])],
    )
    await graph_store.write_document(smaller)

    assert await counts(graph_store, tenant) == TenantCounts(documents=1, slides=2, segments=1, concepts=2, relations=1)
    assert (await graph_store.get_document(tenant, "doc-1")) == smaller.document
    assert await weights(graph_store, tenant, "alpha") == {("beta", "CO_OCCURS"): 1.0}
    assert (await graph_store.related_concepts(tenant, ["gamma"]))["gamma"] == []
    found = await graph_store.concepts_for_slides(tenant, [("doc-1", 1), ("doc-1", 2), ("doc-1", 3)])
    assert found == {("doc-1", 1): ["Alpha"], ("doc-1", 2): ["Beta"], ("doc-1", 3): []}


async def test_concept_shared_across_documents(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(
        tenant, "doc-1", mentions={"kubernetes": {1: 1}, "docker": {1: 1}},
        relations=[("kubernetes", "docker", "CO_OCCURS", ["e1", "e2"])],
        aliases={"kubernetes": ("k8s",)},
    ))
    await graph_store.write_document(deck(
        tenant, "doc-2", mentions={"kubernetes": {4: 2}, "docker": {2: 1}, "helm": {4: 1}},
        relations=[("kubernetes", "docker", "CO_OCCURS", ["e2", "e3"]), ("helm", "kubernetes", "TYPED", ["e9"])],
        aliases={"kubernetes": ("kube",)},
    ))

    assert (await counts(graph_store, tenant)).concepts == 3  # one node per key, not per document
    assert (await counts(graph_store, tenant)).relations == 2
    # weight = distinct evidence over both documents: {e1, e2, e3}
    assert await weights(graph_store, tenant, "kubernetes") == {("docker", "CO_OCCURS"): 3.0, ("helm", "TYPED"): 1.0}
    found = await graph_store.concepts_for_slides(tenant, [("doc-1", 1), ("doc-2", 4)])
    assert found[("doc-1", 1)] == ["Docker", "Kubernetes"]
    assert found[("doc-2", 4)] == ["Kubernetes", "Helm"]
    concept = await graph_store.get_concept(tenant, "kubernetes")  # type: ignore[attr-defined]
    assert concept == ConceptRow("kubernetes", "Kubernetes", "ENTITY", ("k8s", "kube"))

    assert await graph_store.delete_document(tenant, "doc-2") is True
    assert await weights(graph_store, tenant, "kubernetes") == {("docker", "CO_OCCURS"): 2.0}
    assert (await graph_store.get_concept(tenant, "kubernetes")).aliases == ("k8s",)  # type: ignore[attr-defined]
    assert await graph_store.get_concept(tenant, "helm") is None  # type: ignore[attr-defined]


async def test_shared_concept_name_does_not_depend_on_write_order(graph_store: GraphStore) -> None:
    names = [{"ml": "Machine learning"}, {"ml": "machine-learning"}, {"ml": "Machine learning"}]
    resolved = []
    for order in ([0, 1, 2], [1, 2, 0]):
        tenant = new_tenant()
        for i in order:
            await graph_store.write_document(deck(tenant, f"doc-{i}", mentions={"ml": {1: 1}}, names=names[i]))
        resolved.append((await graph_store.get_concept(tenant, "ml")).name)  # type: ignore[attr-defined]
    assert resolved == ["Machine learning", "Machine learning"]


async def test_delete_document(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(tenant, "doc-1", mentions=BASIC, relations=BASIC_RELATIONS))
    await graph_store.write_document(deck(tenant, "doc-2", mentions={"alpha": {1: 1}}))

    assert await graph_store.delete_document(tenant, "doc-1") is True
    assert await graph_store.delete_document(tenant, "doc-1") is False
    assert await graph_store.delete_document(new_tenant(), "doc-2") is False
    assert await graph_store.get_document(tenant, "doc-1") is None
    assert await counts(graph_store, tenant) == TenantCounts(documents=1, slides=3, segments=1, concepts=1, relations=0)
    assert (await graph_store.related_concepts(tenant, ["alpha"]))["alpha"] == []

    assert await graph_store.delete_document(tenant, "doc-2") is True
    assert await counts(graph_store, tenant) == TenantCounts()


async def test_relation_needs_both_concepts(graph_store: GraphStore) -> None:
    """Evidence pointing at a concept no document mentions is not an edge."""
    tenant = new_tenant()
    await graph_store.write_document(deck(
        tenant, "doc-1", mentions={"a": {1: 1}},
        relations=[("a", "ghost", "SIMILAR", ["e1"]), ("a", "a", "CO_OCCURS", ["e2"])],
    ))
    assert (await counts(graph_store, tenant)).relations == 0
    assert (await graph_store.related_concepts(tenant, ["a"]))["a"] == []


async def test_tenant_isolation(graph_store: GraphStore) -> None:
    acme, globex = new_tenant("acme"), new_tenant("globex")
    await graph_store.write_document(deck(
        acme, "same-doc", mentions={"shared": {1: 5}, "acme-only": {1: 1}},
        relations=[("shared", "acme-only", "CO_OCCURS", ["e1"])],
        names={"shared": "Shared (acme)"},
    ))
    await graph_store.write_document(deck(
        globex, "same-doc", slides=5, mentions={"shared": {1: 1}, "globex-only": {1: 2}},
        relations=[("shared", "globex-only", "CO_OCCURS", ["e1", "e2", "e3"])],
        names={"shared": "Shared (globex)"},
    ))

    stats = await graph_store.stats()
    assert stats[acme] == TenantCounts(documents=1, slides=3, segments=1, concepts=2, relations=1)
    assert stats[globex] == TenantCounts(documents=1, slides=5, segments=1, concepts=2, relations=1)
    assert set(await graph_store.stats(acme)) == {acme}

    assert (await graph_store.concepts_for_slides(acme, [("same-doc", 1)]))[("same-doc", 1)] == ["Shared (acme)", "Acme-only"]
    assert (await graph_store.concepts_for_slides(globex, [("same-doc", 1)]))[("same-doc", 1)] == ["Globex-only", "Shared (globex)"]
    assert await weights(graph_store, acme, "shared") == {("acme-only", "CO_OCCURS"): 1.0}
    assert await weights(graph_store, globex, "shared") == {("globex-only", "CO_OCCURS"): 3.0}
    assert (await graph_store.related_concepts(acme, ["globex-only"]))["globex-only"] == []

    assert await graph_store.delete_document(acme, "same-doc") is True
    assert await counts(graph_store, acme) == TenantCounts()
    assert (await counts(graph_store, globex)).concepts == 2
    assert (await graph_store.get_document(globex, "same-doc")) is not None


async def test_concepts_for_slides_ordering(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(
        tenant, "doc-1",
        mentions={"a": {1: 1}, "b": {1: 5, 2: 1}, "c": {1: 3}, "d": {1: 3}},
        names={"c": "Zeta", "d": "Delta"},
    ))
    found = await graph_store.concepts_for_slides(tenant, [("doc-1", 1), ("doc-1", 2), ("doc-1", 9), ("nope", 1)])
    # most mentioned first; equal counts by name
    assert found == {("doc-1", 1): ["B", "Delta", "Zeta", "A"], ("doc-1", 2): ["B"], ("doc-1", 9): [], ("nope", 1): []}
    assert await graph_store.concepts_for_slides(tenant, []) == {}


async def test_related_concepts_ordering(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(
        tenant, "doc-1",
        mentions={k: {1: 1} for k in ("hub", "n1", "n2", "n3", "n4")},
        relations=[
            ("hub", "n1", "CO_OCCURS", ["e1", "e2", "e3"]),
            ("hub", "n2", "CO_OCCURS", ["e1"]),
            ("n3", "hub", "SIMILAR", ["e1", "e2"]),  # incoming edges are neighbours too
            ("hub", "n4", "CO_OCCURS", ["e4"]),
        ],
    ))
    related = await graph_store.related_concepts(tenant, ["hub", "n1", "unknown"], limit=3)
    assert related["hub"] == [
        RelatedConcept("N1", "n1", "CO_OCCURS", 3.0),
        RelatedConcept("N3", "n3", "SIMILAR", 2.0),
        RelatedConcept("N2", "n2", "CO_OCCURS", 1.0),  # ties (n2, n4) by name
    ]
    assert related["n1"] == [RelatedConcept("Hub", "hub", "CO_OCCURS", 3.0)]
    assert related["unknown"] == []
    assert (await graph_store.related_concepts(tenant, ["hub"], limit=0))["hub"] == []


# -- property: nothing of one tenant is reachable from another -------------------------

KEYS = [f"k{i}" for i in range(6)]
document_strategy = st.fixed_dictionaries({
    "doc_id": st.sampled_from(["d0", "d1", "d2"]),
    "mentions": st.dictionaries(
        st.sampled_from(KEYS), st.dictionaries(st.integers(1, 4), st.integers(1, 3), min_size=1, max_size=3), max_size=5
    ),
    "relations": st.lists(
        st.tuples(st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(["CO_OCCURS", "TYPED"]),
                  st.lists(st.sampled_from(["e0", "e1", "e2", "e3"]), min_size=1, max_size=3)),
        max_size=6,
    ),
})
operations = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.sampled_from(["write", "write", "write", "delete"]), document_strategy),
    min_size=1, max_size=8,
)


class TenantModel:
    """What a tenant's graph must hold after a sequence of writes and deletes."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}

    def apply(self, op: str, doc: dict) -> None:
        if op == "write":
            self.docs[doc["doc_id"]] = doc
        else:
            self.docs.pop(doc["doc_id"], None)

    def mentioned(self) -> set[str]:
        return {k for d in self.docs.values() for k in d["mentions"]}

    def edges(self) -> dict[tuple[str, str, str], set[str]]:
        live = self.mentioned()
        evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for d in self.docs.values():
            for s, t, kind, ev in d["relations"]:
                if s != t and s in live and t in live:
                    evidence[(s, t, kind)].update(ev)
        return evidence

    def neighbours(self, key: str) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for (s, t, kind), ev in self.edges().items():
            for here, other in ((s, t), (t, s)):
                if here == key:
                    out[(other, kind)] = max(out.get((other, kind), 0.0), float(len(ev)))
        return out

    def counts(self) -> TenantCounts:
        return TenantCounts(
            documents=len(self.docs), slides=4 * len(self.docs), segments=len(self.docs),
            concepts=len(self.mentioned()), relations=len(self.edges()),
        )


@settings(
    max_examples=40,
    deadline=None,
    # One store serves every example on purpose: examples isolate by fresh tenant names.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
async def test_no_data_crosses_tenants(graph_store: GraphStore, ops: list[tuple[int, str, dict]]) -> None:
    tenants = [new_tenant("p"), new_tenant("q")]
    models = [TenantModel(), TenantModel()]
    for which, op, doc in ops:
        tenant = tenants[which]
        models[which].apply(op, doc)
        if op == "write":
            # Names carry the tenant, so a name reached from the wrong tenant is visible.
            names = {k: f"{tenant}:{k}" for k in doc["mentions"]}
            await graph_store.write_document(deck(
                tenant, doc["doc_id"], slides=4, mentions=doc["mentions"], relations=doc["relations"], names=names,
            ))
        else:
            await graph_store.delete_document(tenant, doc["doc_id"])

    every_slide = [(d, n) for d in ("d0", "d1", "d2") for n in range(1, 5)]
    stats = await graph_store.stats()
    for tenant, model in zip(tenants, models, strict=True):
        assert (await graph_store.stats(tenant)) == {tenant: model.counts()}
        assert stats.get(tenant, TenantCounts()) == model.counts()
        for names in (await graph_store.concepts_for_slides(tenant, every_slide)).values():
            assert all(name.startswith(f"{tenant}:") for name in names)
        related = await graph_store.related_concepts(tenant, KEYS, limit=100)
        for key in KEYS:
            assert all(r.name.startswith(f"{tenant}:") for r in related[key])
            assert {(r.canonical_key, r.kind): r.weight for r in related[key]} == model.neighbours(key)
        for doc_id in ("d0", "d1", "d2"):
            assert (await graph_store.get_document(tenant, doc_id) is not None) == (doc_id in model.docs)


# -- SQLite specifics ---------------------------------------------------------------------


async def test_sqlite_reopens_with_its_data(tmp_path: Path, anyio_backend: str) -> None:
    tenant = new_tenant()
    store = SqliteGraphStore(tmp_path / "nested" / "graph.sqlite")  # parents are created
    await store.write_document(deck(tenant, "doc-1", mentions=BASIC, relations=BASIC_RELATIONS))
    await store.close()
    store = SqliteGraphStore(tmp_path / "nested" / "graph.sqlite")  # schema creation is idempotent
    try:
        assert (await counts(store, tenant)).concepts == 3
    finally:
        await store.close()


def test_sqlite_rejects_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite"
    path.write_bytes(b"certainly not sqlite" * 100)
    with pytest.raises(ConfigurationError, match="not a readable osmose graph store"):
        SqliteGraphStore(path)
