"""The GraphStore contract, run against every implementation.

Add an implementation to IMPLEMENTATIONS. Tests isolate themselves by random
tenant names, never by a fresh database, so a server implementation (Neo4j)
shares one database: its factory connects to that server and ignores the
temporary folder. Neo4j is at OSMOSE_TEST_GRAPH_URI (default
bolt://127.0.0.1:7687, `make neo4j-up`), password OSMOSE_GRAPH_PASSWORD
(default osmose-dev-password); without a server its tests skip, or fail in CI.

Beyond each implementation passing the same tests, `test_stores_agree` writes
the same random documents to both and compares their whole graphs.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osmose import ids
from osmose.errors import BackendUnavailableError, ConfigurationError
from osmose.stores.graph import (
    ConceptMention,
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    GraphStore,
    MentionRow,
    MergeRow,
    RelatedConcept,
    RelationRow,
    SegmentRow,
    SlideMention,
    SlideRow,
    TenantCounts,
)
from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.stores.sqlite_graph import SqliteGraphStore
from osmose.text.names import canonical_key
from tests.contract.graph_dumps import dump, purge

pytestmark = pytest.mark.anyio


def graph_uri() -> str:
    return os.environ.get("OSMOSE_TEST_GRAPH_URI") or "bolt://127.0.0.1:7687"


def neo4j_store(_: Path, **options: object) -> Neo4jGraphStore:
    return Neo4jGraphStore(
        graph_uri(),
        user=os.environ.get("OSMOSE_GRAPH_USER") or "neo4j",
        password=os.environ.get("OSMOSE_GRAPH_PASSWORD") or "osmose-dev-password",
        **options,  # type: ignore[arg-type]
    )


IMPLEMENTATIONS: dict[str, Callable[[Path], GraphStore]] = {
    "sqlite": lambda folder: SqliteGraphStore(folder / "graph" / "graph.sqlite"),
    "neo4j": neo4j_store,
}

_server_problem: dict[str, str] = {}  # uri -> why it cannot be used (checked once per session)


async def require_server(store: GraphStore) -> None:
    """Skip (fail in CI) when the store's server does not answer."""
    if not isinstance(store, Neo4jGraphStore):
        return
    uri = graph_uri()
    if uri not in _server_problem:
        probe = neo4j_store(Path("."), max_retry_time_s=0)  # no retries: answer at once
        try:
            await probe.stats(new_tenant("probe"))
            _server_problem[uri] = ""
        except (BackendUnavailableError, ConfigurationError) as exc:
            _server_problem[uri] = str(exc)
        finally:
            await probe.close()
    if _server_problem[uri]:
        await store.close()
        message = f"no usable Neo4j at {uri}: {_server_problem[uri]}"
        if "make neo4j-up" not in message:
            message += " (`make neo4j-up` starts a local server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs the Neo4j contract tests")
        pytest.skip(message)


async def opened(name: str, folder: Path) -> AsyncIterator[GraphStore]:
    store = IMPLEMENTATIONS[name](folder)
    await require_server(store)
    first = len(_TENANTS)
    try:
        yield store
    finally:
        await purge(store, _TENANTS[first:])
        await store.close()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def graph_store(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[GraphStore]:
    async for store in opened(request.param, tmp_path):
        yield store


@pytest.fixture
async def sqlite_store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[GraphStore]:
    async for store in opened("sqlite", tmp_path):
        yield store


@pytest.fixture
async def neo4j_graph(tmp_path: Path, anyio_backend: str) -> AsyncIterator[GraphStore]:
    async for store in opened("neo4j", tmp_path):
        yield store


@pytest.fixture
async def both_stores(tmp_path: Path, anyio_backend: str) -> AsyncIterator[tuple[GraphStore, GraphStore]]:
    # Tiny batches: every write crosses chunk boundaries.
    sqlite, neo4j = IMPLEMENTATIONS["sqlite"](tmp_path), neo4j_store(tmp_path, batch_size=3)
    first = len(_TENANTS)
    try:
        await require_server(neo4j)
        yield sqlite, neo4j
    finally:
        await purge(neo4j, _TENANTS[first:])
        await sqlite.close()
        await neo4j.close()


_TENANTS: list[str] = []  # every tenant a test made, so the shared server can be cleaned up


def new_tenant(label: str = "t") -> str:
    tenant = f"{label}-{uuid.uuid4().hex[:12]}"
    _TENANTS.append(tenant)
    return tenant


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
    types: dict[str, str] | None = None,
    merges: list[MergeRow] | None = None,
    title: str = "A deck",
) -> DocumentGraph:
    """A document whose concepts are exactly the keys it mentions."""
    mentions = mentions or {}
    names = names or {}
    aliases = aliases or {}
    types = types or {}
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
            ConceptRow(key, names.get(key, key.capitalize()), types.get(key, "ENTITY"), aliases.get(key, ()))
            for key in mentions
        ],
        mentions=[MentionRow(key, slide, count) for key, per_slide in mentions.items() for slide, count in per_slide.items()],
        relations=[RelationRow(s, t, kind, tuple(evidence)) for s, t, kind, evidence in relations],
        merges=merges if merges is not None else [MergeRow(f"{key}-variant", key, "lexical", 0.97)
                                                   for key in list(mentions)[:1]],
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
        tenant, "doc-2", slides=4, mentions={"kubernetes": {4: 2}, "docker": {2: 1}, "helm": {4: 1}},
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


async def test_a_document_speaks_only_about_itself(graph_store: GraphStore) -> None:
    """Mentions of slides it does not have, descriptions of concepts it does not mention
    and relations to them are dropped, even when another document mentions the concept."""
    tenant = new_tenant()
    await graph_store.write_document(deck(tenant, "doc-1", mentions={"b": {1: 1}}, names={"b": "Bee"}))
    graph = deck(tenant, "doc-2", mentions={"a": {1: 1, 9: 4}}, relations=[("a", "b", "CO_OCCURS", ["e1"])])
    graph.concepts.append(ConceptRow("b", "Not bee", "TOOL", ("bzz",)))
    await graph_store.write_document(graph)

    assert await counts(graph_store, tenant) == TenantCounts(documents=2, slides=6, segments=2, concepts=2, relations=0)
    assert await graph_store.get_concept(tenant, "b") == ConceptRow("b", "Bee", "ENTITY", ())
    assert await graph_store.mentions_on_slides(tenant, [("doc-2", 1), ("doc-2", 9)]) == {
        ("doc-2", 1): [ConceptMention("a", "A", 1)], ("doc-2", 9): [],
    }


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
        evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for d in self.docs.values():
            for s, t, kind, ev in d["relations"]:
                if s != t and s in d["mentions"] and t in d["mentions"]:  # a document relates what it mentions
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


    def slides_of(self, key: str) -> dict[tuple[str, int], int]:
        return {(doc_id, slide): count for doc_id, d in self.docs.items()
                for slide, count in d["mentions"].get(key, {}).items()}


def tenant_property(max_examples: int) -> Callable:
    return settings(
        max_examples=max_examples,
        deadline=None,
        # One store serves every example on purpose: examples isolate by fresh tenant names.
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


# The same property; fewer examples against the server (each costs ~0.5 s there).
@tenant_property(max_examples=30)
@given(ops=operations)
async def test_no_data_crosses_tenants_sqlite(sqlite_store: GraphStore, ops: list[tuple[int, str, dict]]) -> None:
    await check_no_data_crosses_tenants(sqlite_store, ops)


@tenant_property(max_examples=10)
@given(ops=operations)
async def test_no_data_crosses_tenants_neo4j(neo4j_graph: GraphStore, ops: list[tuple[int, str, dict]]) -> None:
    await check_no_data_crosses_tenants(neo4j_graph, ops)


async def check_no_data_crosses_tenants(graph_store: GraphStore, ops: list[tuple[int, str, dict]]) -> None:
    """Random documents for two tenants (same doc ids, same concept keys): every read of
    one tenant returns exactly its own data, and nothing carrying the other's name."""
    tenants = [new_tenant("p"), new_tenant("q")]
    models = [TenantModel(), TenantModel()]
    for which, op, doc in ops:
        tenant = tenants[which]
        models[which].apply(op, doc)
        if op == "write":
            # Names carry the tenant, so a name reached from the wrong tenant is visible.
            names = {k: f"{tenant}:{k}" for k in doc["mentions"]}
            aliases = {k: (f"{tenant}:alias",) for k in doc["mentions"]}
            await graph_store.write_document(deck(
                tenant, doc["doc_id"], slides=4, mentions=doc["mentions"], relations=doc["relations"], names=names,
                aliases=aliases, title=f"{tenant}:deck",
            ))
        else:
            await graph_store.delete_document(tenant, doc["doc_id"])

    every_slide = [(d, n) for d in ("d0", "d1", "d2") for n in range(1, 5)]
    stats = await graph_store.stats()
    for tenant, model in zip(tenants, models, strict=True):
        mine = f"{tenant}:"
        assert (await graph_store.stats(tenant)) == {tenant: model.counts()}
        assert stats.get(tenant, TenantCounts()) == model.counts()
        for names in (await graph_store.concepts_for_slides(tenant, every_slide)).values():
            assert all(name.startswith(mine) for name in names)
        for mentions in (await graph_store.mentions_on_slides(tenant, every_slide)).values():
            assert all(m.name.startswith(mine) for m in mentions)
        related = await graph_store.related_concepts(tenant, KEYS, limit=100)
        slides = await graph_store.slides_mentioning(tenant, KEYS, limit=100)
        found = await graph_store.find_concepts(tenant, [*KEYS, canonical_key(f"{tenant}:alias")])
        for key in KEYS:
            assert all(r.name.startswith(mine) for r in related[key])
            assert {(r.canonical_key, r.kind): r.weight for r in related[key]} == model.neighbours(key)
            assert {(s.doc_id, s.number): s.count for s in slides[key]} == model.slides_of(key)
            concept = await graph_store.get_concept(tenant, key)
            assert (concept is not None) == (key in model.mentioned())
            assert concept is None or (concept.name.startswith(mine) and concept.aliases == (f"{mine}alias",))
            assert [c.canonical_key for c in found[key]] == ([key] if key in model.mentioned() else [])
        assert [c.canonical_key for c in found[canonical_key(f"{tenant}:alias")]] == sorted(model.mentioned())
        for doc_id in ("d0", "d1", "d2"):
            document = await graph_store.get_document(tenant, doc_id)
            assert (document is not None) == (doc_id in model.docs)
            assert document is None or document.title == f"{mine}deck"


# -- both stores hold the same graph -------------------------------------------------------

NAMES = ["Zero Trust", "zero-trust", "ZTNA", "Ztna", "Été", "e-mail", "Email"]
rich_document = st.fixed_dictionaries({
    "doc_id": st.sampled_from(["d0", "d1", "d2"]),
    "mentions": st.dictionaries(
        st.sampled_from(KEYS), st.dictionaries(st.integers(1, 4), st.integers(1, 3), min_size=1, max_size=3), max_size=5
    ),
    "names": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(NAMES), max_size=6),
    "aliases": st.dictionaries(st.sampled_from(KEYS), st.lists(st.sampled_from(NAMES), max_size=2).map(tuple), max_size=6),
    "types": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["ENTITY", "TOOL", "STANDARD"]), max_size=6),
    "relations": st.lists(
        st.tuples(st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(["CO_OCCURS", "SIMILAR", "TYPED"]),
                  st.lists(st.sampled_from(["e0", "e1", "e2", "e3"]), min_size=1, max_size=3)),
        max_size=8,
    ),
    "merges": st.lists(st.tuples(st.sampled_from(["x", "y"]), st.sampled_from(KEYS), st.sampled_from(["acronym", "tenant:alias"]),
                                 st.floats(0.5, 1.0)), max_size=2),
    "slides": st.integers(2, 4),
})


def rich_deck(tenant: str, doc: dict) -> DocumentGraph:
    return deck(
        tenant, doc["doc_id"], slides=doc["slides"], mentions=doc["mentions"], relations=doc["relations"],
        names=doc["names"], aliases=doc["aliases"], types=doc["types"],
        merges=[MergeRow(f, i, r, s) for f, i, r, s in doc["merges"]],
    )


@tenant_property(max_examples=10)
@given(ops=st.lists(st.tuples(st.sampled_from(["write", "write", "write", "delete"]), rich_document), min_size=1, max_size=6))
async def test_stores_agree(both_stores: tuple[GraphStore, GraphStore], ops: list[tuple[str, dict]]) -> None:
    """The same writes and deletes give the same graph in SQLite and Neo4j (nodes, edges,
    weights, evidence, provenance, merges, lookup keys), and replaying them changes nothing."""
    sqlite, neo4j = both_stores
    tenant = new_tenant("agree")
    live: dict[str, DocumentGraph] = {}
    for op, doc in ops:
        for store in both_stores:
            if op == "write":
                await store.write_document(rich_deck(tenant, doc))
            else:
                await store.delete_document(tenant, doc["doc_id"])
        if op == "write":
            live[doc["doc_id"]] = rich_deck(tenant, doc)
        else:
            live.pop(doc["doc_id"], None)
    expected = await dump(sqlite, tenant)
    assert await dump(neo4j, tenant) == expected
    assert await sqlite.stats(tenant) == await neo4j.stats(tenant)

    for graph in live.values():  # replay: at-least-once delivery
        await sqlite.write_document(graph)
        await neo4j.write_document(graph)
    assert await dump(sqlite, tenant) == expected
    assert await dump(neo4j, tenant) == expected


async def test_stores_agree_on_a_larger_document(both_stores: tuple[GraphStore, GraphStore]) -> None:
    """Hundreds of rows per label, written in chunks of 3 on Neo4j, then half of them replaced."""
    sqlite, neo4j = both_stores
    tenant = new_tenant("large")
    keys = [f"c{i}" for i in range(60)]
    first = deck(tenant, "doc-1", slides=20,
                 mentions={k: {1 + i % 20: 1 + i % 3, 1 + (i * 7) % 20: 2} for i, k in enumerate(keys)},
                 relations=[(a, b, "CO_OCCURS", [f"s{(i + j) % 5}"]) for i, a in enumerate(keys) for j, b in
                            enumerate(keys[i + 1 : i + 4])])
    second = deck(tenant, "doc-1", slides=12,
                  mentions={k: {1 + i % 12: 1} for i, k in enumerate(keys[30:])},
                  relations=[(a, b, "SIMILAR", ["sim:0.80"]) for a, b in zip(keys[30:], keys[31:], strict=False)])
    other = deck(tenant, "doc-2", mentions={k: {1: 1} for k in keys[:40:2]},
                 relations=[(a, b, "CO_OCCURS", ["s1"]) for a, b in zip(keys[:40:2], keys[2:40:2], strict=False)])
    for graph in (first, other, second):
        await sqlite.write_document(graph)
        await neo4j.write_document(graph)
        assert await dump(neo4j, tenant) == await dump(sqlite, tenant)


# -- reads for cross-document resolution and search ------------------------------------------


async def test_find_concepts(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(
        tenant, "doc-1", mentions={"key performance indicator": {1: 1}, "e mail": {2: 1}, "ca": {3: 1}},
        names={"key performance indicator": "Key Performance Indicator", "e mail": "E-mail", "ca": "CA"},
        aliases={"key performance indicator": ("KPI", "K.P.I."), "ca": ("Certificate Authority",)},
    ))
    await graph_store.write_document(deck(
        tenant, "doc-2", mentions={"california": {1: 1}}, names={"california": "California"}, aliases={"california": ("CA",)},
    ))
    kpi = ConceptRow("key performance indicator", "Key Performance Indicator", "ENTITY", ("K.P.I.", "KPI"))
    found = await graph_store.find_concepts(tenant, ["kpi", "email", "key performance indicator", "ca", "nothing", "kpi"])
    assert found["kpi"] == [kpi]  # by an alias (also "k p i" for "K.P.I.")
    assert [c.canonical_key for c in found["email"]] == ["e mail"]  # canonical key without spaces
    assert found["key performance indicator"] == [kpi]  # by canonical key
    assert [c.canonical_key for c in found["ca"]] == ["ca", "california"]  # ambiguous: both, by key
    assert found["nothing"] == []
    assert (await graph_store.find_concepts(new_tenant(), ["kpi"]))["kpi"] == []

    await graph_store.delete_document(tenant, "doc-2")
    assert [c.canonical_key for c in (await graph_store.find_concepts(tenant, ["ca"]))["ca"]] == ["ca"]


async def test_mentions_and_slides_for_search(graph_store: GraphStore) -> None:
    tenant = new_tenant()
    await graph_store.write_document(deck(tenant, "doc-a", mentions={"x": {1: 2, 2: 5}, "y": {1: 2}}))
    await graph_store.write_document(deck(tenant, "doc-b", slides=4, mentions={"x": {3: 5, 4: 1}}))
    assert (await graph_store.mentions_on_slides(tenant, [("doc-a", 1)]))[("doc-a", 1)] == [
        ConceptMention("x", "X", 2), ConceptMention("y", "Y", 2),
    ]
    slides = await graph_store.slides_mentioning(tenant, ["x", "y", "z"], limit=3)
    assert slides["x"] == [  # most mentions, then doc_id, then number
        SlideMention("doc-a", "doc-a.pptx", 2, "Slide 2", 5),
        SlideMention("doc-b", "doc-b.pptx", 3, "Slide 3", 5),
        SlideMention("doc-a", "doc-a.pptx", 1, "Slide 1", 2),
    ]
    assert slides["y"] == [SlideMention("doc-a", "doc-a.pptx", 1, "Slide 1", 2)]
    assert slides["z"] == []
    assert (await graph_store.slides_mentioning(tenant, ["x"], limit=0))["x"] == []


# -- Neo4j specifics ----------------------------------------------------------------------


async def test_neo4j_errors_are_mapped(anyio_backend: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs a password"):
        Neo4jGraphStore("bolt://127.0.0.1:7687", password=None)
    with pytest.raises(ConfigurationError, match="invalid graph URI"):
        Neo4jGraphStore("http://127.0.0.1:7687", password="x")
    closed_port = Neo4jGraphStore("bolt://127.0.0.1:1", password="x", max_retry_time_s=0.2)
    try:
        with pytest.raises(BackendUnavailableError, match="unreachable"):
            await closed_port.stats("t")
    finally:
        await closed_port.close()

    probe = neo4j_store(tmp_path)
    await require_server(probe)
    await probe.close()
    # Another user than neo4j: failed logins lock the user out for a few seconds.
    stranger = Neo4jGraphStore(graph_uri(), user="osmose-nobody", password="wrong", max_retry_time_s=0.2)
    try:
        with pytest.raises(ConfigurationError, match="refused the credentials"):
            await stranger.get_document("t", "d")
    finally:
        await stranger.close()


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


async def test_sqlite_fills_the_lookup_table_of_a_version_1_file(tmp_path: Path, anyio_backend: str) -> None:
    tenant = new_tenant()
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    await store.write_document(deck(tenant, "doc-1", mentions={"e mail": {1: 1}}, aliases={"e mail": ("Mail",)}))
    await store._call(lambda: store._conn.executescript("DROP TABLE concept_lookup; PRAGMA user_version = 1;"))
    await store.close()
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    try:
        found = await store.find_concepts(tenant, ["email", "mail"])
        assert [c.canonical_key for c in found["email"]] == ["e mail"] == [c.canonical_key for c in found["mail"]]
    finally:
        await store.close()


async def test_sqlite_recomputes_the_lookup_keys_of_a_version_2_file(tmp_path: Path, anyio_backend: str) -> None:
    tenant = new_tenant()
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    await store.write_document(deck(tenant, "doc-1", mentions={"kpi": {1: 1}}, aliases={"kpi": ("KPIs",)}))
    await store._call(lambda: store._conn.executescript(
        "UPDATE concept_lookup SET lookup_key = 'kpis' WHERE lookup_key = 'kpi'; PRAGMA user_version = 2;"))
    await store.close()
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    try:
        found = await store.find_concepts(tenant, ["kpi", "kpis"])
        assert [c.canonical_key for c in found["kpi"]] == ["kpi"] and not found.get("kpis")
    finally:
        await store.close()


async def test_mentions_ranked_by_salience_of_their_document(graph_store: GraphStore) -> None:
    """The salience a document gives a concept ranks it on that document's slides, before mention counts."""
    tenant = new_tenant()
    one = deck(tenant, "doc-1", mentions={"register": {1: 1}, "boolean": {1: 4}, "misc": {1: 2}})
    salient = {"register": 9.0, "boolean": 1.5, "misc": 1.5}
    one = DocumentGraph(**{**one.__dict__, "concepts": [
        ConceptRow(c.canonical_key, c.name, c.type, c.aliases, salient[c.canonical_key]) for c in one.concepts]})
    # Another document gives the same concept another salience: each slide uses its own document's.
    two = deck(tenant, "doc-2", mentions={"register": {1: 1}, "boolean": {1: 1}})
    two = DocumentGraph(**{**two.__dict__, "concepts": [
        ConceptRow(c.canonical_key, c.name, c.type, c.aliases, {"register": 0.5, "boolean": 2.0}[c.canonical_key])
        for c in two.concepts]})
    await graph_store.write_document(one)
    await graph_store.write_document(two)
    found = await graph_store.mentions_on_slides(tenant, [("doc-1", 1), ("doc-2", 1)])
    assert [(m.name, m.salience) for m in found[("doc-1", 1)]] == [("Register", 9.0), ("Boolean", 1.5), ("Misc", 1.5)]
    assert [m.name for m in found[("doc-2", 1)]] == ["Boolean", "Register"]
    assert (await graph_store.concepts_for_slides(tenant, [("doc-1", 1)]))[("doc-1", 1)] == ["Register", "Boolean", "Misc"]
