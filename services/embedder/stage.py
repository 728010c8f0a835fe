"""The embedder stage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from osmose import ids
from osmose.config import Settings
from osmose.embeddings.cached import CachedEmbeddings
from osmose.models.context import bind_accounting
from osmose.services.embedder.chunking import ChunkDraft, TokenCounter, build_chunks
from osmose.text.budget import approx_token_counts
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    import numpy as np

    from osmose.models import ModelRuntime

__all__ = ["EmbedderConfig", "EmbedderStage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EmbedderConfig:
    # Upper bound of one chunk, in model tokens (OSMOSE_CHUNK_MAX_TOKENS).
    chunk_max_tokens: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbedderConfig:
        return cls(chunk_max_tokens=settings.chunk_max_tokens)


class EmbedderStage:
    name = "embedder"
    Config = EmbedderConfig

    def __init__(self, config: EmbedderConfig = EmbedderConfig(), *, embeddings: CachedEmbeddings,
                 count_tokens: TokenCounter | None = None, models: ModelRuntime | None = None) -> None:
        self.config = config
        self.embeddings = embeddings
        # A remote backend (TEI) is charged to the document: calls, tokens, cache hits, seconds.
        self.models = models if getattr(embeddings.backend, "remote", False) else None
        # The local model's tokenizer gives exact chunk sizes; remote backends get an estimate.
        backend_counter = getattr(embeddings.backend, "count_tokens", None)
        self.count_tokens = count_tokens or backend_counter or approx_token_counts

    async def chunk(self, item: ppb.WorkItem) -> list[ChunkDraft]:
        """The document's chunks, cut in a worker thread: tokenizing and packing a large
        document is seconds of CPU, which on the event loop would stall health checks,
        WatchJob and the other documents in flight."""
        return await asyncio.to_thread(build_chunks, item.document, list(item.segments),
                                       max_tokens=self.config.chunk_max_tokens, count_tokens=self.count_tokens)

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        doc = item.document
        drafts = await self.chunk(item)
        session = self.models.session(label=doc.file_name or doc.doc_id, scope=item.tenant) if self.models is not None else None
        with bind_accounting(session.accounting) if session is not None else contextlib.nullcontext():
            result = await self.embeddings.embed_texts([d.embed_text for d in drafts], scope=item.tenant)
        if session is not None:
            session.usage.task("embedding").cache_hits += result.cache_hits
            session.add_to(item)
        # Tens of thousands of 384-float vectors into protobuf: CPU work, off the event loop too.
        await asyncio.to_thread(_attach_chunks, item, drafts, result.vectors)
        item.counters.embedded += result.computed
        item.counters.embed_cache_hits += result.cache_hits
        logger.info("embedded %s: %d chunks, %d computed, %d from cache", doc.file_name, len(drafts),
                    result.computed, result.cache_hits)
        return item


def _attach_chunks(item: ppb.WorkItem, drafts: list[ChunkDraft], vectors: np.ndarray) -> None:
    doc = item.document
    del item.chunks[:]
    for draft, vector in zip(drafts, vectors, strict=True):
        digest = ids.text_hash(draft.embed_text)
        item.chunks.append(pb.Chunk(
            chunk_id=ids.chunk_id(item.tenant, doc.doc_id, draft.slide, draft.index, digest),
            slide=draft.slide,
            segment_id=draft.segment_id,
            index=draft.index,
            text=draft.text,
            embed_text=draft.embed_text,
            text_sha256=digest,
            vector=vector.tolist(),
        ))
