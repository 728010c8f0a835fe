"""`make eval`: the graph the pipeline builds for the gold documents, scored against the gold set.

Each gold file (eval/gold/*.yaml, see eval/GUIDELINE.md) names a corpus document; the documents
are ingested at the DEEP tier by the in-process host into a temporary data directory (embedded
graph and vector stores; the model backends are whatever the environment configures, so with
OSMOSE_LLM_URL set the LLM path is measured unchanged), then each document's concepts, their
ranking and its relations are read back from the graph and compared with the gold.

Usage: python eval/evaluate.py [--corpus DIR] [--only NAME,...] [--json FILE] [--check FILE] [--show N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus"
if not DEFAULT_CORPUS.is_dir():  # a worktree one level deeper (/work/wt/<name>)
    DEFAULT_CORPUS = HERE.parent.parent.parent / "shared" / "corpus"
TENANT = "eval"
# A multi-word name matches a longer one containing it when it covers at least this share of its words.
CONTAINMENT_MIN_COVER = 0.6
# Figures compared by --check, and how much lower than the recorded value they may be.
CHECKED = ("recall_all", "recall_core", "precision_at_n", "type_agreement", "relation_recall", "relation_precision")
LOWER_IS_BETTER = ("junk_at_n", "density")
TOLERANCE = 0.02
# Names that are never concepts whatever the document: shape placeholders and alt-text boilerplate.
_PLACEHOLDER = re.compile(
    r"^(picture|image|grafik|bild|imagen|graphique|chart|diagram|table|tabelle|rectangle|oval|text ?box|"
    r"textfeld|content placeholder|inhaltsplatzhalter|espace réservé|group|gruppieren|objekt|object|"
    r"slide number|foliennummer|title|titel|titre)\s*\d+$|^(ein bild, das|an image of|a picture containing|"
    r"une image contenant|imagen que contiene)\b",
    re.IGNORECASE,
)


# -- names and matching ----------------------------------------------------------------------------

def _fold_word(word: str) -> str:
    """A lenient, language-agnostic singular: enough for matching, never used as an identity."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("en", "es", "s", "n", "e", "x"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def name_key(name: str) -> tuple[str, ...]:
    """Case-, accent-, punctuation- and plural-insensitive words of a name."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("'s ", " ").replace("’", "'")
    text = re.sub(r"[\-\u2010-\u2015_/,;:()\[\]\"'«»„“”!?]+", " ", text)
    words = [w.strip(".") if w not in {".net"} else w for w in text.split()]
    return tuple(_fold_word(w) for w in words if w and w != "&" and w != "and" and w != "und" and w != "et")


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i:i + n] == shorter for i in range(len(longer) - n + 1))


def keys_match(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a or not b:
        return False
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) < 2:
        return False  # single words never match by containment
    return len(shorter) / len(longer) >= CONTAINMENT_MIN_COVER and _contains(longer, shorter)


def names_match(names_a: list[tuple[str, ...]], names_b: list[tuple[str, ...]]) -> bool:
    return any(keys_match(a, b) for a in names_a for b in names_b)


# -- gold and graph -----------------------------------------------------------------------------

@dataclass
class GoldConcept:
    name: str
    types: set[str]
    importance: str
    keys: list[tuple[str, ...]]


@dataclass
class Gold:
    name: str
    document: str
    language: str
    concepts: list[GoldConcept]
    relations: list[tuple[str, str, str, int]]
    generic: list[tuple[str, ...]]


@dataclass
class GraphConcept:
    key: str
    name: str
    type: str
    aliases: list[str]
    salience: float
    mentions: int

    @property
    def keys(self) -> list[tuple[str, ...]]:
        return [name_key(n) for n in [self.name, *self.aliases]]


@dataclass
class DocumentGraph:
    concepts: list[GraphConcept]          # in the graph's ranking order
    pairs: set[frozenset[str]]            # concept-key pairs joined by any relation
    ranked_by: str
    warnings: list[str] = field(default_factory=list)


def load_gold(path: Path) -> Gold:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    concepts = []
    for c in raw["concepts"]:
        names = [str(c["name"]), *[str(a) for a in c.get("aliases") or []]]
        concepts.append(GoldConcept(str(c["name"]), set(str(c["type"]).split("|")), str(c["importance"]),
                                    [name_key(n) for n in names]))
    known = {c.name for c in concepts}
    relations = []
    for r in raw.get("relations") or []:
        if r["source"] not in known or r["target"] not in known:
            raise ValueError(f"{path.name}: relation end not a gold concept: {r}")
        relations.append((str(r["source"]), str(r["target"]), str(r.get("label", "")), int(r["slide"])))
    generic = [name_key(str(g)) for g in raw.get("generic") or []]
    return Gold(path.stem, str(raw["document"]), str(raw.get("language", "")), concepts, relations, generic)


def read_graph(db: Path, doc_id: str) -> DocumentGraph:
    conn = sqlite3.connect(db)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(concept_sources)")}
        has_salience = "salience" in columns
        sal = "s.salience" if has_salience else "0.0"
        rows = conn.execute(
            f"SELECT s.canonical_key, s.name, s.type, s.aliases, {sal}, "
            "  (SELECT COALESCE(SUM(m.count), 0) FROM mentions m WHERE m.tenant = s.tenant AND m.doc_id = s.doc_id"
            "   AND m.concept_key = s.canonical_key) "
            "FROM concept_sources s WHERE s.tenant = ? AND s.doc_id = ?",
            (TENANT, doc_id),
        ).fetchall()
        concepts = [GraphConcept(k, n, t, json.loads(a), float(s), int(m)) for k, n, t, a, s, m in rows]
        if has_salience:
            concepts.sort(key=lambda c: (-c.salience, -c.mentions, c.name))
        else:  # before salience was stored: what the graph exposed was the mention count
            concepts.sort(key=lambda c: (-c.mentions, c.name))
        pairs = {
            frozenset((a, b))
            for a, b in conn.execute(
                "SELECT DISTINCT source_key, target_key FROM relation_evidence WHERE tenant = ? AND doc_id = ?",
                (TENANT, doc_id),
            )
            if a != b
        }
    finally:
        conn.close()
    return DocumentGraph(concepts, pairs, "salience" if has_salience else "mentions")


# -- scoring ------------------------------------------------------------------------------------

@dataclass
class Score:
    counts: dict[str, list[int]] = field(default_factory=dict)   # figure -> [hits, total]
    top: list[tuple[str, str]] = field(default_factory=list)      # (graph name, verdict) of the top N

    def add(self, figure: str, hits: int, total: int) -> None:
        got = self.counts.setdefault(figure, [0, 0])
        got[0] += hits
        got[1] += total

    def value(self, figure: str) -> float | None:
        hits, total = self.counts.get(figure, [0, 0])
        return round(hits / total, 3) if total else None

    def figures(self) -> dict[str, float | None]:
        return {f: self.value(f) for f in (*CHECKED, *LOWER_IS_BETTER)}


def _is_junk(concept: GraphConcept, gold: Gold) -> bool:
    if _PLACEHOLDER.search(concept.name.strip()):
        return True
    return any(k == g for k in concept.keys for g in gold.generic)


def score_document(gold: Gold, graph: DocumentGraph) -> Score:
    score = Score()
    # Each gold concept -> the graph concepts that match it.
    matches: dict[str, list[GraphConcept]] = {
        g.name: [c for c in graph.concepts if names_match(g.keys, c.keys)] for g in gold.concepts
    }
    found = [g for g in gold.concepts if matches[g.name]]
    core = [g for g in gold.concepts if g.importance == "core"]
    score.add("recall_all", len(found), len(gold.concepts))
    score.add("recall_core", sum(1 for g in core if matches[g.name]), len(core))
    n = sum(1 for g in gold.concepts if g.importance in {"core", "important"})
    top = graph.concepts[:n]
    gold_keys = [k for g in gold.concepts for k in g.keys]
    good = 0
    junk = 0
    for c in top:
        if names_match(gold_keys, c.keys):
            good += 1
            score.top.append((c.name, "ok"))
        elif _is_junk(c, gold):
            junk += 1
            score.top.append((c.name, "JUNK"))
        else:
            score.top.append((c.name, "-"))
    score.add("precision_at_n", good, n)
    score.add("junk_at_n", junk, n)
    score.add("type_agreement", sum(1 for g in found if any(c.type in g.types for c in matches[g.name])), len(found))
    # Relations, without direction or label: a gold relation is found when some graph relation joins
    # a concept matching its source with one matching its target.
    gold_pairs = []
    for source, target, _label, _slide in gold.relations:
        gold_pairs.append(({c.key for c in matches[source]}, {c.key for c in matches[target]}))

    def is_gold_pair(pair: frozenset[str]) -> bool:
        a, b = tuple(pair)
        return any((a in s and b in t) or (b in s and a in t) for s, t in gold_pairs)

    score.add("relation_recall", sum(1 for s, t in gold_pairs if any(frozenset((a, b)) in graph.pairs
                                                                     for a in s for b in t if a != b)),
              len(gold_pairs))
    gold_of: dict[str, set[str]] = {}
    for g in gold.concepts:
        for c in matches[g.name]:
            gold_of.setdefault(c.key, set()).add(g.name)

    def judged_pair(pair: frozenset[str]) -> bool:
        # Both ends gold concepts, and not two spellings of one ("App Center" / "App Center test").
        a, b = tuple(pair)
        return a in gold_of and b in gold_of and not (gold_of[a] == gold_of[b] and len(gold_of[a]) == 1)

    judged = [p for p in graph.pairs if judged_pair(p)]
    score.add("relation_precision", sum(1 for p in judged if is_gold_pair(p)), len(judged))
    k = len(graph.concepts)
    score.add("density", len(graph.pairs), k * (k - 1) // 2)
    return score


# -- running ------------------------------------------------------------------------------------

async def ingest(paths: list[Path], data_dir: Path) -> list[tuple[str | None, str]]:
    from osmose.config import Settings
    from osmose.hosts.inprocess import InProcessPipeline
    from osmose.v1 import document_pb2 as pb

    # The environment decides the model backends (OSMOSE_LLM_URL...); the stores are always the
    # embedded ones in a fresh directory, so the figures never depend on earlier runs.
    settings = Settings.from_env().with_overrides(data_dir=data_dir, tenant=TENANT)
    settings = settings.model_copy(update={"graph_uri": None, "qdrant_url": None})
    out = []
    async with InProcessPipeline(settings) as pipeline:
        async for report in pipeline.ingest(paths, tenant=TENANT, tier=pb.TIER_DEEP):
            out.append((report.doc_id, f"{report.status} {report.error or ''}".strip()))
    return out


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.2f}"


HEADERS = ("rec", "rec*", "P@N", "junk", "type", "r.rec", "r.prec", "dens")


def print_table(rows: list[tuple[str, Score]], total: Score, ranked_by: str) -> None:
    print(f"concepts ranked by: {ranked_by}   (rec* = recall of core concepts, N = core + important)")
    print(f"{'document':34} " + " ".join(f"{h:>6}" for h in HEADERS))
    for name, s in [*rows, ("OVERALL", total)]:
        f = s.figures()
        values = [f["recall_all"], f["recall_core"], f["precision_at_n"], f["junk_at_n"], f["type_agreement"],
                  f["relation_recall"], f["relation_precision"], f["density"]]
        print(f"{name[:34]:34} " + " ".join(f"{_fmt(v):>6}" for v in values))


def check(figures: dict[str, float | None], baseline: dict[str, float | None]) -> list[str]:
    failures = []
    for figure, recorded in baseline.items():
        got = figures.get(figure)
        if recorded is None or got is None:
            continue
        if figure in LOWER_IS_BETTER and got > recorded + TOLERANCE:
            failures.append(f"{figure}: {got} > recorded {recorded}")
        elif figure not in LOWER_IS_BETTER and got < recorded - TOLERANCE:
            failures.append(f"{figure}: {got} < recorded {recorded}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--gold", type=Path, default=HERE / "gold")
    parser.add_argument("--only", default="", help="comma-separated gold names (default: all)")
    parser.add_argument("--json", type=Path, help="write the figures (per document and overall) here")
    parser.add_argument("--check", type=Path, help="fail if the figures are below the ones recorded in this file")
    parser.add_argument("--data-dir", type=Path,
                        help="reuse this data directory (its embedding cache makes reruns fast); default: a fresh one")
    parser.add_argument("--show", type=int, default=0, help="print each document's top N with verdicts")
    args = parser.parse_args(argv)

    golds = [load_gold(p) for p in sorted(args.gold.glob("*.yaml"))]
    if args.only:
        wanted = set(args.only.split(","))
        golds = [g for g in golds if g.name in wanted]
    missing = [g.document for g in golds if not (args.corpus / g.document).is_file()]
    if missing:
        print(f"corpus files missing under {args.corpus}: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="osmose-eval-") as fresh:
        tmp = str(args.data_dir or fresh)
        reports = asyncio.run(ingest([args.corpus / g.document for g in golds], Path(tmp)))
        rows: list[tuple[str, Score]] = []
        total = Score()
        ranked_by = ""
        for gold, (doc_id, status) in zip(golds, reports, strict=True):
            if doc_id is None:
                print(f"{gold.name}: not ingested ({status})", file=sys.stderr)
                return 2
            graph = read_graph(Path(tmp) / "graph.sqlite", doc_id)
            ranked_by = graph.ranked_by
            s = score_document(gold, graph)
            rows.append((gold.name, s))
            for figure, (hits, n) in s.counts.items():
                total.add(figure, hits, n)
    if args.show:
        for name, s in rows:
            print(f"-- {name}: " + ", ".join(f"{n} [{v}]" for n, v in s.top[: args.show]))
    print_table(rows, total, ranked_by)
    result = {"overall": total.figures(), "documents": {name: s.figures() for name, s in rows}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.check:
        recorded = json.loads(args.check.read_text(encoding="utf-8"))
        failures = check(result["overall"], recorded["overall"])
        for name, figures in recorded.get("documents", {}).items():
            if name in result["documents"]:
                failures += [f"{name} {f}" for f in check(result["documents"][name], figures)]
        if failures:
            print("below the recorded figures:\n  " + "\n  ".join(failures), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
