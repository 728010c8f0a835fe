from __future__ import annotations

from osmose.config import TriagePolicy
from osmose.services.triage.budget import estimate_work
from osmose.services.triage.policy import choose_tier, vision_decision
from osmose.v1 import document_pb2 as pb

POLICY = TriagePolicy(deep_max_pages=10, standard_max_pages=20)


def _doc(pages: int) -> pb.Document:
    return pb.Document(slides=[pb.Slide(number=i + 1, title=f"Slide {i + 1}") for i in range(pages)])


def test_tier_follows_page_count() -> None:
    assert choose_tier(_doc(10), requested=0, policy=POLICY).tier == pb.TIER_DEEP
    assert choose_tier(_doc(11), requested=0, policy=POLICY).tier == pb.TIER_STANDARD
    assert choose_tier(_doc(21), requested=0, policy=POLICY).tier == pb.TIER_FAST


def test_deep_is_chosen_by_cost_not_by_page_count_alone() -> None:
    # 15 short slides in 3 segments: over the DEEP page limit, but DEEP costs 6 calls and little text.
    cheap = estimate_work(["a short slide"] * 15, segments=3)
    choice = choose_tier(_doc(15), requested=0, policy=POLICY, estimate=cheap)
    assert choice.tier == pb.TIER_DEEP and "fits the budget" in choice.reason and not choice.requested
    # The same pages with a DEEP cost over the budget keep the page rule (the budget then has its say).
    tight = TriagePolicy(deep_max_pages=10, standard_max_pages=20, max_model_calls=5)
    assert choose_tier(_doc(15), requested=0, policy=tight, estimate=cheap).tier == pb.TIER_STANDARD
    costly = estimate_work(["x" * 4000] * 15, segments=3)
    tokens = TriagePolicy(deep_max_pages=10, standard_max_pages=20, max_llm_tokens=20_000)
    assert choose_tier(_doc(25), requested=0, policy=tokens, estimate=costly).tier == pb.TIER_FAST
    # Within the page limit nothing changes.
    assert choose_tier(_doc(10), requested=0, policy=tight, estimate=cheap).tier == pb.TIER_DEEP


def test_requested_tier_wins_and_says_so() -> None:
    choice = choose_tier(_doc(500), requested=pb.TIER_DEEP, policy=POLICY)
    assert (choice.tier, choice.requested) == (pb.TIER_DEEP, True)
    assert "requested" in choice.reason


def _slide(words: int, pictures: list[tuple[float, float]], charts: int = 0) -> pb.Slide:
    slide = pb.Slide(number=1, title="T")
    slide.blocks.add(text=" ".join(["word"] * words), role=pb.BLOCK_ROLE_BODY)
    for w, h in pictures:
        slide.pictures.add(name="p", box=pb.Box(x=0, y=0, width=w, height=h))
    for _ in range(charts):
        slide.charts.add(title="c", categories=["a"])
    return slide


def test_scanned_page_needs_vision() -> None:
    decision = vision_decision(_slide(0, [(1.0, 1.0)]), policy=POLICY)
    assert decision.needed and "image-only" in decision.reason


def test_picture_heavy_slide_with_little_text_needs_vision() -> None:
    decision = vision_decision(_slide(20, [(0.7, 0.6)]), policy=POLICY)
    assert decision.needed and "visual slide" in decision.reason


def test_text_slide_with_logo_does_not() -> None:
    decision = vision_decision(_slide(80, [(0.1, 0.1)]), policy=POLICY)
    assert not decision.needed


def test_icons_do_not_count_as_pictures() -> None:
    decision = vision_decision(_slide(5, [(0.1, 0.1), (0.1, 0.1)]), policy=POLICY)
    assert not decision.needed and decision.reason == "text only"


def test_chart_slide_reads_data_instead_of_vision() -> None:
    decision = vision_decision(_slide(3, [], charts=1), policy=POLICY)
    assert not decision.needed and "chart data" in decision.reason
