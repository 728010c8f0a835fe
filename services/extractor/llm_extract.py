"""Concepts from a language model: the task's prompt, schema and the mapping of its answers.

Logic only: :data:`TASK` declares the structured task (run by
:func:`osmose.models.structured.ask_segments`), :func:`segment_block` writes a
segment as the prompt shows it (``[slide N] text`` lines), and
:func:`concepts_from_answers` turns per-segment answers into ``pb.Concept``
(mentions counted in the slide text, so every concept points to the slides it
came from; a name the model made up that occurs nowhere and names no slide of
its segment is dropped).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from osmose.models.structured import SegmentTask, segments_schema
from osmose.services.extractor.extract import ExtractorLimits
from osmose.services.extractor.mentions import MentionIndex
from osmose.services.extractor.segment_text import SegmentText
from osmose.services.extractor.typing_rules import concept_type
from osmose.text.names import surface_key
from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_CONCEPTS_PER_SEGMENT_LLM",
    "SCHEMA",
    "SYSTEM",
    "TASK",
    "concepts_from_answers",
    "segment_block",
]

MAX_CONCEPTS_PER_SEGMENT_LLM = 15
MAX_NAME_CHARS = 120
_TYPES: dict[str, pb.ConceptType] = {
    "ENTITY": pb.CONCEPT_TYPE_ENTITY, "PRACTICE": pb.CONCEPT_TYPE_PRACTICE,
    "STANDARD": pb.CONCEPT_TYPE_STANDARD, "TOOL": pb.CONCEPT_TYPE_TOOL,
    "ROLE": pb.CONCEPT_TYPE_ROLE, "TOPIC": pb.CONCEPT_TYPE_TOPIC,
}
_TYPE_NAMES = tuple(_TYPES)

SCHEMA: dict[str, Any] = segments_schema("concepts", {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "slides"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
        "type": {"type": "string", "enum": list(_TYPE_NAMES)},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "slides": {"type": "array", "items": {"type": "integer"}},
    },
}, max_items=MAX_CONCEPTS_PER_SEGMENT_LLM)

SYSTEM = f"""You extract the key concepts of presentation segments for a knowledge graph.

A concept is a specific thing worth its own node, named as the text names it:
- ENTITY: an organisation, product, project or other named thing
- PRACTICE: a method or activity (threat modelling, code review, encryption)
- STANDARD: a norm, specification, regulation or protocol (ISO 27001, GDPR, HTTP)
- TOOL: software, a language, a framework or a platform (SQL Server, Python, Kubernetes)
- ROLE: people by function (product owner, attacker, data steward)
- TOPIC: a subject that fits none of the above

Rules:
- Take names from the text, in its language and spelling; no generic words ("overview", "example", "slide").
- At most {MAX_CONCEPTS_PER_SEGMENT_LLM} concepts per segment, most important first.
- "slides": the numbers of the [slide N] lines the concept appears on.
- "aliases": other forms written in the text (an acronym and its expansion), else [].
- Answer every SEGMENT by its id, in one JSON object and nothing else:
{json.dumps(SCHEMA, separators=(",", ":"))}"""

TASK = SegmentTask(name="concept_extraction", title="concept extraction", system=SYSTEM,
                   schema_name="osmose_concepts", schema=SCHEMA, answer_field="concepts")


def segment_block(seg: SegmentText, max_chars: int) -> str:
    """The lines of a segment as the prompt shows them (visible text first, then notes),
    within `max_chars`."""
    lines: list[str] = []
    used = 0
    for source in ("visible", "notes"):
        for slide in seg.slides:
            for line in getattr(slide, source):
                entry = f"[slide {slide.number}] {line}"
                if used + len(entry) + 1 > max_chars:
                    break
                lines.append(entry)
                used += len(entry) + 1
    return "\n".join(lines)


def _clean(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).split()).strip(" \"'`.,;:")


@dataclass
class _Found:
    name: str
    score: float = 0.0
    aliases: set[str] = field(default_factory=set)
    types: Counter[str] = field(default_factory=Counter)
    slides: set[int] = field(default_factory=set)
    segment_ids: list[str] = field(default_factory=list)


def concepts_from_answers(segments: Sequence[SegmentText], answers: Mapping[str, Sequence[Mapping[str, Any]]], *,
                          language: str = "", limits: ExtractorLimits | None = None) -> list[pb.Concept]:
    """``pb.Concept`` from per-segment model answers, most salient first (deterministic).

    Score = sum over segments of the rank salience (1 - rank/(n+1)), as the heuristics
    score; mentions are counted in the slide text (any alias counts), falling back to the
    slides the model named when the name itself is not in the text (a normalised form)."""
    limits = limits or ExtractorLimits()
    found: dict[str, _Found] = {}
    segment_slides = {seg.segment_id: set(seg.slide_numbers) for seg in segments}
    for seg in segments:
        concepts = answers.get(seg.segment_id)
        if not concepts:
            continue
        for rank, raw in enumerate(concepts[: limits.segment_limit(len(seg.slides))]):
            name = _clean(str(raw.get("name", "")))
            if not name or len(name) > MAX_NAME_CHARS:
                continue
            entry = found.setdefault(surface_key(name), _Found(name))
            entry.score += 1.0 - rank / (len(concepts) + 1)
            entry.aliases.update(a for a in (_clean(str(x)) for x in raw.get("aliases") or []) if a)
            entry.types[str(raw.get("type", ""))] += 1
            entry.slides.update(int(s) for s in raw.get("slides") or [] if int(s) in segment_slides[seg.segment_id])
            if seg.segment_id not in entry.segment_ids:
                entry.segment_ids.append(seg.segment_id)

    index = MentionIndex([slide for seg in segments for slide in seg.slides])
    out: list[pb.Concept] = []
    for key, entry in sorted(found.items(), key=lambda kv: (-kv[1].score, kv[0])):
        if len(out) >= limits.per_document:
            break
        occurrences = index.find(entry.name)
        per_slide = Counter(dict(occurrences.per_slide))
        surface = occurrences.surface if occurrences.per_slide else entry.name
        for alias in sorted(entry.aliases):
            if surface_key(alias) != key:
                per_slide.update(dict(index.find(alias).per_slide))
        if not per_slide:
            per_slide = Counter({s: 1 for s in entry.slides})
        if not per_slide:
            continue  # neither in the text nor on a slide of its segment: nothing to point to
        aliases = sorted({a for a in entry.aliases if surface_key(a) != surface_key(surface)})
        typed = [t for t, _ in entry.types.most_common() if t in _TYPE_NAMES]
        kind = (_TYPES[typed[0]] if typed
                else concept_type(surface, language=language, aliases=aliases, methods=["llm"]))
        out.append(pb.Concept(
            name=surface, type=kind, aliases=aliases,
            mentions=[pb.Mention(slide=s, count=n) for s, n in sorted(per_slide.items())],
            methods=["llm"], score=round(entry.score, 4), segment_ids=entry.segment_ids,
        ))
    return out
