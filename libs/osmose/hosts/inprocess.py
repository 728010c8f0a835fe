"""The in-process host: all six stages in one process on the embedded default.

The front door (triage) runs first and decides the tier; then the tier's plan
(:meth:`osmose.pipeline.Pipeline.plan`) runs in order, and the writer's calls are
serialised. Documents are independent: one that fails is reported and the others
go on; store writes are serialised (local Qdrant and SQLite have one writer).

Keeping the model pool busy (see README, "Keeping the GPU pool saturated"):

* documents in flight derive from the backends' capacity — the router's chat slots x
  ``documents_per_slot`` (at least 2; 2 without model endpoints, where the work is CPU-bound);
* each document's model calls wait for backend slots in the document's order (its
  priority class, then older documents first), so documents finish in the order they
  started and their CPU stages overlap the pool's work on the next ones;
* no barrier between independent stages of one document: the embedder (chunks and
  vectors of the slide text) runs alongside the extractor on its own copy of the work
  item, and its fields are merged back before the miner; the result is the staged run's;
* relation typing looks ahead (DEEP): when the extraction's last calls are decoding and
  slots are free, the miner runs on a copy of the item with the concepts answered so far;
  its relation calls are remembered per segment under their content (the model cache),
  so the real miner, run after the extraction as before, recalls every question that came
  out the same and asks only those that changed. The graph is the staged run's by
  construction; a wrong guess costs calls, never results.

Preview (``preview=True``, ``osmose ingest --preview``, or ``OSMOSE_PREVIEW_MIN_PAGES``): the
front door plans a FAST pass first; once the writer has persisted it the document is
searchable (progress ``"searchable"``, ``seconds["searchable"]`` in the report) and the same
work item goes on as its enrichment pass (:func:`osmose.pipeline.begin_enrichment`): parse
and plan reused, embeddings of identical chunks and every model answer from the caches. In a
backlog (:meth:`InProcessPipeline.ingest`), a searchable document hands its document slot to the
next one's preview pass and waits for an enrichment slot (as many): the backlog becomes
searchable first and is enriched behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osmose.cache import document_scope
from osmose.config import Settings
from osmose.errors import DocumentError, OsmoseError
from osmose.hosts.report import IngestReport, describe_error, fill_report
from osmose.hosts.streaming import (
    RelationTrigger,
    extraction_ahead_of_vision,
    merge_side,
    miner_item,
    relation_lookahead_wanted,
    side_copy,
    side_stage_of,
)
from osmose.models.context import (
    PREMIUM_PRIORITY,
    CallOrder,
    bind_call_order,
    bind_segment_listener,
    current_call_order,
)
from osmose.models.limits import PriorityGate
from osmose.models.usage import merge_usage
from osmose.pipeline import PIPELINE, Pipeline, Stage, begin_enrichment
from osmose.stage import PipelineStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb

if TYPE_CHECKING:  # built lazily, with the stores and models
    from osmose.models import ModelRuntime
    from osmose.query import Searcher

__all__ = ["InProcessPipeline", "ProgressCallback"]

logger = logging.getLogger(__name__)

#: called with (file index, stage name) when a document enters a stage, (index, "searchable") when
#: a preview's FAST pass is persisted, and (index, "done") at the end
ProgressCallback = Callable[[int, str], None]

def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _RelationLookahead:
    """Starts the miner on the concepts answered so far while the extraction's last calls decode
    (see the module docstring). Told by :func:`osmose.models.structured.ask_segments` after each call."""

    def __init__(self, host: InProcessPipeline, item: ppb.WorkItem, models: ModelRuntime) -> None:
        self.host = host
        self.item = side_copy(item)
        self.task: asyncio.Task[ppb.ModelUsage] | None = None
        self.trigger = RelationTrigger(models)

    def __call__(self, task: str, answers: Mapping[str, Sequence[Mapping[str, Any]]], pending: int) -> None:
        snapshot = self.trigger.fire(task, answers, pending)
        if snapshot is not None:
            self.task = asyncio.create_task(self._run(snapshot))

    async def _run(self, answers: dict[str, list[Mapping[str, Any]]]) -> ppb.ModelUsage:
        item = miner_item(self.item, answers, self.host.stages["extractor"])
        item = await self.host.stages["miner"].process(item)
        return item.model_usage

    async def settle(self, item: ppb.WorkItem) -> None:
        """Waits for the look-ahead (its calls are the miner's next ones) and charges its calls."""
        if self.task is None:
            return
        try:
            usage = await self.task
        except Exception as exc:  # a guess that failed costs nothing but its calls
            logger.info("relation look-ahead failed: %s", exc)
            return
        merge_usage(item.model_usage, usage)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def model_work(item: ppb.WorkItem) -> int:
    """A triaged document's model calls before packing (triage's own estimate, by the tier it is
    enriched to): what admission to the pool orders by."""
    from osmose.services.triage.budget import WorkEstimate

    estimate = WorkEstimate(characters=0, vision_slides=item.plan.vision_slides, segments=len(item.segments))
    return estimate.model_calls(item.plan.enrich_tier or item.plan.tier)


class InProcessPipeline:
    """Owns the stores and the model for one data directory. Use as an async context manager."""

    def __init__(self, settings: Settings, *, max_in_flight: int | None = None, pipeline: Pipeline = PIPELINE,
                 streaming: bool = True) -> None:
        from osmose.hosts.wiring import Resources

        self.settings = settings
        self.pipeline = pipeline
        self._max_in_flight = max_in_flight
        self.streaming = streaming  # False: every stage after the previous one (the staged run)
        self.resources = Resources(settings)
        self._stages: dict[str, PipelineStage] | None = None
        self._searcher: Searcher | None = None
        self._write_lock = asyncio.Lock()

    # -- wiring (decided in osmose.hosts.wiring, shared with the service host) --------------------

    @property
    def graph(self):
        return self.resources.graph

    @property
    def vectors(self):
        return self.resources.vectors

    @property
    def max_in_flight(self) -> int:
        """Documents in flight: as given, else derived from the model backends' capacity."""
        if self._max_in_flight is not None:
            return self._max_in_flight
        return self.resources.documents_in_flight()

    @property
    def stages(self) -> dict[str, PipelineStage]:
        if self._stages is None:
            from osmose.hosts.wiring import build_stages

            self._stages = build_stages(self.resources, pipeline=self.pipeline)
        return self._stages

    async def __aenter__(self) -> InProcessPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.resources.close()
        self._stages = None
        self._searcher = None

    # -- queries ------------------------------------------------------------------------------------

    async def search(self, query: str, *, tenant: str, limit: int) -> list[spb.SearchHit]:
        if self._searcher is None:
            self._searcher = self.resources.searcher()
        return await self._searcher.search(query, tenant=tenant, limit=limit)

    async def stats(self, tenant: str | None = None) -> dict[str, dict[str, int]]:
        """Counts per tenant: graph counts plus the chunks in the vector index."""
        from osmose.query import stats_as_table, tenant_stats

        return stats_as_table(await tenant_stats(graph=self.graph, vectors=self.vectors, tenant=tenant))

    # -- ingestion ----------------------------------------------------------------------------------

    async def ingest_one(self, path: Path, *, tenant: str, tier: pb.Tier = pb.TIER_UNSPECIFIED, index: int = 0,
                         progress: ProgressCallback | None = None, premium: bool = False,
                         order: int | None = None, preview: bool = False,
                         on_searchable: Callable[[], Awaitable[None]] | None = None,
                         admit: Callable[[ppb.WorkItem], Awaitable[int]] | None = None) -> IngestReport:
        """One document; `order` (default `index`) is its place in the queue for backend slots.
        `preview`: searchable at FAST first, then enriched to its tier (module docstring);
        `on_searchable` is awaited between the two passes. `admit`, awaited with the triaged
        item, returns when the document may go on, with its place in the queue (a backlog's)."""
        call_order = CallOrder(priority=PREMIUM_PRIORITY if premium else 0, order=index if order is None else order)
        with bind_call_order(call_order):
            return await self._ingest_one(path, tenant=tenant, tier=tier, index=index, progress=progress,
                                          preview=preview, on_searchable=on_searchable, admit=admit)

    async def _run_stage(self, decl: Stage, item: ppb.WorkItem) -> ppb.WorkItem:
        stage = self.stages[decl.name]
        # document_scope: the cache entries used for this document are marked for its erasure
        with document_scope(item.tenant, item.document.doc_id):
            if decl.role == "writer":
                async with self._write_lock:
                    return await stage.process(item)
            return await stage.process(item)

    async def _ingest_one(self, path: Path, *, tenant: str, tier: pb.Tier, index: int,
                          progress: ProgressCallback | None, preview: bool = False,
                          on_searchable: Callable[[], Awaitable[None]] | None = None,
                          admit: Callable[[ppb.WorkItem], Awaitable[int]] | None = None) -> IngestReport:
        report = IngestReport(file=str(path))
        admitted = contextlib.ExitStack()
        waited = 0.0
        item = ppb.WorkItem(job_id=str(uuid.uuid4()), tenant=tenant, source_uri=str(path))
        item.document.file_name = path.name
        item.plan.tier = tier
        item.plan.preview = preview
        started = time.perf_counter()
        try:
            if not path.is_file():
                raise DocumentError(f"no such file: {path}", reason="not-found")
            decl: Stage | None = self.pipeline.front_door        # it decides the tier, so the plan is known after it
            side: asyncio.Task[tuple[ppb.WorkItem, float]] | None = None
            extraction_ahead: asyncio.Task[ppb.ModelUsage] | None = None
            while decl is not None:
                if progress:
                    progress(index, decl.name)
                following = side_stage_of(self.pipeline, decl.name, item.plan.tier) if self.streaming else None
                if following is not None and decl.role != "writer":
                    side = asyncio.create_task(self._timed(following, side_copy(item)))
                lookahead = self._lookahead(decl, item)
                if self.streaming and extraction_ahead is None:
                    ahead_item = extraction_ahead_of_vision(self.pipeline, self.resources.models, decl.name, item)
                    if ahead_item is not None:   # the segments vision does not touch: extracted meanwhile
                        extraction_ahead = asyncio.create_task(self._ahead("extractor", ahead_item))
                t0 = time.perf_counter()
                try:
                    if decl.name == "extractor" and extraction_ahead is not None:
                        # Its answers first: the extractor then recalls them (asked while they are still
                        # in flight, differently packed, they would be asked twice); its calls are charged.
                        merge_usage(item.model_usage, await extraction_ahead)
                        extraction_ahead = None
                    with bind_segment_listener(lookahead):
                        item = await self._run_stage(decl, item)
                    if lookahead is not None:
                        await lookahead.settle(item)
                except BaseException:
                    for task in (side, lookahead, extraction_ahead):
                        if task is not None:
                            task.cancel()
                    raise
                report.seconds[decl.name] = round(time.perf_counter() - t0, 3)
                if side is not None:
                    side_item, seconds = await side
                    merge_side(item, side_item)
                    assert following is not None
                    report.seconds[following.name] = seconds
                    side, decl = None, following  # done alongside: go on after it
                if admit is not None and decl is self.pipeline.front_door:
                    t0 = time.perf_counter()
                    order = await admit(item)   # parsed: wait for a document slot
                    waited = time.perf_counter() - t0
                    admitted.enter_context(bind_call_order(CallOrder(priority=current_call_order().priority,
                                                                     order=order)))
                after = self.pipeline.next_stage(decl.name, item.plan.tier)
                if after is None and item.plan.enrich_tier:   # the preview pass is persisted
                    report.seconds["searchable"] = round(time.perf_counter() - started, 3)
                    if progress:
                        progress(index, "searchable")
                    if on_searchable is not None:
                        await on_searchable()
                    after = begin_enrichment(item, self.pipeline)
                decl = after
        except Exception as exc:  # one bad file must never stop the others
            if not isinstance(exc, OsmoseError):
                logger.exception("unexpected failure on %s", path)
            report.status, report.error = "error", describe_error(exc)[1]
        finally:
            admitted.close()
        report.seconds["total"] = round(time.perf_counter() - started - waited, 3)
        fill_report(report, item)
        if progress:
            progress(index, "done")
        return report

    def _lookahead(self, decl: Stage, item: ppb.WorkItem) -> _RelationLookahead | None:
        """A relation look-ahead for the extractor of a DEEP document whose miner types relations."""
        models = self.resources.models
        if not self.streaming or decl.name != "extractor" or models is None:
            return None
        if not relation_lookahead_wanted(self.pipeline, models, item):
            return None
        return _RelationLookahead(self, item, models)

    async def _ahead(self, stage: str, item: ppb.WorkItem) -> ppb.ModelUsage:
        """`stage` on a look-ahead copy: only its model calls count (the caches keep the answers)."""
        try:
            return (await self._run_stage(self.pipeline[stage], item)).model_usage
        except Exception as exc:  # a look-ahead that failed costs nothing but its calls
            logger.info("%s look-ahead failed: %s", stage, exc)
            return ppb.ModelUsage()

    async def _timed(self, decl: Stage, item: ppb.WorkItem) -> tuple[ppb.WorkItem, float]:
        t0 = time.perf_counter()
        item = await self._run_stage(decl, item)
        return item, round(time.perf_counter() - t0, 3)

    async def ingest(self, paths: Sequence[Path], *, tenant: str, tier: pb.Tier = pb.TIER_UNSPECIFIED,
                     progress: ProgressCallback | None = None, premium: bool = False,
                     preview: bool = False) -> AsyncIterator[IngestReport]:
        """Reports in input order, each as soon as it and all before it are done. `premium`:
        the documents' model calls go before other work's, in this process and (with
        ``priority_scheduling`` on the endpoint) in vLLM's queue. `preview`: see :meth:`ingest_one`."""
        # Documents are parsed ahead of the pool (at most as many as are in flight) and admitted
        # by the most model work first (triage's estimate), so the end of a backlog is the
        # documents with the least work left: small ones that fill the pool's last slots, not
        # one long chain decoding alone. Parsing ahead also takes it off the next document's path.
        ahead = asyncio.Semaphore(self.max_in_flight)
        gate = PriorityGate(self.max_in_flight)   # the waiting document with the most model work first
        # With previews, a searchable document hands its slot to the next document's preview pass
        # and takes one of as many enrichment slots: a backlog is searchable first, enriched after.
        enriching = asyncio.Semaphore(self.max_in_flight)
        admissions = itertools.count()

        async def run(i: int, path: Path, rank: int) -> IngestReport:
            held: list[asyncio.Semaphore | PriorityGate] = []

            async def admit(item: ppb.WorkItem) -> int:
                held.remove(ahead)
                ahead.release()
                await gate.acquire((-model_work(item), rank))
                held.append(gate)
                return next(admissions)

            async def hand_over() -> None:
                await enriching.acquire()
                held.append(enriching)
                held.remove(gate)
                gate.release()

            await ahead.acquire()
            held.append(ahead)
            try:
                return await self.ingest_one(path, tenant=tenant, tier=tier, index=i, progress=progress,
                                             premium=premium, order=rank, preview=preview, on_searchable=hand_over,
                                             admit=admit)
            finally:
                for slot in held:
                    slot.release()

        # Started (parsed) largest file first; reports still come in input order.
        tasks: list[asyncio.Task[IngestReport]] = [None] * len(paths)  # type: ignore[list-item]
        for rank, i in enumerate(sorted(range(len(paths)), key=lambda i: -_size(paths[i]))):
            tasks[i] = asyncio.create_task(run(i, paths[i], rank))
        try:
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                task.cancel()
