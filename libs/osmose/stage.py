"""What a stage is, for the hosts that run it.

A stage takes one document's work item and returns it enriched. Stage logic is
pure Python with no runtime in it (no Kafka, no gRPC): hosts adapt it. Stages
never import each other; they share only ``osmose`` library code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from osmose.v1 import pipeline_pb2

if TYPE_CHECKING:
    from osmose.config import Settings

__all__ = ["PipelineStage", "StageConfig"]


class StageConfig(Protocol):
    """A stage's own settings: a small frozen value object built from the process's Settings,
    so a stage sees only what it uses (and a test builds one with plain keywords)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Any: ...


@runtime_checkable
class PipelineStage(Protocol):
    #: the stage's name as declared in :mod:`osmose.pipeline`
    name: str
    #: the type of the stage's config object, the constructor's first argument; the other
    #: arguments are the resources the declaration names, as keywords
    Config: ClassVar[type[StageConfig]]

    async def process(self, item: pipeline_pb2.WorkItem) -> pipeline_pb2.WorkItem:
        """Enrich `item` (it may be modified in place and returned).

        Raises :class:`osmose.errors.PermanentError` for input that can never
        succeed and :class:`osmose.errors.RetryableError` for transient trouble.
        """
        ...
