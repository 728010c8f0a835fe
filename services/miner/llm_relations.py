"""Typed relations from a language model (DEEP): how a segment's concepts relate, and in which direction.

Logic only, no runtime: :data:`TASK` declares the structured task (run by
:func:`osmose.models.structured.ask_segments`: several segments per prompt, each
segment's answer cached under its own content). Per segment, its most salient
concepts are listed with local ids (``CONCEPT c3: Zero Trust Network Access``)
next to the segment's text; the model answers pairs of ids with a label from a
closed set. Ids rather than names make the mapping back to canonical keys exact.
A relation's evidence is the set of segments that state it; its weight the
number of them, so replays never double-count.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osmose.models.structured import SegmentTask, segments_schema
from osmose.text.slide_text import slide_text
from osmose.v1 import document_pb2 as pb

__all__ = [
    "LABELS",
    "SCHEMA",
    "SYSTEM",
    "TASK",
    "SegmentQuestion",
    "questions",
    "relations_from_answers",
]

LABELS = ("IS_A", "PART_OF", "USES", "IMPLEMENTS", "DEPENDS_ON", "REGULATES", "PRODUCES", "CONTRASTS_WITH",
          "RELATED_TO")
# Concepts of one segment shown to the model (the most salient; pairs grow quadratically).
MAX_CONCEPTS_PER_SEGMENT = 12
MAX_RELATIONS_PER_SEGMENT = 20
MAX_TYPED_RELATIONS = 1000

SCHEMA: dict[str, Any] = segments_schema("relations", {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "target", "label"],
    "properties": {
        "source": {"type": "string"},
        "target": {"type": "string"},
        "label": {"type": "string", "enum": list(LABELS)},
        "slides": {"type": "array", "items": {"type": "integer"}},
    },
}, max_items=MAX_RELATIONS_PER_SEGMENT)

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

TASK = SegmentTask(name="relation_typing", title="relation typing", system=SYSTEM,
                   schema_name="osmose_relations", schema=SCHEMA, answer_field="relations")


@dataclass
class SegmentQuestion:
    """One segment's part of a prompt: its concepts (local id -> canonical key) and text."""

    segment_id: str
    concepts: dict[str, str]  # local id -> canonical key
    block: str  # CONCEPT lines, then [slide N] lines


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
