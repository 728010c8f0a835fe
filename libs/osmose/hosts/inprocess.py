"""The in-process host: all six stages in one process on the embedded default.

The front door (triage) runs first and decides the tier; then the tier's plan
(:meth:`osmose.pipeline.Pipeline.plan`) runs in order, and the writer's calls are
serialised. Documents are independent: one that fails is reported and the others
go on. Two documents are in flight at a time so one's parsing overlaps another's
embedding; store writes are serialised (local Qdrant and SQLite have one writer).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from osmose.config import Settings
from osmose.errors import DocumentError, OsmoseError
from osmose.hosts.report import IngestReport, describe_error, fill_report
from osmose.pipeline import PIPELINE, Pipeline, Stage
from osmose.stage import PipelineStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb

if TYPE_CHECKING:  # built lazily, with the stores and models
    from osmose.query import Searcher

__all__ = ["InProcessPipeline", "ProgressCallback"]

logger = logging.getLogger(__name__)

#: called with (file index, stage name) when a document enters a stage, and (index, "done") at the end
ProgressCallback = Callable[[int, str], None]


class InProcessPipeline:
    """Owns the stores and the model for one data directory. Use as an async context manager."""

    def __init__(self, settings: Settings, *, max_in_flight: int = 2, pipeline: Pipeline = PIPELINE) -> None:
        from osmose.hosts.wiring import Resources

        self.settings = settings
        self.pipeline = pipeline
        self.max_in_flight = max_in_flight
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
                         progress: ProgressCallback | None = None) -> IngestReport:
        report = IngestReport(file=str(path))
        item = ppb.WorkItem(job_id=str(uuid.uuid4()), tenant=tenant, source_uri=str(path))
        item.document.file_name = path.name
        item.plan.tier = tier
        started = time.perf_counter()
        try:
            if not path.is_file():
                raise DocumentError(f"no such file: {path}", reason="not-found")
            decl: Stage | None = self.pipeline.front_door        # it decides the tier, so the plan is known after it
            while decl is not None:
                if progress:
                    progress(index, decl.name)
                stage = self.stages[decl.name]
                t0 = time.perf_counter()
                if decl.role == "writer":
                    async with self._write_lock:
                        item = await stage.process(item)
                else:
                    item = await stage.process(item)
                report.seconds[decl.name] = round(time.perf_counter() - t0, 3)
                decl = self.pipeline.next_stage(decl.name, item.plan.tier)
        except Exception as exc:  # one bad file must never stop the others
            if not isinstance(exc, OsmoseError):
                logger.exception("unexpected failure on %s", path)
            report.status, report.error = "error", describe_error(exc)[1]
        report.seconds["total"] = round(time.perf_counter() - started, 3)
        fill_report(report, item)
        if progress:
            progress(index, "done")
        return report

    async def ingest(self, paths: Sequence[Path], *, tenant: str, tier: pb.Tier = pb.TIER_UNSPECIFIED,
                     progress: ProgressCallback | None = None) -> AsyncIterator[IngestReport]:
        """Reports in input order, each as soon as it and all before it are done."""
        gate = asyncio.Semaphore(self.max_in_flight)

        async def run(i: int, path: Path) -> IngestReport:
            async with gate:
                return await self.ingest_one(path, tenant=tenant, tier=tier, index=i, progress=progress)

        tasks = [asyncio.create_task(run(i, p)) for i, p in enumerate(paths)]
        try:
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                task.cancel()
