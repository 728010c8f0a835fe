"""gRPC servicers of the stages: ``Process`` for direct calls; the writer's also Search and Stats.

``Process`` runs the stage on the given work item in this process, exactly as the
consumer does but without Kafka (tools, debugging, synchronous callers). Errors
become gRPC status codes whose message starts with the stable reason code, as in
the reports: INVALID_ARGUMENT for a rejected document, FAILED_PRECONDITION for a
configuration problem, UNAVAILABLE for a transient failure, INTERNAL otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from osmose.errors import ConfigurationError, OsmoseError, PermanentError, RetryableError
from osmose.hosts.report import describe_error
from osmose.hosts.service_worker import StageWorker
from osmose.pipeline import Stage
from osmose.query.stats import tenant_stats
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc

if TYPE_CHECKING:
    from osmose.hosts.wiring import Resources
    from osmose.query import Searcher

__all__ = ["add_stage_services", "status_of"]

logger = logging.getLogger(__name__)


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


class _WriterServicer(_StageServicer):
    """The writer's service also answers the query side (it is the process that opens the stores)."""

    def __init__(self, worker: StageWorker, resources: Resources) -> None:
        super().__init__(worker)
        self.resources = resources
        self._searcher: Searcher | None = None

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
        return spb.SearchResponse(hits=hits)

    async def Stats(self, request: spb.StatsRequest, context: grpc.aio.ServicerContext) -> spb.StatsResponse:
        try:
            return await tenant_stats(graph=self.resources.graph, vectors=self.resources.vectors,
                                      tenant=request.tenant or None)
        except Exception as exc:
            code, text = status_of(exc)
            await context.abort(code, text)
            raise  # unreachable: abort raises


def add_stage_services(server: grpc.aio.Server, stage: Stage, worker: StageWorker, resources: Resources) -> list[str]:
    """Register the declared stage's gRPC service, if it has one; returns the names registered
    (for health and reflection). The writer's service also carries Search and Stats."""
    if stage.grpc_service is None:
        return []
    servicer = _WriterServicer(worker, resources) if stage.role == "writer" else _StageServicer(worker)
    short = stage.grpc_service.rsplit(".", 1)[-1]
    register = getattr(sgrpc, f"add_{short}Servicer_to_server", None)
    if register is None:
        raise ValueError(f"stage {stage.name}: no gRPC service {stage.grpc_service} in osmose/v1/services.proto")
    register(servicer, server)
    return [stage.grpc_service]
