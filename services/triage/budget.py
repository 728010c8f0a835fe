"""The per-document budget: how much work a parsed document asks for, and what triage does
when it asks for too much.

Estimated right after parsing, before anything costs more than reading the text once:

* tokens to embed: every tier embeds all of a document's text, about one encoder token
  per 3 characters (:data:`osmose.text.budget.ENCODER_CHARS_PER_TOKEN`, an over-estimate);
* model calls by tier: one vision call per flagged slide (STANDARD, DEEP), one extraction
  call per segment (STANDARD, DEEP), one relation-typing call per segment (DEEP); an upper
  bound, since the extractor may pack several segments into one prompt;
* LLM prompt tokens by tier: the text once per LLM pass, about 4 characters a token.

Beyond ``max_embed_tokens`` no tier helps: the document is refused as ``too-large``
(:class:`~osmose.errors.DocumentTooLargeError`, dead-lettered by the pipeline, a non-zero
exit in the CLI). Beyond ``max_model_calls`` or ``max_llm_tokens`` the document gets the
highest lower tier within both (FAST makes no LLM call), and the reason says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from osmose.config import TriagePolicy
from osmose.errors import DocumentTooLargeError
from osmose.pipeline import tier_name
from osmose.text.budget import CHAT_CHARS_PER_TOKEN, ENCODER_CHARS_PER_TOKEN
from osmose.v1 import document_pb2 as pb

__all__ = ["BudgetChoice", "WorkEstimate", "check_embed_budget", "estimate_work", "fit_tier"]

# Tiers from the richest down: the order a document is stepped down in.
_DOWN = (pb.TIER_DEEP, pb.TIER_STANDARD, pb.TIER_FAST)
# LLM passes over the text (extraction, relation typing) per tier.
_LLM_PASSES = {pb.TIER_FAST: 0, pb.TIER_STANDARD: 1, pb.TIER_DEEP: 2}


@dataclass(frozen=True)
class WorkEstimate:
    characters: int
    vision_slides: int = 0
    segments: int = 0

    @property
    def embed_tokens(self) -> int:
        return self.characters // ENCODER_CHARS_PER_TOKEN

    def model_calls(self, tier: pb.Tier) -> int:
        passes = _LLM_PASSES.get(tier, 0)
        return (self.vision_slides if passes else 0) + passes * self.segments

    def llm_tokens(self, tier: pb.Tier) -> int:
        return _LLM_PASSES.get(tier, 0) * (self.characters // CHAT_CHARS_PER_TOKEN)


@dataclass(frozen=True)
class BudgetChoice:
    tier: pb.Tier
    reason: str = ""      # why the tier was lowered; empty when it fits


def estimate_work(texts: Iterable[str], *, vision_slides: int = 0, segments: int = 0) -> WorkEstimate:
    return WorkEstimate(characters=sum(len(t) for t in texts), vision_slides=vision_slides, segments=segments)


def check_embed_budget(estimate: WorkEstimate, policy: TriagePolicy) -> None:
    """Refuse a document whose text alone is over budget (no tier embeds less)."""
    if estimate.embed_tokens > policy.max_embed_tokens:
        raise DocumentTooLargeError(
            f"about {estimate.embed_tokens:,} tokens to embed ({estimate.characters:,} characters of text) "
            f"exceed the per-document budget of {policy.max_embed_tokens:,} (OSMOSE_MAX_EMBED_TOKENS)",
            reason="too-large")


def fit_tier(tier: pb.Tier, estimate: WorkEstimate, policy: TriagePolicy) -> BudgetChoice:
    """`tier`, or the highest lower tier whose model calls and LLM tokens fit the budget."""
    if tier not in _DOWN:
        return BudgetChoice(tier)
    over: list[str] = []
    for candidate in _DOWN[_DOWN.index(tier):]:
        calls, tokens = estimate.model_calls(candidate), estimate.llm_tokens(candidate)
        problems = []
        if calls > policy.max_model_calls:
            problems.append(f"{calls:,} model calls > {policy.max_model_calls:,} (OSMOSE_MAX_MODEL_CALLS)")
        if tokens > policy.max_llm_tokens:
            problems.append(f"{tokens:,} LLM tokens > {policy.max_llm_tokens:,} (OSMOSE_MAX_LLM_TOKENS)")
        if not problems:
            if candidate == tier:
                return BudgetChoice(tier)
            return BudgetChoice(candidate, f"budget: {'; '.join(over)}: {tier_name(candidate)} instead")
        over.append(f"{tier_name(candidate)} would need {' and '.join(problems)}")
    return BudgetChoice(pb.TIER_FAST, f"budget: {'; '.join(over)}")   # unreachable: FAST makes no LLM call
