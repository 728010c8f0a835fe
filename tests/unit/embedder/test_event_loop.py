"""Chunking a large document runs off the event loop: health checks, WatchJob and the
other documents in flight keep being served meanwhile. The bound is functional (the loop
answers a timer within a second while seconds of chunking run), not a speed claim."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from osmose.cache import SqliteCache
from osmose.embeddings.cached import CachedEmbeddings
from osmose.embeddings.minilm import MiniLMEmbeddings
from osmose.services.embedder import EmbedderStage
from osmose.services.embedder.chunking import build_chunks
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MAX_LAG_S = 1.0


def _large_item(slides: int = 400, lines: int = 60) -> ppb.WorkItem:
    item = ppb.WorkItem(job_id="j", tenant="t")
    item.document.doc_id = "e" * 32
    item.document.title = "Large deck"
    for n in range(1, slides + 1):
        slide = item.document.slides.add(number=n, title=f"Slide {n}")
        for i in range(lines):
            slide.blocks.add(text=f"Line {i} of slide {n}: zero trust segmentation, identity providers and the "
                                  f"audit trail of every privileged session, reviewed quarterly ({n * i}).",
                             role=pb.BLOCK_ROLE_BODY)
    item.segments.add(segment_id="s0", index=0, title="All", slide_numbers=list(range(1, slides + 1)))
    return item


async def _max_lag_while(work: asyncio.Future, tick_s: float = 0.05) -> float:
    worst = 0.0
    while not work.done():
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        worst = max(worst, time.perf_counter() - before - tick_s)
    return worst


async def test_event_loop_stays_responsive_while_a_large_document_is_chunked(tmp_path: Path) -> None:
    model = MiniLMEmbeddings()
    stage = EmbedderStage(embeddings=CachedEmbeddings(model, SqliteCache(tmp_path / "cache.sqlite")))
    item = _large_item()
    chunking = asyncio.ensure_future(stage.chunk(item))
    started = time.perf_counter()
    lag = await _max_lag_while(chunking)
    took = time.perf_counter() - started
    drafts = await chunking
    # the same chunks as chunking inline: nothing lost or reordered by the thread
    assert drafts == build_chunks(item.document, list(item.segments), max_tokens=256, count_tokens=model.count_tokens)
    assert len(drafts) > 500
    assert lag < MAX_LAG_S, f"the event loop stalled {lag:.2f} s during {took:.2f} s of chunking"
