"""Content-derived identifiers.

Every id is a function of content (and tenant, where data is per tenant), so a
replayed message or a re-ingested file produces the same ids and every write is
an upsert that changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = [
    "NAMESPACE",
    "chunk_id",
    "concept_id",
    "doc_id_for_bytes",
    "segment_id",
    "sha256_hex",
    "slide_id",
    "text_hash",
]

# Fixed namespace for every UUIDv5 Osmose derives; never change it (ids would move).
NAMESPACE = uuid.UUID("6b1d8a52-5f0c-4f0e-9a8e-0c3a3f0e5d11")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc_id_for_bytes(data: bytes) -> str:
    """A document is its bytes: the same file has the same id whatever its name."""
    return sha256_hex(data)[:32]


def _uuid5(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts)))


def slide_id(doc_id: str, number: int) -> str:
    return _uuid5("slide", doc_id, number)


def segment_id(doc_id: str, index: int) -> str:
    return _uuid5("segment", doc_id, index)


def concept_id(tenant: str, canonical_key: str) -> str:
    return _uuid5("concept", tenant, canonical_key)


def chunk_id(tenant: str, doc_id: str, slide: int, index: int, text_sha256: str) -> str:
    return _uuid5("chunk", tenant, doc_id, slide, index, text_sha256)
