"""From a finished work item to the rows and points the stores take."""

from __future__ import annotations

from osmose.pipeline import tier_name
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
from osmose.stores.vectors import VectorPoint
from osmose.text.sparse import sparse_encode
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["document_graph", "vector_points"]

_FORMATS = {pb.SOURCE_FORMAT_PPTX: "pptx", pb.SOURCE_FORMAT_PDF: "pdf", pb.SOURCE_FORMAT_PPT: "ppt"}


def _enum_label(enum: object, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)  # type: ignore[attr-defined]


def document_graph(item: ppb.WorkItem) -> DocumentGraph:
    doc = item.document
    segment_of = {n: seg.segment_id for seg in item.segments for n in seg.slide_numbers}
    concepts = [c for c in item.concepts if c.canonical_key]
    return DocumentGraph(
        tenant=item.tenant,
        document=DocumentRow(
            doc_id=doc.doc_id, file_name=doc.file_name, title=doc.title,
            format=_FORMATS.get(doc.format, "unknown"), language=doc.language,
            tier=tier_name(item.plan.tier), slides=len(doc.slides), sha256=doc.sha256,
        ),
        slides=[SlideRow(slide_id=s.slide_id, number=s.number, title=s.title,
                         segment_id=segment_of.get(s.number, "")) for s in doc.slides],
        segments=[SegmentRow(segment_id=s.segment_id, index=s.index, title=s.title,
                             slide_numbers=tuple(s.slide_numbers)) for s in item.segments],
        concepts=[ConceptRow(canonical_key=c.canonical_key, name=c.name,
                             type=_enum_label(pb.ConceptType, c.type, "CONCEPT_TYPE_"),
                             aliases=tuple(c.aliases), salience=c.score) for c in concepts],
        mentions=[MentionRow(canonical_key=c.canonical_key, slide_number=m.slide, count=m.count)
                  for c in concepts for m in c.mentions],
        relations=[RelationRow(source_key=r.source_key, target_key=r.target_key,
                               kind=_enum_label(pb.RelationKind, r.kind, "RELATION_KIND_"),
                               evidence=tuple(r.evidence), label=r.label) for r in item.relations],
        merges=[MergeRow(from_key=m.from_key, into_key=m.into_key, reason=m.reason, similarity=m.similarity)
                for m in item.merges],
    )


def vector_points(item: ppb.WorkItem) -> list[VectorPoint]:
    doc = item.document
    titles = {s.number: s.title for s in doc.slides}
    return [
        VectorPoint(
            id=chunk.chunk_id,
            dense=list(chunk.vector),
            sparse=sparse_encode(chunk.embed_text or chunk.text),
            payload={
                "tenant": item.tenant,
                "doc_id": doc.doc_id,
                "file": doc.file_name,
                "slide": chunk.slide,
                "slide_title": titles.get(chunk.slide, ""),
                "segment_id": chunk.segment_id,
                "chunk_index": chunk.index,
                "text": chunk.text,
            },
        )
        for chunk in item.chunks
    ]
