"""What a stage is, for the hosts that run it.

A stage takes one document's work item and returns it enriched. Stage logic is
pure Python with no runtime in it (no Kafka, no gRPC): hosts adapt it. Stages
never import each other; they share only ``osmose`` library code.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from osmose.v1 import pipeline_pb2

__all__ = ["PipelineStage"]


@runtime_checkable
class PipelineStage(Protocol):
    #: the stage's name as declared in :mod:`osmose.pipeline`
    name: str

    async def process(self, item: pipeline_pb2.WorkItem) -> pipeline_pb2.WorkItem:
        """Enrich `item` (it may be modified in place and returned).

        Raises :class:`osmose.errors.PermanentError` for input that can never
        succeed and :class:`osmose.errors.RetryableError` for transient trouble.
        """
        ...
