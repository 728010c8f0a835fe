"""The ingestion front door (IngestionService), hosted with triage.

Submit stores the file in the blob store (claim check) while it streams in,
enforcing the size limit as bytes arrive, then publishes the triage envelope and the
job's queued snapshot, and returns the job id: it never waits for the pipeline. GetJob,
WatchJob and Cancel answer from the job table every replica rebuilds from the
compacted job topic, so a client may ask any replica about any job.

Idempotent and atomic Submit:

- With an ``idempotency_key`` in the header the job id is derived from the tenant and
  the key (UUIDv5), so a retry names the same job: a replica that knows it answers with
  it (``existing``) and publishes nothing; the same key with another file's content is
  refused (ALREADY_EXISTS, idempotency-conflict). A retry that reaches a replica that has
  not seen the first yet publishes the same job again: a duplicate delivery of one job,
  which the pipeline absorbs like any redelivery (same ids, upserts; readers order the
  job's snapshots), never a second job.
- The envelope is published *before* the queued snapshot. Kafka cannot write both
  atomically without transactions (which kafka-python's consumers here do not read with
  read_committed), so the order decides what a crash in between leaves: an envelope
  without a snapshot is no orphan (triage picks it up and its "entered" snapshot creates
  the job; readers order snapshots by progress, so a late "queued" is ignored), whereas
  a snapshot without an envelope would be a job queued forever.
- Submit streams are bounded: at most ``max_streams`` Submit/WatchJob streams at once per
  process (RESOURCE_EXHAUSTED, too-many-streams, beyond), and a Submit stream that sends
  nothing for ``submit_idle_timeout_s`` is ended (DEADLINE_EXCEEDED, idle-timeout) and its
  partial blob discarded.

Status codes (the message starts with a reason code):
INVALID_ARGUMENT (missing-header, bad-header, bad-request, invalid-tenant, missing-job-id),
RESOURCE_EXHAUSTED (too-large, too-many-streams, quota-concurrent-jobs, quota-documents-per-day),
NOT_FOUND (unknown-job, blob-not-found), ALREADY_EXISTS (idempotency-conflict), DEADLINE_EXCEEDED (idle-timeout),
FAILED_PRECONDITION (already-ended: Cancel of a finished job), UNAVAILABLE (starting:
the job table is still being rebuilt; the broker did not acknowledge).
Deadlines: Submit publishes within the call's remaining time; WatchJob streams until
the job ends or the client's deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import PurePath

import grpc
from google.protobuf.message import DecodeError

from osmose.bus.blobs import digest_of
from osmose.bus.envelope import now_ms
from osmose.bus.exceptions import BusError
from osmose.bus.jobs import is_terminal
from osmose.bus.trace import TraceContext, child_of, parse
from osmose.config import Settings
from osmose.errors import ConfigurationError
from osmose.hosts.service_worker import ServiceBus
from osmose.ids import NAMESPACE
from osmose.security import LOCAL_PRINCIPAL, PermissionDeniedError, Principal, audit, current_principal
from osmose.security.quotas import QuotaBook, QuotaExceededError
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc

__all__ = ["IngestionServicer", "MAX_FILE", "MAX_FILE_NAME", "MAX_IDEMPOTENCY_KEY", "SERVICE_NAME", "enqueue",
           "idempotent_job_id"]

logger = logging.getLogger(__name__)

SERVICE_NAME = "osmose.v1.IngestionService"
#: bounds of the Submit header's names (a file name; the path as the client named it)
MAX_FILE_NAME = 255
MAX_FILE = 1024
MAX_IDEMPOTENCY_KEY = 128
#: Bidi embeddings, overrides and isolates ("invoice\u202excod.pptx" shows as "invoicexdoc.pptx"...): refused
#: in names. Marks (U+200E/F) and joiners (U+200C/D) stay allowed: right-to-left and Persian names use them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: how long WatchJob waits for a job it does not know yet (Submit on another replica)
_UNKNOWN_JOB_GRACE_S = 5.0


def _event(job: epb.Job) -> spb.JobEvent:
    return spb.JobEvent(job_id=job.job_id, stage=job.stage, event=job.event, job=job)


def idempotent_job_id(tenant: str, key: str) -> str:
    """The job id of a Submit with an idempotency key: the same for every retry of it."""
    return str(uuid.uuid5(NAMESPACE, f"submit\x1f{tenant}\x1f{key}"))


class IdempotencyConflict(Exception):
    """The idempotency key names a job of another file."""


async def enqueue(bus: ServiceBus, header: spb.SubmitHeader, ref: str, trace: TraceContext, *,
                  first_stage: str, timeout_s: float, plan: str = "") -> spb.SubmitResponse:
    """Queue the job of a checked header whose file is blob `ref`: the envelope first, then the
    queued snapshot (see the module docstring). Raises :class:`BusError` or :class:`TimeoutError`
    when the broker does not acknowledge, :class:`IdempotencyConflict` for a reused key."""
    doc_id = digest_of(ref)[:32]
    if header.idempotency_key:
        job_id = idempotent_job_id(header.tenant, header.idempotency_key)
        known = bus.jobs.get(job_id)
        if known is not None:
            if known.doc_id != doc_id:
                raise IdempotencyConflict(f"idempotency-conflict: key {header.idempotency_key!r} named job {job_id} "
                                          "of another file")
            return spb.SubmitResponse(job_id=job_id, doc_id=known.doc_id, existing=True)
    else:
        job_id = str(uuid.uuid4())
    file_name = PurePath(header.file_name).name
    envelope = epb.Envelope(
        job_id=job_id, doc_id=doc_id, tenant=header.tenant,
        tier=header.tier, priority=header.priority or epb.PRIORITY_BULK, created_at_ms=now_ms(),
        stage=first_stage, file=header.file or file_name, plan=plan)
    item = ppb.WorkItem(job_id=envelope.job_id, tenant=envelope.tenant, source_uri=ref)
    item.document.file_name = file_name
    item.plan.tier = header.tier
    queued = epb.Envelope()
    queued.CopyFrom(envelope)   # pack() fills the body of the one it publishes
    await asyncio.wait_for(bus.publish_work(envelope, item, trace), timeout_s)
    await asyncio.wait_for(bus.ledger.queued(queued, item, trace), timeout_s)
    return spb.SubmitResponse(job_id=envelope.job_id, doc_id=envelope.doc_id)


class IngestionServicer(sgrpc.IngestionServiceServicer):
    def __init__(self, *, bus: ServiceBus, settings: Settings, ready: Callable[[], bool],
                 quotas: QuotaBook | None = None) -> None:
        self.bus = bus
        #: the plans' quotas (None: not enforced, e.g. a servicer in a unit test)
        self.quotas = quotas
        self.settings = settings
        self.ready = ready
        self.first_stage = bus.pipeline.front_door.name
        self._streams = 0

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        limit = self.bus.config.request_timeout_s
        return max(0.1, min(limit, remaining)) if remaining is not None else limit

    @staticmethod
    def _trace(context: grpc.aio.ServicerContext) -> TraceContext:
        for key, value in context.invocation_metadata() or ():
            if key == "traceparent":
                return child_of(parse(value))
        return child_of(None)

    # -- Submit ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _stream_slot(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """One of the process's `max_streams` Submit/WatchJob streams, or RESOURCE_EXHAUSTED."""
        if self._streams >= self.settings.max_streams:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"too-many-streams: {self._streams} Submit/WatchJob streams are open; retry later")
        self._streams += 1
        try:
            yield
        finally:
            self._streams -= 1

    async def _requests(self, request_iterator: AsyncIterator[spb.SubmitRequest],
                        context: grpc.aio.ServicerContext) -> AsyncIterator[spb.SubmitRequest]:
        """The stream's messages; a client silent for `submit_idle_timeout_s` is cut off."""
        idle = self.settings.submit_idle_timeout_s
        iterator = aiter(request_iterator)
        while True:
            try:
                request = await asyncio.wait_for(anext(iterator), idle)
            except StopAsyncIteration:
                return
            except TimeoutError:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"idle-timeout: nothing received for {idle:g} s")
            yield request

    async def Submit(self, request_iterator: AsyncIterator[spb.SubmitRequest],
                     context: grpc.aio.ServicerContext) -> spb.SubmitResponse:
        async with self._stream_slot(context):
            return await self._submit(request_iterator, context)

    async def _submit(self, request_iterator: AsyncIterator[spb.SubmitRequest],
                      context: grpc.aio.ServicerContext) -> spb.SubmitResponse:
        limit = self.settings.limits.max_file_bytes
        header: spb.SubmitHeader | None = None
        writer = None
        ref = ""
        try:
            async for request in self._requests(request_iterator, context):
                part = request.WhichOneof("part")
                if header is None:
                    if part != "header":
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                            "missing-header: the first message must be a SubmitHeader")
                    header = request.header
                    await self._check_header(header, context)
                    if not header.blob_ref:
                        writer = self.bus.blobs.writer()
                    continue
                if part != "chunk" or writer is None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                        "bad-header: one header, then file chunks (none with a blob_ref)")
                if writer.size + len(request.chunk) > limit:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"too-large: file is above the limit of {limit:,} bytes")
                await asyncio.to_thread(writer.write, request.chunk)
            if header is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing-header: empty request")
            if header.blob_ref:
                ref = header.blob_ref
            elif writer is not None:   # always, when the header named no blob
                ref = await asyncio.to_thread(writer.commit)
            writer = None
            if header.tenant:   # the ownership index erasure reads (blobs are shared by content)
                await asyncio.to_thread(self.bus.blobs.claim, ref, header.tenant, digest_of(ref)[:32])
        except DecodeError as exc:  # bytes that are not a SubmitRequest: the client's fault, not UNKNOWN
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad-request: not a SubmitRequest ({exc})")
        finally:
            if writer is not None:
                writer.abort()
        return await self._enqueue(header, ref, context)

    async def _check_header(self, header: spb.SubmitHeader, context: grpc.aio.ServicerContext) -> None:
        """Validates the header and applies the caller's entitlements to it: the tenant is the
        credential's (another is refused), the tier must be in its plan, the lane is its plan's."""
        limit = self.settings.limits.max_file_bytes
        if header.tier not in pb.Tier.values():  # first: the plan's check_tier names the tier (ValueError)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad-header: unknown tier {header.tier}")
        principal = current_principal()
        try:
            header.tenant = principal.tenant_for(header.tenant) or self.settings.tenant
            principal.plan.check_tier(header.tier)
        except PermissionDeniedError as exc:
            audit("submit", principal, tenant=header.tenant, outcome="denied")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        if principal.method != LOCAL_PRINCIPAL.method:
            # The lane comes from the plan, never from the client's claim (no caller can starve bulk work).
            header.priority = principal.plan.priority
            if header.blob_ref and not principal.admin:   # an existing hash would answer differently: an oracle
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    "permission-denied: submitting by blob reference needs the admin role")
        for field, value, longest in (("file_name", header.file_name, MAX_FILE_NAME), ("file", header.file, MAX_FILE),
                                      ("idempotency_key", header.idempotency_key, MAX_IDEMPOTENCY_KEY)):
            # Cc is C0, DEL and C1; Zl/Zp (U+2028/U+2029) break lines in logs and reports like \n does.
            if len(value) > longest or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"bad-header: {field} must be at most {longest} characters, no control characters")
            if any(c in BIDI_CONTROLS for c in value):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"bad-header: {field} contains a bidirectional embedding, override or isolate "
                                    "character (U+202A-U+202E, U+2066-U+2069), which can disguise a name's extension")
        if not PurePath(header.file_name).name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad-header: file_name is required")
        try:
            self.settings.with_overrides(tenant=header.tenant or None)
        except ConfigurationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid-tenant: {exc}")
        await self._check_quotas(header, principal, context)
        if header.size_bytes > limit:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"too-large: file is {header.size_bytes:,} bytes, above the limit of {limit:,} bytes")
        if header.blob_ref:
            if not self.bus.blobs.exists(header.blob_ref):
                await context.abort(grpc.StatusCode.NOT_FOUND, f"blob-not-found: {header.blob_ref}")
            size = self.bus.blobs.size(header.blob_ref)
            if size > limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"too-large: file is {size:,} bytes, above the limit of {limit:,} bytes")

    async def _check_quotas(self, header: spb.SubmitHeader, principal: Principal,
                            context: grpc.aio.ServicerContext) -> None:
        """The plan's quotas (documents per day, concurrent jobs), before a byte is stored; a retry
        of a Submit whose job exists (same idempotency key) is not a new document."""
        if self.quotas is None or principal.method == LOCAL_PRINCIPAL.method:
            return
        if header.idempotency_key and self.bus.jobs.get(idempotent_job_id(header.tenant, header.idempotency_key)):
            return
        try:
            self.quotas.check(header.tenant, principal.plan)
        except QuotaExceededError as exc:
            audit("submit", principal, tenant=header.tenant, outcome="quota")
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    async def _enqueue(self, header: spb.SubmitHeader, ref: str, context: grpc.aio.ServicerContext
                       ) -> spb.SubmitResponse:
        trace = self._trace(context)
        try:
            response = await enqueue(self.bus, header, ref, trace, first_stage=self.first_stage,
                                     timeout_s=self._timeout(context), plan=_plan_label(current_principal()))
        except IdempotencyConflict as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except (BusError, TimeoutError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"bus-unavailable: {exc}")
        if response.existing:
            logger.info("job %s: a retry of its Submit (same idempotency key)", response.job_id,
                        extra={"job_id": response.job_id, "tenant": header.tenant, "trace_id": trace.trace_id})
            return response
        audit("submit", current_principal(), tenant=header.tenant, job_id=response.job_id, doc_id=response.doc_id)
        logger.info("job %s queued: %s for tenant %s (%s priority)", response.job_id, PurePath(header.file_name).name,
                    header.tenant, "high" if header.priority == epb.PRIORITY_HIGH else "bulk",
                    extra={"job_id": response.job_id, "tenant": header.tenant, "trace_id": trace.trace_id})
        return response

    # -- jobs --------------------------------------------------------------------------------------

    async def _known(self, request: spb.GetJobRequest, context: grpc.aio.ServicerContext) -> epb.Job | None:
        if not self.ready():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "starting: the job table is being rebuilt")
        if not request.job_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing-job-id: name the job")
        principal = current_principal()
        try:
            tenant = principal.tenant_for(request.tenant)
        except PermissionDeniedError as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        job = self.bus.jobs.get(request.job_id)
        if job is not None and job.tenant != tenant and not (principal.admin and not request.tenant):
            return None   # another tenant's job is as unknown as a job that does not exist: no oracle
        return job

    async def GetJob(self, request: spb.GetJobRequest, context: grpc.aio.ServicerContext) -> epb.Job:
        job = await self._known(request, context)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown-job: no job {request.job_id}")
        return job

    async def WatchJob(self, request: spb.GetJobRequest, context: grpc.aio.ServicerContext
                       ) -> AsyncIterator[spb.JobEvent]:
        async with self._stream_slot(context):
            async for event in self._watch(request, context):
                yield event

    async def _watch(self, request: spb.GetJobRequest, context: grpc.aio.ServicerContext
                     ) -> AsyncIterator[spb.JobEvent]:
        known = await self._known(request, context)
        updates = self.bus.jobs.watch(request.job_id)
        try:
            if known is None:   # submitted through another replica a moment ago?
                try:
                    first = await asyncio.wait_for(anext(updates), _UNKNOWN_JOB_GRACE_S)
                except TimeoutError:
                    await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown-job: no job {request.job_id}")
                yield _event(first)
                if is_terminal(first):
                    return
            async for job in updates:
                yield _event(job)
        finally:
            await updates.aclose()

    async def Cancel(self, request: spb.GetJobRequest, context: grpc.aio.ServicerContext) -> epb.Job:
        job = await self._known(request, context)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown-job: no job {request.job_id}")
        if is_terminal(job):
            state = epb.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"already-ended: job {job.job_id} {state}")
        try:
            cancelled = await asyncio.wait_for(self.bus.ledger.cancel(job, self._trace(context)),
                                               self._timeout(context))
        except (BusError, TimeoutError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"bus-unavailable: {exc}")
        audit("cancel", current_principal(), tenant=job.tenant, job_id=job.job_id)
        logger.info("job %s cancelled", job.job_id, extra={"job_id": job.job_id, "tenant": job.tenant})
        return cancelled


def _plan_label(principal: Principal) -> str:
    """The plan the job is counted under (the metrics' tenant class); none for the local,
    unauthenticated use of ``--insecure``, whose documents count as ``default``."""
    return "" if principal.method == LOCAL_PRINCIPAL.method else principal.plan.name
