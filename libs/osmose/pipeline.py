"""The pipeline, declared once: stages in order and which tiers run which stage.

Hosts (in-process runner, services, batch) and later the Kafka topic list and
the Helm chart read this module instead of repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass

from osmose.v1 import document_pb2 as pb

__all__ = ["STAGES", "Stage", "TIER_NAMES", "stages_for_tier", "tier_from_name", "tier_name"]


@dataclass(frozen=True)
class Stage:
    name: str
    # Tiers that run this stage; the others pass the work item straight through.
    tiers: frozenset[int]
    description: str


_ALL = frozenset({pb.TIER_FAST, pb.TIER_STANDARD, pb.TIER_DEEP})
_RICH = frozenset({pb.TIER_STANDARD, pb.TIER_DEEP})

STAGES: tuple[Stage, ...] = (
    Stage("triage", _ALL, "parse, detect language, pick the tier, flag slides for vision, segment"),
    Stage("vision", _RICH, "render/OCR/describe the slides flagged for vision"),
    Stage("extractor", _RICH, "concepts per segment"),
    Stage("embedder", _ALL, "chunk and embed slide text"),
    Stage("miner", _RICH, "canonical concepts; relations in DEEP"),
    Stage("persister", _ALL, "write graph and vectors, idempotently"),
)

TIER_NAMES: dict[int, str] = {pb.TIER_FAST: "fast", pb.TIER_STANDARD: "standard", pb.TIER_DEEP: "deep"}


def tier_name(tier: int) -> str:
    return TIER_NAMES.get(tier, "unspecified")


def tier_from_name(name: str | None) -> int:
    if not name:
        return pb.TIER_UNSPECIFIED
    for value, label in TIER_NAMES.items():
        if label == name.lower():
            return value
    raise ValueError(f"unknown tier {name!r}; choose one of {', '.join(TIER_NAMES.values())}")


def stages_for_tier(tier: int) -> tuple[Stage, ...]:
    return tuple(s for s in STAGES if tier in s.tiers)
