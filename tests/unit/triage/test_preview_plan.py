"""Triage plans a preview (searchable at FAST first, enriched afterwards) for a rich tier only:
asked by the caller (``plan.preview``) or by ``OSMOSE_PREVIEW_MIN_PAGES``; and the pipeline turns a
persisted preview pass into its enrichment pass at the stage after the front door."""

from __future__ import annotations

import pytest

from osmose.config import TriagePolicy
from osmose.pipeline import PIPELINE, PREVIEW_TIER, begin_enrichment
from osmose.services.triage.stage import TriageConfig, TriageStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.triage.test_budget import _item


def _triaged(item: ppb.WorkItem, *, preview: bool = False, min_pages: int = 0) -> ppb.WorkItem:
    item.plan.preview = preview
    return TriageStage(TriageConfig(policy=TriagePolicy(preview_min_pages=min_pages))).process_sync(item)


@pytest.mark.parametrize("tier", [pb.TIER_DEEP, pb.TIER_STANDARD])
def test_an_asked_preview_runs_fast_first_with_the_decided_tier_to_enrich_to(tier: pb.Tier) -> None:
    plan = _triaged(_item(6, tier=tier), preview=True).plan
    assert (plan.preview, plan.tier, plan.enrich_tier) == (True, PREVIEW_TIER, tier)
    assert plan.tier_reason.endswith("searchable at fast first")


def test_nothing_to_enrich_no_preview() -> None:
    plan = _triaged(_item(6, tier=pb.TIER_FAST), preview=True).plan
    assert (plan.preview, plan.tier, plan.enrich_tier) == (False, pb.TIER_FAST, pb.TIER_UNSPECIFIED)


def test_the_policy_previews_documents_from_its_page_count() -> None:
    assert _triaged(_item(6), min_pages=6).plan.enrich_tier == pb.TIER_DEEP   # triage's own choice: DEEP
    assert not _triaged(_item(6), min_pages=7).plan.preview
    assert not _triaged(_item(6), min_pages=0).plan.preview                    # 0: only when asked


def test_begin_enrichment_goes_on_after_the_front_door_of_the_decided_tier() -> None:
    item = _triaged(_item(6, tier=pb.TIER_DEEP), preview=True)
    item.chunks.add(chunk_id="c", text="x")
    assert [s.name for s in PIPELINE.plan(item.plan.tier)] == ["triage", "embedder", "persister"]
    assert PIPELINE.next_stage("persister", item.plan.tier) is None
    following = begin_enrichment(item)
    assert following is not None and following.name == "vision"
    assert (item.plan.tier, item.plan.enrich_tier, item.plan.preview) == (pb.TIER_DEEP, pb.TIER_UNSPECIFIED, True)
    assert not item.chunks   # cut again by the enrichment's embedder (identical ones from the cache)
    assert begin_enrichment(item) is None   # no longer a preview pass: the document is done after the writer
