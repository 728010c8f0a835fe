"""Client side of the services: what `osmose submit` and `osmose search --server` call.

Errors: :class:`ServiceUnreachable` when no server answers (the CLI exits 2),
:class:`RequestRejected` when the server refuses one request (a file above the size
limit: that file fails, the others go on). WatchJob reconnects when the front door
restarts (any replica can answer: job state lives on the compacted job topic).

:meth:`ServiceClient.submit_retrying` retries a Submit the server did not answer
(UNAVAILABLE, a deadline, RESOURCE_EXHAUSTED from a full server) with exponential backoff
and full jitter, sending the same idempotency key every time, so a retry of a Submit that
did reach the broker returns the same job instead of a second one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from osmose.bus.jobs import is_terminal
from osmose.bus.trace import HEADER, TraceContext
from osmose.config import Settings
from osmose.errors import OsmoseError
from osmose.query.stats import stats_as_table
from osmose.security.tls import TlsFiles, channel_credentials
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc

__all__ = ["CHANNEL_OPTIONS", "Backoff", "RequestRejected", "ServiceClient", "ServiceUnreachable"]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
_MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE),
                   ("grpc.max_send_message_length", _MAX_MESSAGE)]
_RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED}
# A client notices a server that came back within seconds (gRPC's default reconnect backoff
# grows to two minutes, and calls fail fast meanwhile).
_CLIENT_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2000)]


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Retries of a call the server did not answer: attempt n waits a random time up to
    ``min(cap_s, base_s * 2**n)``; no new attempt starts once `budget_s` has passed."""

    base_s: float = 0.5
    cap_s: float = 10.0
    budget_s: float = 120.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt))  # noqa: S311 (jitter)


class ServiceUnreachable(OsmoseError):
    """No osmose server answered at the given address."""


class RequestRejected(OsmoseError):
    """The server refused the request; `code` is the gRPC status, the message starts with a reason."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _rejected(exc: grpc.aio.AioRpcError) -> OsmoseError:
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServiceUnreachable(exc.details() or str(exc.code()))
    return RequestRejected(exc.code(), exc.details() or exc.code().name)


def _with_header(details: grpc.aio.ClientCallDetails, header: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add(*header)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


# grpc.aio files each interceptor under the first call kind it implements: one class per kind.
class _UnaryUnaryCredential(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(_with_header(details, self.header), request)


class _UnaryStreamCredential(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(_with_header(details, self.header), request)


class _StreamUnaryCredential(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(_with_header(details, self.header), request_iterator)


class _StreamStreamCredential(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(_with_header(details, self.header), request_iterator)


def _credential(header: tuple[str, str]) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add the caller's credential (bearer token or API key) to every call."""
    return [kind(header) for kind in (_UnaryUnaryCredential, _UnaryStreamCredential, _StreamUnaryCredential,
                                      _StreamStreamCredential)]


class ServiceClient:
    """One channel to an osmose server. Use as an async context manager.

    `tls`: verify the server against `tls.ca` (and present `tls.cert`/`tls.key` where the
    listener wants a client certificate); None = plaintext, for an `--insecure` loopback server.
    `token` (a JWT) or `api_key`: the credential sent with every call.
    """

    def __init__(self, target: str, *, connect_timeout_s: float = 5.0, tls: TlsFiles | None = None,
                 token: str | None = None, api_key: str | None = None, wait_ready: bool = True) -> None:
        self.target = target
        self.connect_timeout_s = connect_timeout_s
        self.wait_ready = wait_ready   # False: no check at connection (the calls retry on their own)
        self.retries = 0   # Submit attempts repeated by submit_retrying (all files)
        self.tls = tls
        self._interceptors = (_credential(("authorization", f"Bearer {token}")) if token else
                              _credential(("x-api-key", api_key)) if api_key else [])
        self._channel: grpc.aio.Channel | None = None

    @classmethod
    def from_settings(cls, target: str, settings: Settings, **kwargs: object) -> ServiceClient:
        """A client with the TLS files and credential the settings name (OSMOSE_TLS_CA, OSMOSE_TOKEN, …)."""
        tls = TlsFiles(cert=settings.tls_cert, key=settings.tls_key, ca=settings.tls_ca) if settings.tls_ca else None
        token = settings.token.get_secret_value() if settings.token else None
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(target, tls=tls, token=token, api_key=api_key, **kwargs)  # type: ignore[arg-type]

    async def __aenter__(self) -> ServiceClient:
        if self.tls is not None:
            self._channel = grpc.aio.secure_channel(self.target, channel_credentials(self.tls),
                                                    options=_CLIENT_OPTIONS, interceptors=self._interceptors)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options=_CLIENT_OPTIONS,
                                                      interceptors=self._interceptors)
        if not self.wait_ready:
            return self
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self.connect_timeout_s)
        except TimeoutError:
            await self._channel.close()
            raise ServiceUnreachable(f"no osmose server answers at {self.target} "
                                     f"(start one with `osmose serve all`)") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()

    @property
    def ingestion(self) -> sgrpc.IngestionServiceStub:
        return sgrpc.IngestionServiceStub(self._channel)

    @property
    def query(self) -> sgrpc.QueryServiceStub:
        return sgrpc.QueryServiceStub(self._channel)

    async def submit(self, path: Path, *, tenant: str, tier: pb.Tier = pb.TIER_UNSPECIFIED,
                     priority: epb.Priority = epb.PRIORITY_BULK, file: str | None = None,
                     idempotency_key: str = "", timeout_s: float = 600.0,
                     preview: bool = False) -> spb.SubmitResponse:
        size = path.stat().st_size
        header = spb.SubmitHeader(file_name=path.name, tenant=tenant, tier=tier, size_bytes=size,
                                  priority=priority, file=file if file is not None else str(path),
                                  idempotency_key=idempotency_key, preview=preview)

        async def requests() -> AsyncIterator[spb.SubmitRequest]:
            yield spb.SubmitRequest(header=header)
            with path.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK_BYTES):
                    yield spb.SubmitRequest(chunk=chunk)

        metadata = ((HEADER, TraceContext.new().traceparent),)
        try:
            return await self.ingestion.Submit(requests(), timeout=timeout_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None

    async def submit_retrying(self, path: Path, *, idempotency_key: str, backoff: Backoff = Backoff(),
                              on_retry: Callable[[int, str], None] | None = None,
                              **kwargs: object) -> spb.SubmitResponse:
        """:meth:`submit`, retried with `backoff` while the server does not answer (UNAVAILABLE,
        DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED other than too-large); the same `idempotency_key`
        each time. Raises :class:`ServiceUnreachable` when the budget is spent."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await self.submit(path, idempotency_key=idempotency_key, **kwargs)  # type: ignore[arg-type]
            except ServiceUnreachable as exc:
                reason = str(exc)
            except RequestRejected as exc:
                if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED or str(exc).startswith("too-large"):
                    raise
                reason = str(exc)
            delay = backoff.delay(attempt)
            if time.monotonic() - started + delay > backoff.budget_s:
                raise ServiceUnreachable(f"unavailable: no answer from {self.target} for "
                                         f"{time.monotonic() - started:.0f} s ({attempt + 1} attempts): {reason}")
            attempt += 1
            self.retries += 1
            if on_retry is not None:
                on_retry(attempt, reason)
            logger.info("submitting %s: %s; retry %d in %.1f s", path, reason, attempt, delay)
            await asyncio.sleep(delay)

    async def get_job(self, job_id: str, *, tenant: str = "", timeout_s: float = 10.0) -> epb.Job:
        try:
            return await self.ingestion.GetJob(spb.GetJobRequest(job_id=job_id, tenant=tenant), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None

    async def cancel(self, job_id: str, *, tenant: str = "", timeout_s: float = 10.0) -> epb.Job:
        try:
            return await self.ingestion.Cancel(spb.GetJobRequest(job_id=job_id, tenant=tenant), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None

    async def watch(self, job_id: str, *, on_event: Callable[[spb.JobEvent], None] | None = None,
                    reconnect_s: float = 120.0, timeout_s: float | None = None, tenant: str = "") -> epb.Job:
        """Follow the job until it ends; returns its final snapshot.

        Reconnects (for up to `reconnect_s` without an answer) when the server goes
        away, e.g. a front door replica restarting.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_contact = time.monotonic()
        while True:
            remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
            try:
                async for event in self.ingestion.WatchJob(spb.GetJobRequest(job_id=job_id, tenant=tenant),
                                                           timeout=remaining):
                    last_contact = time.monotonic()
                    if on_event is not None:
                        on_event(event)
                    if is_terminal(event.job):
                        return event.job
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    break
                retry = exc.code() in _RETRY_CODES
                if not retry or time.monotonic() - last_contact > reconnect_s:
                    raise _rejected(exc) from None
                logger.info("watching job %s: %s; reconnecting", job_id, exc.details())
                await asyncio.sleep(0.5)
            else:  # the stream ended without a terminal event (server shutting down)
                await asyncio.sleep(0.5)
            if deadline is not None and time.monotonic() > deadline:
                break
        raise RequestRejected(grpc.StatusCode.DEADLINE_EXCEEDED,
                              f"timeout: job {job_id} did not end within {timeout_s:.0f} s (it goes on)")

    async def search(self, query: str, *, tenant: str, limit: int, timeout_s: float = 60.0) -> list[spb.SearchHit]:
        try:
            response = await self.query.Search(spb.SearchRequest(query=query, tenant=tenant, limit=limit),
                                               timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None
        return list(response.hits)

    async def stats(self, tenant: str | None = None, *, timeout_s: float = 60.0) -> dict[str, dict[str, int]]:
        try:
            response = await self.query.Stats(spb.StatsRequest(tenant=tenant or ""), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None
        return stats_as_table(response)

    async def delete_document(self, doc_id: str, *, tenant: str = "", timeout_s: float = 120.0) -> spb.DeleteResponse:
        try:
            return await self.query.DeleteDocument(spb.DeleteDocumentRequest(tenant=tenant, doc_id=doc_id),
                                                   timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None

    async def delete_tenant(self, tenant: str, *, timeout_s: float = 600.0) -> spb.DeleteResponse:
        try:
            return await self.query.DeleteTenant(spb.DeleteTenantRequest(tenant=tenant), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _rejected(exc) from None
