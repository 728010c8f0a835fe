"""A seventh stage, declared in a test pipeline only, runs in the in-process host for every tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import build_title_body_pptx
from tests.fixtures.tagger import TEST_PIPELINE, mark

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("tier", [pb.TIER_FAST, pb.TIER_DEEP])
async def test_declared_stage_runs_between_embedder_and_persister(tmp_path: Path, tier: int) -> None:
    deck = build_title_body_pptx(tmp_path)
    async with InProcessPipeline(Settings(data_dir=tmp_path / "data"), pipeline=TEST_PIPELINE) as pipeline:
        [report] = [r async for r in pipeline.ingest([deck], tenant="acme", tier=tier)]
    assert report.status == "ok", report.error
    assert report.warnings.count(mark(report.chunks)) == 1 and report.chunks > 0   # after the embedder, once
    assert list(report.seconds)[:-1] == [s.name for s in TEST_PIPELINE.plan(tier)]
