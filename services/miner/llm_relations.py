"""Typed relations from a language model (DEEP): how a segment's concepts relate, and in which direction.

Logic only, no runtime. Per segment, its most salient concepts are listed with
local ids (``CONCEPT c3: Zero Trust Network Access``) next to the segment's text;
the model answers pairs of ids with a label from a closed set. Ids rather than
names make the mapping back to canonical keys exact. Several segments go in one
prompt, the static instructions first (prefix caching), and each segment's answer
is cached under its own content. A relation's evidence is the set of segments
that state it; its weight the number of them, so replays never double-count.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from osmose.models import ChatRequest, JsonSchema, parse_json_answer
from osmose.text.slide_text import slide_text
from osmose.v1 import document_pb2 as pb

__all__ = [
    "LABELS",
    "PROMPT_VERSION",
    "SCHEMA",
    "SYSTEM",
    "TASK",
    "SegmentQuestion",
    "build_request",
    "item_key",
    "pack",
    "questions",
    "read_answer",
    "relations_from_answers",
    "repair_request",
]

TASK = "relation_typing"
LABELS = ("IS_A", "PART_OF", "USES", "IMPLEMENTS", "DEPENDS_ON", "REGULATES", "PRODUCES", "CONTRASTS_WITH",
          "RELATED_TO")
# Concepts of one segment shown to the model (the most salient; pairs grow quadratically).
MAX_CONCEPTS_PER_SEGMENT = 12
MAX_RELATIONS_PER_SEGMENT = 20
MAX_TYPED_RELATIONS = 1000

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["segments"],
    "properties": {
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "relations"],
                "properties": {
                    "id": {"type": "string"},
                    "relations": {
                        "type": "array",
                        "maxItems": MAX_RELATIONS_PER_SEGMENT,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["source", "target", "label"],
                            "properties": {
                                "source": {"type": "string"},
                                "target": {"type": "string"},
                                "label": {"type": "string", "enum": list(LABELS)},
                                "slides": {"type": "array", "items": {"type": "integer"}},
                            },
                        },
                    },
                },
            },
        },
    },
}

SYSTEM = f"""You find how the concepts of presentation segments relate, for a knowledge graph.

Each SEGMENT lists its concepts as "CONCEPT <id>: <name>", then its text as "[slide N]" lines.
Report only relations the text states or clearly implies, from source to target, labelled:
- IS_A: source is a kind of target          - PART_OF: source is a part or member of target
- USES: source uses or relies on target     - IMPLEMENTS: source implements or applies target
- DEPENDS_ON: source requires target        - REGULATES: source governs or constrains target
- PRODUCES: source creates or outputs target - CONTRASTS_WITH: source is opposed to or replaces target
- RELATED_TO: another explicit relation
Use the concept ids, never names. At most {MAX_RELATIONS_PER_SEGMENT} relations per segment; none is a fine answer.
"slides": the [slide N] numbers that state the relation.
Answer every SEGMENT by its id, in one JSON object and nothing else:
{json.dumps(SCHEMA, separators=(",", ":"))}"""

REPAIR = ("\n\nYour previous answer could not be used ({error}). Answer again: one JSON object that "
          "matches the schema, for every SEGMENT above, and nothing else.")

PROMPT_VERSION = hashlib.sha256((SYSTEM + REPAIR).encode()).hexdigest()[:16]


@dataclass
class SegmentQuestion:
    """One segment's part of a prompt: its concepts (local id -> canonical key) and text."""

    segment_id: str
    concepts: dict[str, str]  # local id -> canonical key
    block: str  # CONCEPT lines, then [slide N] lines

    @property
    def key(self) -> str:
        return item_key(self.block)


def item_key(block: str) -> str:
    return hashlib.sha256(f"{PROMPT_VERSION}\x00{block}".encode()).hexdigest()


def questions(document: pb.Document, segments: Sequence[pb.Segment], concepts: Sequence[pb.Concept], *,
              max_chars: int) -> list[SegmentQuestion]:
    """One question per segment with at least two canonical concepts."""
    slides = {s.number: s for s in document.slides}
    by_segment: dict[str, list[pb.Concept]] = defaultdict(list)
    for concept in concepts:
        for segment_id in concept.segment_ids:
            by_segment[segment_id].append(concept)
    out = []
    for seg in segments:
        members = sorted(by_segment.get(seg.segment_id, []), key=lambda c: (-c.score, c.canonical_key))
        # Listed by key, not by score: scores are document-wide, and a change elsewhere in the
        # deck must not reorder (and so re-ask) an unchanged segment.
        members = sorted(members[:MAX_CONCEPTS_PER_SEGMENT], key=lambda c: c.canonical_key)
        if len(members) < 2:
            continue
        ids = {f"c{i + 1}": c.canonical_key for i, c in enumerate(members)}
        lines = [f"CONCEPT {cid}: {c.name}" for cid, c in zip(ids, members, strict=True)]
        used = sum(len(line) + 1 for line in lines)
        for number in seg.slide_numbers:
            slide = slides.get(number)
            if slide is None:
                continue
            for raw in slide_text(slide).splitlines():
                line = " ".join(raw.split())
                if not line:
                    continue
                entry = f"[slide {number}] {line}"
                if used + len(entry) + 1 > max_chars:
                    break
                lines.append(entry)
                used += len(entry) + 1
        out.append(SegmentQuestion(seg.segment_id, ids, "\n".join(lines)))
    return out


@dataclass
class Batch:
    questions: list[SegmentQuestion] = field(default_factory=list)

    def local_ids(self) -> dict[str, SegmentQuestion]:
        return {f"s{i + 1}": q for i, q in enumerate(self.questions)}


def pack(items: Sequence[SegmentQuestion], *, batch_size: int, max_chars: int) -> list[Batch]:
    batches: list[Batch] = []
    current = Batch()
    chars = 0
    for question in items:
        if current.questions and (len(current.questions) >= batch_size or chars + len(question.block) > max_chars):
            batches.append(current)
            current, chars = Batch(), 0
        current.questions.append(question)
        chars += len(question.block)
    if current.questions:
        batches.append(current)
    return batches


def build_request(batch: Batch) -> ChatRequest:
    parts = [f"SEGMENT {local}\n{q.block}" for local, q in batch.local_ids().items()]
    return ChatRequest(system=SYSTEM, user="\n\n".join(parts), schema=JsonSchema("osmose_relations", SCHEMA))


def repair_request(first: ChatRequest, error: str) -> ChatRequest:
    return ChatRequest(system=first.system, user=first.user + REPAIR.format(error=error[:300]), schema=first.schema)


def read_answer(text: str, batch: Batch) -> dict[str, list[dict[str, Any]]]:
    """Segment id -> relations (with local concept ids) for the segments the answer covers."""
    value = parse_json_answer(text, SCHEMA)
    local = batch.local_ids()
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in value["segments"]:
        question = local.get(str(entry["id"]).strip())
        if question is not None and question.segment_id not in out:
            out[question.segment_id] = list(entry["relations"])
    return out


def relations_from_answers(items: Sequence[SegmentQuestion],
                           answers: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[pb.Relation]:
    """TYPED relations (source -> target, label), evidence = the segments stating them."""
    evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for question in items:
        for raw in answers.get(question.segment_id, []):
            source = question.concepts.get(str(raw.get("source", "")).strip())
            target = question.concepts.get(str(raw.get("target", "")).strip())
            label = str(raw.get("label", ""))
            if source is None or target is None or source == target or label not in LABELS:
                continue
            evidence[(source, target, label)].add(question.segment_id)
    ranked = sorted(evidence.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_TYPED_RELATIONS]
    return [pb.Relation(source_key=s, target_key=t, kind=pb.RELATION_KIND_TYPED, label=label,
                        weight=float(len(ids)), evidence=sorted(ids)) for (s, t, label), ids in ranked]
