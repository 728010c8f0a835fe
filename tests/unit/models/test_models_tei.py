"""TEI embeddings against a local TEI-compatible server: batches sized from /info, many in flight, accounting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtests.fakeservers import Fault, LatencyModel, TeiServer, hashed_embedding
from osmose.errors import ConfigurationError
from osmose.models import ModelRuntime
from osmose.models.context import bind_accounting
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
