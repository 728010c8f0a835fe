"""OpenTelemetry traces: one trace per document, from Submit to persist, across gRPC and Kafka.

How the trace crosses hops: the W3C ``traceparent`` travels in gRPC metadata and Kafka
headers (:mod:`osmose.bus.trace`, unchanged on the wire). The gRPC interceptor starts a
SERVER span parented on the caller's ``traceparent``; a stage starts a CONSUMER span per
message *parented* on the context in the message's headers (the messaging conventions allow
a parent for single-message processing, and each Osmose message is processed alone, so the
trace stays one tree per document rather than linked traces). While a span is active,
:func:`osmose.bus.trace.child_of` hands out that span's context, so every message the stage
publishes (next stage, job status, dead letter) carries it.

Spans: ``{service}/{method}`` (rpc.*), ``process {topic}`` (messaging.*), ``stage {name}``
around the stage's own work, ``{operation} {model}`` per model call (gen_ai.*).

Export: none by default (the embedded default stays offline; spans are not even recorded
unless a provider is installed). ``OSMOSE_OTLP_ENDPOINT`` installs OTLP/gRPC export with a
batch processor (:func:`configure`); tests install an in-memory exporter with :func:`install`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["configure", "consumer_span", "install", "installed", "model_span", "server_span", "shutdown",
           "stage_span", "tracer"]

logger = logging.getLogger(__name__)

_SCOPE = "osmose"
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def install(provider: TracerProvider | None) -> None:
    """Use `provider` for Osmose's spans from now on (tests: one with an in-memory exporter; None: stop)."""
    global _provider
    _provider = provider


def installed() -> TracerProvider | None:
    return _provider


def configure(*, otlp_endpoint: str | None, service_name: str) -> TracerProvider | None:
    """Install OTLP export when an endpoint is configured; otherwise nothing (no spans recorded)."""
    if not otlp_endpoint or _provider is not None:
        return _provider
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.namespace": "osmose"}))
    exporter: SpanExporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_endpoint.startswith("http://"))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    logger.info("traces exported over OTLP to %s as %s", otlp_endpoint, service_name)
    return provider


def shutdown() -> None:
    """Flush and stop the installed provider (process exit)."""
    if _provider is not None:
        _provider.shutdown()


def tracer() -> trace.Tracer:
    return (_provider or trace.get_tracer_provider()).get_tracer(_SCOPE)


def _parent(carrier: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(carrier=dict(carrier))


@contextmanager
def server_span(*, service: str, method: str, metadata: Mapping[str, str]) -> Iterator[Span]:
    """The SERVER span of one RPC, parented on the caller's ``traceparent`` (if any)."""
    with tracer().start_as_current_span(f"{service}/{method}", context=_parent(metadata), kind=SpanKind.SERVER,
                                        record_exception=False, set_status_on_exception=False,
                                        attributes={"rpc.system": "grpc", "rpc.system.name": "grpc",
                                                    "rpc.service": service, "rpc.method": method}) as span:
        yield span


def set_rpc_status(span: Span, code_name: str, code_value: int) -> None:
    span.set_attribute("rpc.grpc.status_code", code_value)
    span.set_attribute("rpc.response.status_code", code_name)
    if code_name not in ("OK", "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS",
                         "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED",
                         "OUT_OF_RANGE"):
        span.set_status(Status(StatusCode.ERROR, code_name))


@contextmanager
def consumer_span(*, topic: str, group: str, partition: int, offset: int, key: bytes | None,
                  headers: list[tuple[str, bytes]]) -> Iterator[Span]:
    """The CONSUMER span of one Kafka message, parented on the producer's context in its headers."""
    carrier = {k.lower(): v.decode("ascii", "replace") for k, v in headers if k.lower() in ("traceparent",
                                                                                            "tracestate")}
    attributes: dict[str, Any] = {
        "messaging.system": "kafka", "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.destination.name": topic, "messaging.consumer.group.name": group,
        "messaging.destination.partition.id": str(partition), "messaging.kafka.offset": offset}
    if key:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    with tracer().start_as_current_span(f"process {topic}", context=_parent(carrier), kind=SpanKind.CONSUMER,
                                        attributes=attributes) as span:
        yield span


@contextmanager
def stage_span(stage: str) -> Iterator[Span]:
    """The stage's own work on one document (INTERNAL), under the message's or the RPC's span."""
    with tracer().start_as_current_span(f"stage {stage}", attributes={"osmose.stage": stage}) as span:
        yield span


@contextmanager
def model_span(*, operation: str, model: str, endpoint: str, task: str, server: str = "") -> Iterator[Span]:
    """A GenAI CLIENT span: ``chat {model}`` or ``embeddings {model}``."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.provider.name": "openai"
                                  if operation == "chat" else "tei", "gen_ai.request.model": model or endpoint,
                                  "osmose.model.endpoint": endpoint, "osmose.model.task": task}
    if server:
        from urllib.parse import urlsplit

        parts = urlsplit(server)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
        if parts.port:
            attributes["server.port"] = parts.port
    with tracer().start_as_current_span(f"{operation} {model or endpoint}", kind=SpanKind.CLIENT,
                                        attributes=attributes) as span:
        try:
            yield span
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            raise


def document_attributes(span: Span, *, job_id: str, tenant: str, doc_id: str, stage: str, tier: str) -> None:
    """Ids belong on spans (never on metrics)."""
    if span.is_recording():
        span.set_attributes({"osmose.job_id": job_id, "osmose.tenant": tenant, "osmose.doc_id": doc_id,
                             "osmose.stage": stage, "osmose.tier": tier})


def start_detached_server_span(*, service: str, method: str, metadata: Mapping[str, str]) -> Span:
    """A SERVER span that is not made current (streamed responses); the caller ends it."""
    return tracer().start_span(f"{service}/{method}", context=_parent(metadata), kind=SpanKind.SERVER,
                               attributes={"rpc.system": "grpc", "rpc.system.name": "grpc", "rpc.service": service,
                                           "rpc.method": method})
