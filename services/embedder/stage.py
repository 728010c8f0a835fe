"""The embedder stage."""

from __future__ import annotations

import logging

from osmose import ids
from osmose.config import Settings
from osmose.embeddings.cached import CachedEmbeddings
from osmose.services.embedder.chunking import TokenCounter, approx_tokens, build_chunks
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["EmbedderStage"]

logger = logging.getLogger(__name__)


class EmbedderStage:
    name = "embedder"

    def __init__(self, settings: Settings, embeddings: CachedEmbeddings, *,
                 count_tokens: TokenCounter | None = None) -> None:
        self.settings = settings
        self.embeddings = embeddings
        # The local model's tokenizer gives exact chunk sizes; remote backends get an estimate.
        backend_counter = getattr(embeddings.backend, "count_tokens", None)
        self.count_tokens = count_tokens or backend_counter or approx_tokens

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        doc = item.document
        drafts = build_chunks(doc, item.segments, max_tokens=self.settings.chunk_max_tokens,
                              count_tokens=self.count_tokens)
        result = await self.embeddings.embed_texts([d.embed_text for d in drafts])
        del item.chunks[:]
        for draft, vector in zip(drafts, result.vectors, strict=True):
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
        item.counters.embedded += result.computed
        item.counters.embed_cache_hits += result.cache_hits
        logger.info("embedded %s: %d chunks, %d computed, %d from cache", doc.file_name, len(drafts),
                    result.computed, result.cache_hits)
        return item
