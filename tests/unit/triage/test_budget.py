"""The per-document budget: estimates, the tier stepped down with its reason, `too-large`."""

from __future__ import annotations

import time

import pytest

from osmose.config import Settings, TriagePolicy
from osmose.documents.parsing import parse_document
from osmose.errors import DocumentTooLargeError
from osmose.services.triage import TriageConfig, TriageStage
from osmose.services.triage.budget import WorkEstimate, check_embed_budget, estimate_work, fit_tier
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.fixtures.dense_deck import dense_deck_once


def test_estimate_counts_tokens_and_calls_by_tier() -> None:
    estimate = estimate_work(["a" * 3000, "b" * 3000], vision_slides=4, segments=10)
    assert (estimate.characters, estimate.embed_tokens) == (6000, 2000)
    assert [estimate.model_calls(t) for t in (pb.TIER_FAST, pb.TIER_STANDARD, pb.TIER_DEEP)] == [0, 14, 24]
    assert [estimate.llm_tokens(t) for t in (pb.TIER_FAST, pb.TIER_STANDARD, pb.TIER_DEEP)] == [0, 1500, 3000]


def test_within_budget_nothing_changes() -> None:
    choice = fit_tier(pb.TIER_DEEP, WorkEstimate(characters=6000, vision_slides=4, segments=10), TriagePolicy())
    assert (choice.tier, choice.reason) == (pb.TIER_DEEP, "")


def test_too_many_calls_steps_down_to_the_first_tier_that_fits() -> None:
    estimate = WorkEstimate(characters=6000, vision_slides=4, segments=10)
    choice = fit_tier(pb.TIER_DEEP, estimate, TriagePolicy(max_model_calls=20))
    assert choice.tier == pb.TIER_STANDARD
    assert "deep would need 24 model calls > 20 (OSMOSE_MAX_MODEL_CALLS)" in choice.reason
    choice = fit_tier(pb.TIER_DEEP, estimate, TriagePolicy(max_model_calls=10))
    assert choice.tier == pb.TIER_FAST and "standard would need 14 model calls" in choice.reason


def test_too_many_llm_tokens_steps_down() -> None:
    choice = fit_tier(pb.TIER_STANDARD, WorkEstimate(characters=40_000), TriagePolicy(max_llm_tokens=5000))
    assert choice.tier == pb.TIER_FAST
    assert "10,000 LLM tokens > 5,000 (OSMOSE_MAX_LLM_TOKENS)" in choice.reason


def test_text_over_the_embedding_budget_is_refused() -> None:
    check_embed_budget(WorkEstimate(characters=3002), TriagePolicy(max_embed_tokens=1000))   # 1000 tokens: fits
    with pytest.raises(DocumentTooLargeError) as raised:
        check_embed_budget(WorkEstimate(characters=3003), TriagePolicy(max_embed_tokens=1000))
    assert raised.value.reason == "too-large"
    assert str(raised.value) == ("too-large: about 1,001 tokens to embed (3,003 characters of text) exceed "
                                 "the per-document budget of 1,000 (OSMOSE_MAX_EMBED_TOKENS)")


def _item(slides: int, *, words: int = 30, tier: pb.Tier = pb.TIER_UNSPECIFIED) -> ppb.WorkItem:
    item = ppb.WorkItem(job_id="j", tenant="t")
    item.plan.tier = tier
    item.document.doc_id = "d" * 32
    item.document.file_name = "deck.pptx"
    for n in range(1, slides + 1):
        slide = item.document.slides.add(number=n, title=f"Topic {n}: network segmentation")
        slide.blocks.add(text=f"Topic {n}: network segmentation", role=pb.BLOCK_ROLE_TITLE)
        slide.blocks.add(text=" ".join(f"word{n}x{i}" for i in range(words)), role=pb.BLOCK_ROLE_BODY)
    return item


def test_stage_lowers_the_tier_with_the_reason_in_the_plan_and_warnings() -> None:
    item = _item(8)   # 8 slides: DEEP by page count; one segment: 2 LLM calls in DEEP, 1 in STANDARD
    out = TriageStage(TriageConfig(policy=TriagePolicy(max_model_calls=1))).process_sync(item)
    assert len(out.segments) == 1 and out.plan.tier == pb.TIER_STANDARD
    assert out.plan.tier_reason == ("8 pages ≤ 150: full graph; budget: deep would need 2 model calls > 1 "
                                    "(OSMOSE_MAX_MODEL_CALLS): standard instead")
    assert any(w.startswith("tier lowered to standard by the per-document budget") for w in out.warnings)
    out = TriageStage(TriageConfig(policy=TriagePolicy(max_model_calls=0))).process_sync(_item(8))
    assert out.plan.tier == pb.TIER_FAST


def test_a_requested_tier_is_lowered_too() -> None:
    stage = TriageStage(TriageConfig(policy=TriagePolicy(max_llm_tokens=100)))
    out = stage.process_sync(_item(2, words=200, tier=pb.TIER_DEEP))
    assert out.plan.tier == pb.TIER_FAST
    assert "deep requested by the caller; budget:" in out.plan.tier_reason


def test_stage_refuses_text_over_budget_with_a_clear_reason() -> None:
    stage = TriageStage(TriageConfig(policy=TriagePolicy(max_embed_tokens=1000)))
    with pytest.raises(DocumentTooLargeError, match=r"too-large: about \d[\d,]* tokens to embed .* "
                                                    r"exceed the per-document budget of 1,000"):
        stage.process_sync(_item(40, words=100))


@pytest.mark.slow
def test_generated_27mb_deck_is_refused_within_a_second_of_parsing(tmp_path_factory) -> None:
    """The review's deck: ~27 MB, ~40 M characters (≈ 13 M tokens, ~70 min of CPU embedding).
    The bound is functional: refusal comes from one pass that sums text lengths, before
    language detection, segmentation or any later stage."""
    deck = dense_deck_once(tmp_path_factory.getbasetemp())
    assert deck.stat().st_size > 20_000_000
    doc = parse_document(deck, settings=Settings())
    item = ppb.WorkItem(job_id="j", tenant="t")
    item.document.CopyFrom(doc)
    started = time.perf_counter()
    with pytest.raises(DocumentTooLargeError) as raised:
        TriageStage().process_sync(item)
    elapsed = time.perf_counter() - started
    message = str(raised.value)
    assert raised.value.reason == "too-large"
    assert "tokens to embed" in message and "OSMOSE_MAX_EMBED_TOKENS" in message
    characters = int(message.split("(")[1].split(" characters")[0].replace(",", ""))
    assert characters > 38_000_000
    assert elapsed < 1.0, f"refused {elapsed:.2f} s after parsing"
