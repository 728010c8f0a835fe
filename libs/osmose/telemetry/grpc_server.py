"""A grpc.aio server interceptor: per-method metrics and a SERVER span for every RPC.

``osmose_grpc_server_handled_total{grpc_service, grpc_method, grpc_code}`` and
``osmose_grpc_server_handling_seconds`` (the names of the grpc-ecosystem exporters, with
the prefix); the span is parented on the caller's ``traceparent`` so a Submit's trace
continues into Kafka. Unary responses run under the span as the current one (what the
handler publishes carries its context); streamed responses get a span that is not made
current across ``yield`` (a context set inside an async generator cannot be reset safely).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from osmose.telemetry import metrics, tracing

__all__ = ["ServerTelemetry"]

_SAFE_METHODS = 256  # methods are bounded by the protos; this only guards against a scanner's junk names


def _split(full: str) -> tuple[str, str]:
    service, _, method = full.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def _code(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), default)
    return default


class ServerTelemetry(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._known: set[tuple[str, str]] = set()

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service, method = _split(handler_call_details.method)
        if (service, method) not in self._known:
            if len(self._known) >= _SAFE_METHODS:
                service, method = "other", "other"
            else:
                self._known.add((service, method))
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        if handler.unary_unary or handler.stream_unary:
            behavior: Any = handler.unary_unary or handler.stream_unary
            factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            return factory(self._unary(behavior, service, method, metadata),
                           request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)
        streaming: Any = handler.unary_stream or handler.stream_stream
        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return factory(self._streaming(streaming, service, method, metadata),
                       request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)

    @staticmethod
    def _record(service: str, method: str, code: grpc.StatusCode, started: float) -> None:
        metrics.GRPC_HANDLED.labels(service, method, code.name).inc()
        metrics.GRPC_HANDLING.labels(service, method).observe(time.perf_counter() - started)

    def _unary(self, behavior: Callable, service: str, method: str, metadata: dict[str, str]) -> Callable:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            with tracing.server_span(service=service, method=method, metadata=metadata) as span:
                try:
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except grpc.aio.AbortError:
                    code = grpc.StatusCode.UNKNOWN
                    raise
                except Exception:
                    code = grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    code = _code(context, code)
                    tracing.set_rpc_status(span, code.name, code.value[0])
                    self._record(service, method, code, started)
        return wrapped

    def _streaming(self, behavior: Callable, service: str, method: str, metadata: dict[str, str]) -> Callable:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            span = tracing.start_detached_server_span(service=service, method=method, metadata=metadata)
            try:
                async for response in behavior(request, context):
                    yield response
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                code = _code(context, code)
                tracing.set_rpc_status(span, code.name, code.value[0])
                span.end()
                self._record(service, method, code, started)
        return wrapped
