"""The miner stage: canonical concepts (keys, acronym and near-duplicate merges) and relations.

:class:`MinerStage` adapts a work item; the logic lives in :mod:`canonical`
(keys and merges, every merge recorded) and :mod:`relations` (co-occurrence and
similarity), which have no runtime in them.
"""

from osmose.services.miner.canonical import (
    SIMILARITY_MERGE_THRESHOLD,
    merge_acronyms,
    merge_by_key,
    merge_similar,
)
from osmose.services.miner.relations import RelationLimits, co_occurrences, similarities
from osmose.services.miner.stage import MinerConfig, MinerLimits, MinerStage

__all__ = [
    "MinerConfig",
    "SIMILARITY_MERGE_THRESHOLD",
    "MinerLimits",
    "MinerStage",
    "RelationLimits",
    "co_occurrences",
    "merge_acronyms",
    "merge_by_key",
    "merge_similar",
    "similarities",
]
