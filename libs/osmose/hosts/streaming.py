"""No stage barrier inside a document: what both hosts share (README, "Keeping the GPU pool saturated").

Two ways a later stage starts on a document before the stage in front of it is done, with the
staged run's results by construction:

* **side stages** (:data:`SIDE_STAGES`): a stage that reads nothing its predecessor writes runs
  on a copy of the item the predecessor received (:func:`side_copy`). The in-process host runs it
  alongside and merges its fields back (:func:`merge_side`); the service host publishes the copy
  to the side stage's topic as a look-ahead when the predecessor starts, and the real message
  that follows finds every answer in the caches;
* **extraction ahead of vision** (:func:`extraction_ahead_of_vision`): while the vision stage
  summarises a document's flagged slides, the extractor runs on a copy holding only the segments
  with no flagged slide — their prompts do not depend on vision's summaries, so the real extractor,
  run after vision as before, recalls their answers and asks only about the segments vision changed;
* **relation look-ahead** (:class:`RelationTrigger`): while the extraction's last calls decode and
  slots are free, the miner runs on a copy of the item with the concepts answered so far
  (:func:`miner_item`). Its answers are remembered per segment under their content, so the real
  miner, run on the extraction's output, recalls every question that came out the same and asks
  only the ones that changed: a wrong guess costs calls, never results.

A look-ahead's output is always discarded: only its model answers, in the content-addressed
caches, are used, and only where the real run asks exactly the same question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from osmose.models.usage import merge_usage
from osmose.pipeline import Pipeline, Stage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from osmose.models import ModelRuntime
    from osmose.models.backend import Backend

__all__ = ["EXTRACTION", "LOOKAHEAD_SENDERS", "SIDE_STAGES", "RelationTrigger", "extraction_ahead_of_vision",
           "merge_side", "miner_item", "relation_lookahead_wanted", "side_copy", "side_lookahead_wanted",
           "side_stage_of"]

#: stage -> the stage it runs alongside (started together, both done before the next stage);
#: the side stage reads nothing the other writes, and writes only the fields merged back
#: by :func:`merge_side` (chunks, counters, model usage, warnings)
SIDE_STAGES: dict[str, str] = {"embedder": "extractor"}

#: the structured task whose answers feed the relation look-ahead
EXTRACTION = "concept_extraction"
#: the stages that send look-aheads in the service host (side stages' hosts; the extractor, to the miner)
LOOKAHEAD_SENDERS = frozenset({*SIDE_STAGES.values(), "extractor", "vision"})


def side_stage_of(pipeline: Pipeline, stage: str, tier: int) -> Stage | None:
    """The stage that runs alongside `stage` in `tier`'s plan (its next stage, when that is a side
    stage of it), or None."""
    following = pipeline.next_stage(stage, tier)
    if following is not None and SIDE_STAGES.get(following.name) == stage and following.role == "worker":
        return following
    return None


def side_lookahead_wanted(stage: str, models: ModelRuntime | None) -> bool:
    """Whether the service host sends a look-ahead to side stage `stage`: only when it keeps a
    remote model backend busy — for the embedder, a TEI endpoint. With the local embedding model
    there is no pool to fill, and the job's counters stay exactly the staged run's (``embedded``
    counts the texts the real embedder computed, which after a look-ahead is none)."""
    return stage == "embedder" and models is not None and models.config.embedding_endpoint is not None


def extraction_ahead_of_vision(pipeline: Pipeline, models: ModelRuntime | None, stage: str,
                               item: ppb.WorkItem) -> ppb.WorkItem | None:
    """For the vision stage of a document with slides flagged for vision whose plan extracts with a
    model: a :func:`side_copy` of its input holding only the segments without a flagged slide (what
    the extractor can ask now), or None when there is nothing to start ahead. Only on routes that
    size calls to the load (``packing: load``): splitting a document's segments in two askings may
    cost a call more."""
    if stage != "vision" or not item.plan.vision_slides or models is None or not models.serves(EXTRACTION):
        return None
    route = models.route(EXTRACTION)
    if route is None or route.packing != "load":   # `full`: fewest prompt tokens, so no extra calls
        return None
    if "extractor" not in {s.name for s in pipeline.plan(item.plan.tier)}:
        return None
    flagged = {slide.number for slide in item.document.slides if slide.vision_decision.needed}
    ready = [segment for segment in item.segments if not flagged.intersection(segment.slide_numbers)]
    if not ready or len(ready) == len(item.segments):
        return None
    copy = side_copy(item)
    del copy.segments[:]
    copy.segments.extend(ready)
    return copy


def side_copy(item: ppb.WorkItem) -> ppb.WorkItem:
    """The item as the side stage sees it, with empty accumulators (so what it adds is known)."""
    copy = ppb.WorkItem()
    copy.CopyFrom(item)
    copy.ClearField("model_usage")
    copy.ClearField("counters")
    del copy.warnings[:]
    return copy


def merge_side(item: ppb.WorkItem, side: ppb.WorkItem) -> None:
    del item.chunks[:]
    item.chunks.extend(side.chunks)
    item.counters.embedded += side.counters.embedded
    item.counters.embed_cache_hits += side.counters.embed_cache_hits
    item.counters.ocr_pages += side.counters.ocr_pages
    item.counters.rendered_pages += side.counters.rendered_pages
    merge_usage(item.model_usage, side.model_usage)
    item.warnings.extend(w for w in side.warnings if w not in item.warnings)


def relation_lookahead_wanted(pipeline: Pipeline, models: ModelRuntime | None, item: ppb.WorkItem) -> bool:
    """Whether the extraction of `item` should start the miner ahead: a DEEP document whose plan
    has the miner, with endpoints for both extraction and relation typing."""
    if item.plan.tier != pb.TIER_DEEP or "miner" not in {s.name for s in pipeline.plan(item.plan.tier)}:
        return False
    return models is not None and models.serves("relation_typing") and models.serves(EXTRACTION)


class RelationTrigger:
    """When to start the relation look-ahead, told like a segment listener
    (:func:`osmose.models.context.bind_segment_listener`) after each extraction call: once, when
    most segments are answered (answered >= still pending) and the calls still to come fit in the
    relation endpoint's free slots (:attr:`osmose.models.backend.Backend.free`: this process's view,
    or the server's with ``load_source: metrics``)."""

    def __init__(self, models: ModelRuntime) -> None:
        targets = models.targets("relation_typing")
        self.backend: Backend | None = targets[0][1] if targets else None
        self.fired = False

    def fire(self, task: str, answers: Mapping[str, Sequence[Mapping[str, Any]]], pending: int
             ) -> dict[str, list[Mapping[str, Any]]] | None:
        """A snapshot of the answers so far when the look-ahead should start now, else None."""
        if self.fired or task != EXTRACTION or self.backend is None or pending == 0:
            return None
        if len(answers) < pending or pending > self.backend.free:
            return None  # most of the document still to come, or no idle slots to fill
        self.fired = True
        return {segment: list(items) for segment, items in answers.items()}


def miner_item(base: ppb.WorkItem, answers: Mapping[str, Sequence[Mapping[str, Any]]], extractor: object
               ) -> ppb.WorkItem:
    """`base` (a :func:`side_copy` of the extractor's input, changed in place) with the concepts the
    extractor would make of `answers` so far: the miner's look-ahead input."""
    from osmose.services.extractor.llm_extract import concepts_from_answers
    from osmose.services.extractor.segment_text import segment_texts

    segs = [s for s in segment_texts(base.document, base.segments) if s.slides]
    concepts = concepts_from_answers(segs, answers, language=base.plan.language or base.document.language,
                                     limits=getattr(extractor, "limits", None))
    del base.concepts[:]
    base.concepts.extend(concepts)
    return base
