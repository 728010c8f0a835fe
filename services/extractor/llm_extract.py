"""Concepts from a language model: several segments per prompt, JSON-schema answers, provenance kept.

Logic only: :func:`pack` groups segments into calls, :func:`build_request` writes
one prompt, :func:`read_answer` validates an answer and maps it back to the
segments, :func:`concepts_from_answers` turns per-segment answers into
``pb.Concept`` (mentions counted in the slide text, so every concept points to
the slides it came from; a name the model made up that occurs nowhere and
names no slide of its segment is dropped). The stage drives the calls.

Prompt layout: the static instructions and the schema go in the system message,
identical for every call (vLLM's prefix cache then serves them from its KV
cache); the user message is ``SEGMENT <id>`` blocks of ``[slide N] text`` lines.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from osmose.models import ChatRequest, JsonSchema, parse_json_answer
from osmose.services.extractor.extract import ExtractorLimits
from osmose.services.extractor.mentions import MentionIndex
from osmose.services.extractor.segment_text import SegmentText
from osmose.services.extractor.typing_rules import concept_type
from osmose.text.names import surface_key
from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_CONCEPTS_PER_SEGMENT_LLM",
    "PROMPT_VERSION",
    "SCHEMA",
    "SYSTEM",
    "TASK",
    "Batch",
    "build_request",
    "concepts_from_answers",
    "pack",
    "read_answer",
    "repair_request",
    "segment_block",
]

TASK = "concept_extraction"
MAX_CONCEPTS_PER_SEGMENT_LLM = 15
MAX_NAME_CHARS = 120
_TYPE_NAMES = ("ENTITY", "PRACTICE", "STANDARD", "TOOL", "ROLE", "TOPIC")

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
                "required": ["id", "concepts"],
                "properties": {
                    "id": {"type": "string"},
                    "concepts": {
                        "type": "array",
                        "maxItems": MAX_CONCEPTS_PER_SEGMENT_LLM,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "type", "slides"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                                "type": {"type": "string", "enum": list(_TYPE_NAMES)},
                                "aliases": {"type": "array", "items": {"type": "string"}},
                                "slides": {"type": "array", "items": {"type": "integer"}},
                            },
                        },
                    },
                },
            },
        },
    },
}

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

REPAIR = ("\n\nYour previous answer could not be used ({error}). Answer again: one JSON object that "
          "matches the schema, for every SEGMENT above, and nothing else.")

#: identifies the prompt and schema: part of every per-segment cache key
PROMPT_VERSION = hashlib.sha256((SYSTEM + REPAIR).encode()).hexdigest()[:16]


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


def item_key(block: str) -> str:
    """The per-segment cache key: prompt version + the segment's text."""
    return hashlib.sha256(f"{PROMPT_VERSION}\x00{block}".encode()).hexdigest()


@dataclass
class Batch:
    """Segments sent together: local ids s1..sk map back to segment ids."""

    segments: list[SegmentText] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(b) for b in self.blocks)

    def local_ids(self) -> dict[str, SegmentText]:
        return {f"s{i + 1}": seg for i, seg in enumerate(self.segments)}


def pack(segments: Sequence[SegmentText], blocks: Sequence[str], *, batch_size: int, max_chars: int) -> list[Batch]:
    """Consecutive segments, at most `batch_size` and about `max_chars` of text per call."""
    batches: list[Batch] = []
    current = Batch()
    for seg, block in zip(segments, blocks, strict=True):
        if current.segments and (len(current.segments) >= batch_size or current.chars + len(block) > max_chars):
            batches.append(current)
            current = Batch()
        current.segments.append(seg)
        current.blocks.append(block)
    if current.segments:
        batches.append(current)
    return batches


def build_request(batch: Batch) -> ChatRequest:
    parts = [f"SEGMENT {local}\n{block}" for local, block in zip(batch.local_ids(), batch.blocks, strict=True)]
    return ChatRequest(system=SYSTEM, user="\n\n".join(parts), schema=JsonSchema("osmose_concepts", SCHEMA))


def repair_request(first: ChatRequest, error: str) -> ChatRequest:
    """The same question again with what was wrong (a different prompt, so a different cache key)."""
    return ChatRequest(system=first.system, user=first.user + REPAIR.format(error=error[:300]), schema=first.schema)


def read_answer(text: str, batch: Batch) -> dict[str, list[dict[str, Any]]]:
    """Segment id -> its concepts, for the segments the answer covers.

    Raises :class:`~osmose.models.ModelOutputError` when the answer is not schema-valid JSON."""
    value = parse_json_answer(text, SCHEMA)
    local = batch.local_ids()
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in value["segments"]:
        seg = local.get(str(entry["id"]).strip())
        if seg is not None and seg.segment_id not in out:
            out[seg.segment_id] = list(entry["concepts"])
    return out


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
        kind = (pb.ConceptType.Value(f"CONCEPT_TYPE_{typed[0]}") if typed
                else concept_type(surface, language=language, aliases=aliases, methods=["llm"]))
        out.append(pb.Concept(
            name=surface, type=kind, aliases=aliases,
            mentions=[pb.Mention(slide=s, count=n) for s, n in sorted(per_slide.items())],
            methods=["llm"], score=round(entry.score, 4), segment_ids=entry.segment_ids,
        ))
    return out
