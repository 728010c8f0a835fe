"""gRPC servicers: the stages' ``Process`` (internal listener) and the query API (public listener).

``Process`` runs the stage on the given work item in this process, exactly as the
consumer does but without Kafka (tools, debugging, synchronous callers). Errors
become gRPC status codes whose message starts with the stable reason code, as in
the reports: INVALID_ARGUMENT for a rejected document, FAILED_PRECONDITION for a
configuration problem, UNAVAILABLE for a transient failure, INTERNAL otherwise.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import grpc

from osmose.bus.envelope import now_ms
from osmose.errors import ConfigurationError, DocumentError, OsmoseError, PermanentError, RetryableError
from osmose.hosts.job_ledger import JobLedger, erasure_job
from osmose.hosts.report import describe_error
from osmose.hosts.service_worker import StageWorker
from osmose.pipeline import Stage
from osmose.query.erase import erase_document, erase_tenant
from osmose.query.stats import tenant_stats
from osmose.security import AuthenticationError, PermissionDeniedError, Principal, audit, current_principal
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc

if TYPE_CHECKING:
    from osmose.hosts.service_listeners import Listeners
    from osmose.hosts.wiring import Resources
    from osmose.query import Searcher

__all__ = ["MAX_SEARCH_LIMIT", "QUERY_SERVICE", "QueryServicer", "add_stage_services", "status_of"]

QUERY_SERVICE = "osmose.v1.QueryService"
#: hits one Search returns at most, whatever the request asks
MAX_SEARCH_LIMIT = 100
#: a document id as Submit returns it (32 hex digits; up to a whole sha256)
_DOC_ID = re.compile(r"[0-9a-f]{1,64}")
T = TypeVar("T")

logger = logging.getLogger(__name__)


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    _, text = describe_error(exc)
    if isinstance(exc, AuthenticationError):
        return grpc.StatusCode.UNAUTHENTICATED, text
    if isinstance(exc, PermissionDeniedError):
        return grpc.StatusCode.PERMISSION_DENIED, text
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


class QueryServicer(sgrpc.QueryServiceServicer):
    """The query API on the public listener: every request acts on the caller's own tenant
    (another one only for an admin), and is audited."""

    def __init__(self, resources: Resources, *, ledger: JobLedger | None = None) -> None:
        self.resources = resources
        #: publishes the erasure jobs (the persister's job ledger; None: no job topic, audit only)
        self.ledger = ledger
        self._searcher: Searcher | None = None

    async def _run(self, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except Exception as exc:
            if not isinstance(exc, OsmoseError):
                logger.exception("query failed")
            code, text = status_of(exc)
            await context.abort(code, text)
            raise  # unreachable: abort raises

    async def Search(self, request: spb.SearchRequest, context: grpc.aio.ServicerContext) -> spb.SearchResponse:
        async def search() -> spb.SearchResponse:
            principal = current_principal()
            tenant = principal.tenant_for(request.tenant)
            if not tenant:
                raise PermissionDeniedError("missing-tenant: a search names its tenant")
            if self._searcher is None:
                self._searcher = self.resources.searcher()
            limit = min(request.limit or 5, MAX_SEARCH_LIMIT)
            hits = await self._searcher.search(request.query, tenant=tenant, limit=limit)
            audit("search", principal, tenant=tenant, hits=len(hits))
            return spb.SearchResponse(hits=hits)

        return await self._run(context, search)

    async def Stats(self, request: spb.StatsRequest, context: grpc.aio.ServicerContext) -> spb.StatsResponse:
        async def stats() -> spb.StatsResponse:
            principal = current_principal()
            # No tenant named: the caller's own; every tenant only for an admin (or the local CLI).
            tenant = principal.tenant_for(request.tenant) if request.tenant or not principal.admin else None
            audit("stats", principal, tenant=tenant or "*")
            return await tenant_stats(graph=self.resources.graph, vectors=self.resources.vectors, tenant=tenant)

        return await self._run(context, stats)

    async def DeleteDocument(self, request: spb.DeleteDocumentRequest,
                             context: grpc.aio.ServicerContext) -> spb.DeleteResponse:
        async def delete() -> spb.DeleteResponse:
            principal = current_principal()
            tenant = principal.tenant_for(request.tenant)
            if not tenant or not request.doc_id:
                raise PermissionDeniedError("missing-document: name the tenant and the document")
            if not _DOC_ID.fullmatch(request.doc_id):
                raise DocumentError("not a document id (hex digits, as Submit returns it)", reason="bad-document-id")
            return await self._erasure("delete-document", principal, tenant, request.doc_id, lambda: erase_document(
                graph=self.resources.graph, vectors=self.resources.vectors, tenant=tenant, doc_id=request.doc_id,
                caches=self.resources.document_cache_erasers(), blobs=self.resources.blobs.erase_document))

        return await self._run(context, delete)

    async def DeleteTenant(self, request: spb.DeleteTenantRequest,
                           context: grpc.aio.ServicerContext) -> spb.DeleteResponse:
        async def delete() -> spb.DeleteResponse:
            principal = current_principal()
            principal.require_admin("deleting a tenant")
            if not request.tenant:
                raise PermissionDeniedError("missing-tenant: name the tenant to delete")
            return await self._erasure("delete-tenant", principal, request.tenant, "", lambda: erase_tenant(
                graph=self.resources.graph, vectors=self.resources.vectors, tenant=request.tenant,
                caches=self.resources.cache_erasers(), blobs=self.resources.blobs.erase_tenant))

        return await self._run(context, delete)

    async def _erasure(self, action: str, principal: Principal, tenant: str, doc_id: str,
                       erase: Callable[[], Awaitable[spb.DeleteResponse]]) -> spb.DeleteResponse:
        """Run one erasure as a job: audited (who, which tenant and document, the counts; never
        text) and, with a job ledger, published as a terminal job snapshot that GetJob answers."""
        job_id, started = str(uuid.uuid4()), now_ms()
        try:
            response = await erase()
        except Exception as exc:
            job = erasure_job(job_id=job_id, action=action, tenant=tenant, doc_id=doc_id, started_ms=started, error=exc)
            audit(action, principal, tenant=tenant, outcome="failed", job_id=job_id, doc_id=doc_id or None,
                  reason=job.reason)
            if self.ledger is not None:
                try:
                    await self.ledger.erasure(job)
                except OsmoseError as publish_error:   # the erasure's own error is the one to report
                    logger.warning("erasure job %s: status not published: %s", job_id, publish_error)
            raise
        response.job_id = job_id
        audit(action, principal, tenant=tenant, job_id=job_id, doc_id=doc_id or None, documents=response.documents,
              chunks=response.chunks, cache_entries=response.cache_entries, blobs=response.blobs)
        if self.ledger is not None:
            await self.ledger.erasure(erasure_job(job_id=job_id, action=action, tenant=tenant, doc_id=doc_id,
                                                  started_ms=started, response=response))
        return response


def add_stage_services(listeners: Listeners, stage: Stage, worker: StageWorker, resources: Resources) -> None:
    """Register the declared stage's Process service (internal listener), and with the writer the
    query service (public listener)."""
    if stage.grpc_service is not None:
        short = stage.grpc_service.rsplit(".", 1)[-1]
        register = getattr(sgrpc, f"add_{short}Servicer_to_server", None)
        if register is None:
            raise ValueError(f"stage {stage.name}: no gRPC service {stage.grpc_service} in osmose/v1/services.proto")
        servicer = _StageServicer(worker)
        listeners.add_internal(stage.grpc_service, lambda server: register(servicer, server))
    if stage.role == "writer":
        query = QueryServicer(resources, ledger=worker.bus.ledger)
        listeners.add_public(QUERY_SERVICE, lambda server: sgrpc.add_QueryServiceServicer_to_server(query, server))
