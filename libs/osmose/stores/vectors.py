"""The vector store interface: dense + sparse (lexical) vectors per chunk, hybrid search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["SparseVector", "VectorHit", "VectorPoint", "VectorStore"]


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class VectorPoint:
    id: str                       # UUID string, content-derived (ids.chunk_id)
    dense: list[float]
    sparse: SparseVector
    # Payload: tenant, doc_id, file, slide, segment_id, chunk_index, text (at least).
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    async def replace_document(self, tenant: str, doc_id: str, points: list[VectorPoint]) -> None:
        """Upsert these points and delete the document's points not among them. Idempotent."""
        ...

    async def delete_document(self, tenant: str, doc_id: str) -> int: ...

    async def hybrid_search(
        self, tenant: str, dense: list[float], sparse: SparseVector, limit: int
    ) -> list[VectorHit]:
        """Dense and sparse candidates fused (reciprocal rank fusion), tenant-filtered."""
        ...

    async def count(self, tenant: str | None = None) -> dict[str, int]:
        """Points per tenant."""
        ...

    async def document_payloads(self, tenant: str, doc_id: str) -> list[dict[str, Any]]:
        """Payloads of the document's points, in slide then chunk order."""
        ...

    async def close(self) -> None: ...
