"""TEI embeddings against a local TEI-compatible server: batches sized from /info, many in flight, accounting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from loadtests.fakeservers import Fault, LatencyModel, TeiServer, hashed_embedding
from osmose.errors import ConfigurationError
from osmose.models import ModelRuntime
from osmose.models.context import (
    DEFAULT_CALL_ORDER,
    PREMIUM_PRIORITY,
    CallOrder,
    bind_accounting,
    bind_call_order,
)
from osmose.models.usage import TaskUsage
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio


async def _embed(models: ModelRuntime, texts: list[str]) -> tuple[np.ndarray, object]:
    session = models.session()
    try:
        assert models.embeddings is not None
        with bind_accounting(session.accounting):
            vectors = await models.embeddings.embed(texts)
        return vectors, session.usage.task("embedding")
    finally:
        await models.aclose()


async def test_requests_are_sized_from_info_and_vectors_are_the_servers(tei: TeiServer, tmp_path: Path) -> None:
    texts = [f"zero trust network access slide {i}" for i in range(20)]
    vectors, usage = await _embed(runtime(router(tei=tei.url), tmp_path), texts)
    assert tei.batch_sizes and max(tei.batch_sizes) <= 8  # max_client_batch_size from /info
    assert tei.embed_requests == 3  # ceil(20 / 8)
    assert usage.calls == 3 and usage.prompt_tokens > 0
    assert vectors.shape == (20, 384)
    np.testing.assert_allclose(vectors[3], hashed_embedding(texts[3], 384), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_many_batches_in_flight_up_to_the_limit(tmp_path: Path) -> None:
    with TeiServer(slots=16, max_client_batch_size=2, latency=LatencyModel(base_s=0.05, prefill_tps=1e9)) as tei:
        texts = [f"text number {i}" for i in range(24)]
        await _embed(runtime(router(tei=tei.url, concurrency=4), tmp_path), texts)
        metrics = tei.scrape()
    assert metrics['te_request_success{method="batch"}'] == 12
    assert metrics["fakeserver_peak_requests_in_flight"] == 4
    assert metrics["te_embed_count"] == 24


async def test_transient_errors_are_retried_and_counted(tei: TeiServer, tmp_path: Path) -> None:
    tei.set_faults(Fault("503", count=2, retry_after=0.05))
    _, usage = await _embed(runtime(router(tei=tei.url), tmp_path), ["one", "two"])
    assert usage.retries == 2 and usage.calls == 3


async def test_a_dimension_mismatch_is_a_configuration_error(tmp_path: Path) -> None:
    with TeiServer(dim=768, latency=LatencyModel(time_scale=0)) as tei, \
            pytest.raises(ConfigurationError, match="768-dimensional"):
        await _embed(runtime(router(tei=tei.url), tmp_path), ["one"])


# -- requests shared by documents ------------------------------------------------------------------

async def _embed_as(models: ModelRuntime, texts: list[str], call_order: CallOrder = DEFAULT_CALL_ORDER
                    ) -> tuple[np.ndarray, TaskUsage]:
    session = models.session()
    assert models.embeddings is not None
    with bind_accounting(session.accounting), bind_call_order(call_order):
        vectors = await models.embeddings.embed(texts)
    return vectors, session.usage.task("embedding")


def _docs(*names: str, count: int = 3) -> dict[str, list[str]]:
    return {name: [f"{name} slide {i} zero trust gateway" for i in range(count)] for name in names}


async def test_documents_queued_behind_a_busy_slot_share_requests_up_to_the_servers_limits(tmp_path: Path) -> None:
    with TeiServer(slots=1, max_client_batch_size=8, latency=LatencyModel(base_s=0.3, prefill_tps=1e9)) as tei:
        models = runtime(router(tei=tei.url, concurrency=1), tmp_path)
        try:
            await models.embeddings.info()  # type: ignore[union-attr]
            docs = _docs("alpha", "bravo", "charlie", "delta")
            first = asyncio.create_task(_embed_as(models, docs["alpha"], CallOrder(order=0)))
            await asyncio.sleep(0.05)  # alpha's request holds the only slot
            rest = [asyncio.create_task(_embed_as(models, docs[n], CallOrder(order=i)))
                    for i, n in enumerate(("bravo", "charlie", "delta"), start=1)]
            results = dict(zip(docs, await asyncio.gather(first, *rest), strict=True))
        finally:
            await models.aclose()
        batch_sizes, requests = list(tei.batch_sizes), tei.embed_requests
    # alpha alone at once; then the nine queued texts in requests of at most 8 (TEI's /info limit)
    assert batch_sizes == [3, 8, 1] and requests == 3
    for name, (vectors, usage) in results.items():
        for i, text in enumerate(docs[name]):
            np.testing.assert_allclose(vectors[i], hashed_embedding(text, 384), atol=1e-6)
        assert usage.prompt_tokens > 0 and usage.failures == 0
    assert sum(usage.calls for _, usage in results.values()) == requests  # each request counted once
    assert [results[n][1].calls for n in docs] == [1, 1, 0, 1]  # charlie's texts rode in bravo's and delta's


async def test_premium_texts_leave_first_and_a_cancelled_documents_texts_are_dropped(tmp_path: Path) -> None:
    with TeiServer(slots=1, max_client_batch_size=3, latency=LatencyModel(base_s=0.3, prefill_tps=1e9)) as tei:
        models = runtime(router(tei=tei.url, concurrency=1), tmp_path)
        try:
            await models.embeddings.info()  # type: ignore[union-attr]
            docs = _docs("holder", "bulk", "gone", "premium")
            holder = asyncio.create_task(_embed_as(models, docs["holder"]))
            await asyncio.sleep(0.05)
            bulk = asyncio.create_task(_embed_as(models, docs["bulk"], CallOrder(order=1)))
            gone = asyncio.create_task(_embed_as(models, docs["gone"], CallOrder(order=2)))
            premium = asyncio.create_task(_embed_as(models, docs["premium"],
                                                    CallOrder(priority=PREMIUM_PRIORITY, order=9)))
            await asyncio.sleep(0.05)
            gone.cancel()
            await asyncio.gather(holder, bulk, premium)
            with pytest.raises(asyncio.CancelledError):
                await gone
        finally:
            await models.aclose()
        sent = [text for texts in tei.inputs for text in texts]
    assert sent == docs["holder"] + docs["premium"] + docs["bulk"]
