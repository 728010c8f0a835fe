"""Neo4j write throughput: the store's batched writes vs one MERGE per row.

    python loadtests/bench_neo4j.py [--mentions 100000] [--relations 50000] [--sample 2000]

Needs a Neo4j server (`make neo4j-up`; OSMOSE_GRAPH_URI, default
bolt://127.0.0.1:7687, OSMOSE_GRAPH_PASSWORD, default osmose-dev-password).

1. **Batched**: one synthetic document with `--mentions` MENTIONED_IN rows and
   `--relations` RELATED_TO rows (plus its slides and concepts) written by
   :class:`Neo4jGraphStore` (UNWIND per chunk of 5,000 rows, one transaction),
   cold (new tenant), then replayed (same document again), then deleted. The
   mention and relation phases are timed from inside the transaction.
2. **Per row**: the same kinds of rows written one MERGE statement per row,
   each in its own transaction (the loop a first version writes), on a sample
   of `--sample` rows of each kind (the nodes exist already, as in the batched
   case); rows/s is measured on the sample and the full-size time extrapolated.

Prints the figures and the ratio; everything it wrote is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

from neo4j import AsyncManagedTransaction

from osmose import ids
from osmose.stores import neo4j_graph
from osmose.stores.graph import (
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    MentionRow,
    RelationRow,
    SegmentRow,
    SlideRow,
)
from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.stores.neo4j_queries import CONCEPTS, MENTIONS, RELATIONS

PER_ROW_MENTION = """
MATCH (c:Concept {tenant: $t, canonical_key: $key})
MATCH (s:Slide {tenant: $t, doc_id: $d, number: $number})
MERGE (c)-[m:MENTIONED_IN {tenant: $t}]->(s)
SET m.count = $count
"""

PER_ROW_RELATION = """
MATCH (a:Concept {tenant: $t, canonical_key: $s})
MATCH (b:Concept {tenant: $t, canonical_key: $target})
MERGE (a)-[r:RELATED_TO {tenant: $t, kind: $kind}]->(b)
SET r.evidence = $evidence, r.weight = size($evidence)
"""


def synthetic_document(tenant: str, mentions: int, relations: int, slides: int, per_slide: int) -> DocumentGraph:
    """`slides` slides, `per_slide` concepts mentioned on each (drawn from mentions/per_slide*...),
    `relations` distinct concept pairs with 1-3 segment ids as evidence."""
    rng = random.Random(42)
    doc_id = uuid.uuid4().hex[:32]
    n_concepts = max(per_slide * 10, mentions // 10)
    keys = [f"concept {i:06d}" for i in range(n_concepts)]
    segments = [ids.segment_id(doc_id, i) for i in range(max(1, slides // 20))]
    mention_rows = []
    for number in range(1, slides + 1):
        for key in rng.sample(keys, per_slide):
            mention_rows.append(MentionRow(key, number, rng.randint(1, 4)))
    mention_rows = mention_rows[:mentions]
    mentioned = sorted({m.canonical_key for m in mention_rows})
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < relations:
        a, b = rng.sample(mentioned, 2)
        pairs.add((min(a, b), max(a, b)))
    return DocumentGraph(
        tenant=tenant,
        document=DocumentRow(doc_id, "bench.pptx", "Bench", "pptx", "en", "deep", slides, "0" * 64),
        slides=[SlideRow(ids.slide_id(doc_id, n), n, f"Slide {n}", segments[(n - 1) // 20 % len(segments)])
                for n in range(1, slides + 1)],
        segments=[SegmentRow(s, i, f"Part {i}", ()) for i, s in enumerate(segments)],
        concepts=[ConceptRow(k, k.title(), "ENTITY") for k in mentioned],
        mentions=mention_rows,
        relations=[RelationRow(a, b, "CO_OCCURS", tuple(rng.sample(segments, min(len(segments), rng.randint(1, 3)))))
                   for a, b in sorted(pairs)],
    )


class PhaseTimer:
    """Times the store's statements by kind (wraps its module-level `_run`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._original = neo4j_graph._run

    async def _run(self, tx: AsyncManagedTransaction, query: str, **params: Any) -> None:
        started = time.perf_counter()
        await self._original(tx, query, **params)
        name = {MENTIONS: "mentions", RELATIONS: "relations", CONCEPTS: "concepts"}.get(query, "other")
        self.seconds[name] += time.perf_counter() - started

    def __enter__(self) -> PhaseTimer:
        neo4j_graph._run = self._run
        return self

    def __exit__(self, *exc: object) -> None:
        neo4j_graph._run = self._original


async def per_row(store: Neo4jGraphStore, graph: DocumentGraph, sample: int) -> dict[str, float]:
    """Rows/s of one MERGE per row, one transaction per row, on `sample` rows of each kind."""
    # The nodes the rows connect: written in one batch, not timed; their edges dropped.
    await store.write_document(graph)
    t, d = graph.tenant, graph.document.doc_id
    await store._driver.execute_query(
        "MATCH (:Document {tenant: $t, doc_id: $d})-[:HAS_SLIDE]->(s:Slide)<-[m:MENTIONED_IN]-() DELETE m", t=t, d=d)
    await store._driver.execute_query(
        "MATCH (c:Concept {tenant: $t})-[r:RELATED_TO]->() DELETE r", t=t)
    rates = {}
    async with store._driver.session() as session:
        started = time.perf_counter()
        for m in graph.mentions[:sample]:
            await session.execute_write(_run_one, PER_ROW_MENTION, t=t, d=d, key=m.canonical_key,
                                        number=m.slide_number, count=m.count)
        rates["mentions"] = min(sample, len(graph.mentions)) / (time.perf_counter() - started)
        started = time.perf_counter()
        for r in graph.relations[:sample]:
            await session.execute_write(_run_one, PER_ROW_RELATION, t=t, s=r.source_key, target=r.target_key,
                                        kind=r.kind, evidence=list(r.evidence))
        rates["relations"] = min(sample, len(graph.relations)) / (time.perf_counter() - started)
    return rates


async def _run_one(tx: AsyncManagedTransaction, query: str, **params: Any) -> None:
    await (await tx.run(query, params)).consume()


async def purge(store: Neo4jGraphStore, tenants: list[str]) -> None:
    for label, key in (("Document", "doc_id"), ("Slide", "doc_id"), ("Segment", "doc_id"),
                       ("Concept", "canonical_key"), ("Alias", "key"), ("Merge", "doc_id")):
        while True:  # in slices: a 100k-edge DETACH DELETE in one go strains a small heap
            summary = (await store._driver.execute_query(
                f"MATCH (n:{label}) WHERE n.tenant IN $tenants AND n.{key} IS NOT NULL "
                "WITH n LIMIT 2000 DETACH DELETE n", tenants=tenants)).summary
            if summary.counters.nodes_deleted == 0:
                break


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--relations", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=2_000, help="rows of each kind written one by one")
    parser.add_argument("--slides", type=int, default=1_000)
    args = parser.parse_args()
    uri = os.environ.get("OSMOSE_GRAPH_URI") or "bolt://127.0.0.1:7687"
    store = Neo4jGraphStore(uri, user=os.environ.get("OSMOSE_GRAPH_USER") or "neo4j",
                            password=os.environ.get("OSMOSE_GRAPH_PASSWORD") or "osmose-dev-password")
    per_slide = max(1, -(-args.mentions // args.slides))
    batched_tenant, row_tenant = f"bench-{uuid.uuid4().hex[:8]}", f"bench-row-{uuid.uuid4().hex[:8]}"
    graph = synthetic_document(batched_tenant, args.mentions, args.relations, args.slides, per_slide)
    rows = len(graph.mentions) + len(graph.relations)
    print(f"Neo4j at {uri}; one document: {len(graph.slides):,} slides, {len(graph.concepts):,} concepts, "
          f"{len(graph.mentions):,} mentions, {len(graph.relations):,} relations")
    try:
        with PhaseTimer() as cold_phases:
            started = time.perf_counter()
            await store.write_document(graph)
            cold = time.perf_counter() - started
        with PhaseTimer() as replay_phases:
            started = time.perf_counter()
            await store.write_document(graph)
            replay = time.perf_counter() - started
        stats = (await store.stats(batched_tenant))[batched_tenant]
        assert stats.relations == len(graph.relations), stats
        started = time.perf_counter()
        await store.delete_document(batched_tenant, graph.document.doc_id)
        delete = time.perf_counter() - started

        row_graph = synthetic_document(row_tenant, args.mentions, args.relations, args.slides, per_slide)
        rates = await per_row(store, row_graph, args.sample)
    finally:
        await purge(store, [batched_tenant, row_tenant])
        await store.close()

    m, r = len(graph.mentions), len(graph.relations)
    print("\nbatched (Neo4jGraphStore.write_document: UNWIND, 5,000 rows per statement, one transaction)")
    print(f"  whole document, cold    {cold:7.2f} s   {rows / cold:9,.0f} rows/s (mentions + relations)")
    print(f"  whole document, replay  {replay:7.2f} s   {rows / replay:9,.0f} rows/s")
    print(f"  delete document         {delete:7.2f} s")
    for name, count in (("mentions", m), ("relations", r)):
        s = cold_phases.seconds[name]
        print(f"  {name:9} phase, cold   {s:7.2f} s   {count / s:9,.0f} rows/s   (replay {replay_phases.seconds[name]:.2f} s)")
    print(f"\none MERGE per row, one transaction per row (measured on {args.sample:,} rows of each kind, "
          "full size extrapolated)")
    for name, count in (("mentions", m), ("relations", r)):
        print(f"  {name:9} {rates[name]:9,.0f} rows/s   -> {count:,} rows in ~{count / rates[name]:,.0f} s")
    per_row_total = m / rates["mentions"] + r / rates["relations"]
    for name, count in (("mentions", m), ("relations", r)):
        ratio = (count / cold_phases.seconds[name]) / rates[name]
        print(f"\nratio, {name}: {ratio:,.0f}x (batched phase rows/s over per-row rows/s)", end="")
    print()
    print(f"ratio, whole document (every step of the batched write vs per-row mentions + relations only): "
          f"{per_row_total / cold:,.0f}x  ({cold:.1f} s vs ~{per_row_total:,.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
