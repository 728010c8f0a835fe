"""Tenants never see each other through the caches: the same deck ingested by another tenant is
embedded again (its report says nothing of what anyone else ingested), and erasing a tenant
forgets its cache entries while the other tenant's stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.query.erase import erase_tenant
from tests.fixtures.builders import build_title_body_pptx

pytestmark = pytest.mark.anyio


async def test_the_same_deck_in_two_tenants_shares_no_cache_entry(tmp_path: Path) -> None:
    deck = build_title_body_pptx(tmp_path)
    async with InProcessPipeline(Settings(data_dir=tmp_path / "data")) as pipeline:
        async def embedded(tenant: str) -> int:
            [report] = [r async for r in pipeline.ingest([deck], tenant=tenant)]
            assert report.status == "ok", report.error
            return report.embedded

        first = await embedded("alpha")
        assert first > 0
        assert await embedded("beta") == first          # beta learns nothing of alpha's ingest
        assert await embedded("alpha") == 0             # each tenant's own cache still works
        erased = await erase_tenant(graph=pipeline.graph, vectors=pipeline.vectors, tenant="alpha",
                                    caches=pipeline.resources.cache_erasers())
        assert erased.documents == 1 and erased.cache_entries >= first
        assert (await pipeline.stats("alpha")).get("alpha", {}).get("documents", 0) == 0
        assert await embedded("alpha") == first          # forgotten: embedded again
        assert await embedded("beta") == 0               # beta's entries untouched
