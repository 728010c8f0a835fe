"""gRPC servicers of the stages: ``Process`` for direct calls, the persister's Search and Stats.

``Process`` runs the stage on the given work item in this process, exactly as the
consumer does but without Kafka (tools, debugging, synchronous callers). Errors
become gRPC status codes whose message starts with the stable reason code, as in
the reports: INVALID_ARGUMENT for a rejected document, FAILED_PRECONDITION for a
configuration problem, UNAVAILABLE for a transient failure, INTERNAL otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from osmose.errors import ConfigurationError, OsmoseError, PermanentError, RetryableError
from osmose.hosts.service_jobs import describe_error
from osmose.hosts.service_worker import StageWorker
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc

__all__ = ["add_stage_services", "service_name", "status_of"]

logger = logging.getLogger(__name__)


def service_name(stage: str) -> str:
    """Fully qualified gRPC service of a stage, e.g. ``osmose.v1.TriageService``."""
    return f"osmose.v1.{stage.capitalize()}Service"


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    _, text = describe_error(exc)
    if isinstance(exc, PermanentError):
        return grpc.StatusCode.INVALID_ARGUMENT, text
    if isinstance(exc, ConfigurationError):
        return grpc.StatusCode.FAILED_PRECONDITION, text
    if isinstance(exc, RetryableError):
        return grpc.StatusCode.UNAVAILABLE, text
    return grpc.StatusCode.INTERNAL, text


class _StageServicer:
    def __init__(self, worker: StageWorker) -> None:
        self.worker = worker

    async def Process(self, request: ppb.WorkItem, context: grpc.aio.ServicerContext) -> ppb.WorkItem:
        try:
            return await self.worker.run_stage(request)
        except Exception as exc:
            if not isinstance(exc, OsmoseError):
                logger.exception("%s: Process failed", self.worker.name)
            code, text = status_of(exc)
            await context.abort(code, text)
            raise  # unreachable: abort raises


class _PersisterServicer(_StageServicer):
    def __init__(self, worker: StageWorker, resources: Any) -> None:
        super().__init__(worker)
        self.resources = resources
        self._searcher = None

    async def Search(self, request: spb.SearchRequest, context: grpc.aio.ServicerContext) -> spb.SearchResponse:
        if not request.tenant:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing-tenant: a search names its tenant")
        if self._searcher is None:
            self._searcher = self.resources.searcher()
        try:
            hits = await self._searcher.search(request.query, tenant=request.tenant, limit=request.limit or 5)
        except Exception as exc:
            code, text = status_of(exc)
            await context.abort(code, text)
        return spb.SearchResponse(hits=[
            spb.SearchHit(doc_id=h.doc_id, file=h.file, slide=h.slide, score=h.score, text=h.text,
                          concepts=h.concepts, related=[
                              spb.RelatedConcept(
                                  name=r.name, canonical_key=r.canonical_key, kind=r.kind, weight=r.weight,
                                  via=r.via, slides=[spb.SupportingSlide(doc_id=x.doc_id, file=x.file,
                                                                         slide=x.slide, title=x.title)
                                                     for x in r.slides])
                              for r in h.related])
            for h in hits])

    async def Stats(self, request: spb.StatsRequest, context: grpc.aio.ServicerContext) -> spb.StatsResponse:
        tenant = request.tenant or None
        try:
            counts = await self.resources.graph.stats(tenant)
            chunks = await self.resources.vectors.count(tenant)
        except Exception as exc:
            code, text = status_of(exc)
            await context.abort(code, text)
        response = spb.StatsResponse()
        for name in sorted(set(counts) | set(chunks)):
            c = counts.get(name)
            response.tenants.add(
                tenant=name, documents=c.documents if c else 0, slides=c.slides if c else 0,
                segments=c.segments if c else 0, concepts=c.concepts if c else 0,
                relations=c.relations if c else 0, chunks=chunks.get(name, 0))
        return response


def add_stage_services(server: grpc.aio.Server, worker: StageWorker, resources: Any) -> str:
    """Register the stage's service; returns its full name (for health and reflection)."""
    name = worker.name
    servicer = _PersisterServicer(worker, resources) if name == "persister" else _StageServicer(worker)
    register = getattr(sgrpc, f"add_{name.capitalize()}ServiceServicer_to_server")
    register(servicer, server)
    return service_name(name)
