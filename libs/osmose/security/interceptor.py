"""Authentication of every gRPC call on a public listener.

The interceptor verifies the call's credential before the method runs and makes the
principal available to the servicer (:func:`osmose.security.principal.current_principal`);
a call without a valid credential ends with UNAUTHENTICATED and never reaches the method.
Health checks stay open (load balancers and kubelets probe without credentials). Without an
authenticator (a plaintext listener on loopback, `--insecure`), every call runs as
:data:`~osmose.security.principal.LOCAL_PRINCIPAL`, as the CLI does on a laptop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from osmose.security.credentials import Authenticator
from osmose.security.exceptions import AuthenticationError
from osmose.security.principal import LOCAL_PRINCIPAL, Principal, using_principal

__all__ = ["OPEN_METHODS", "AuthInterceptor"]

#: methods that need no credential
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator | None) -> None:
        self.authenticator = authenticator

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method in OPEN_METHODS:
            return handler
        if self.authenticator is None:
            return _as(handler, LOCAL_PRINCIPAL)
        try:
            principal = self.authenticator.authenticate(details.invocation_metadata or ())
        except AuthenticationError as exc:
            return _refused(handler, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return _as(handler, principal)


def _as(handler: Any, principal: Principal) -> Any:
    """The same method, run with `principal` as the current one (each RPC is its own task).

    Requests arrive as bytes and are decoded here: bytes that are not the method's message end the
    call with INVALID_ARGUMENT and the reason (gRPC's own deserializer would answer UNKNOWN).
    """
    decode = handler.request_deserializer
    kw = {"request_deserializer": None, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        async def unary_unary(request: bytes, context: Any) -> Any:
            using_principal(principal)
            return await handler.unary_unary(await _decoded(decode, request, context), context)
        return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
    if handler.unary_stream:
        async def unary_stream(request: bytes, context: Any) -> AsyncIterator[Any]:
            using_principal(principal)
            async for response in handler.unary_stream(await _decoded(decode, request, context), context):
                yield response
        return grpc.unary_stream_rpc_method_handler(unary_stream, **kw)
    if handler.stream_unary:
        async def stream_unary(requests: AsyncIterator[bytes], context: Any) -> Any:
            using_principal(principal)
            return await handler.stream_unary(_decoded_stream(decode, requests, context), context)
        return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)

    async def stream_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
        using_principal(principal)
        async for response in handler.stream_stream(_decoded_stream(decode, requests, context), context):
            yield response
    return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)


async def _decoded(decode: Callable[[bytes], Any] | None, request: bytes, context: Any) -> Any:
    if decode is None:
        return request
    try:
        return decode(request)
    except Exception as exc:   # protobuf's DecodeError and whatever a custom deserializer raises
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"bad-request: {len(request)} bytes are not a valid request message "
                            f"({type(exc).__name__})")


async def _decoded_stream(decode: Callable[[bytes], Any] | None, requests: AsyncIterator[bytes],
                          context: Any) -> AsyncIterator[Any]:
    async for request in requests:
        yield await _decoded(decode, request, context)


def _refused(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}

    async def unary(request: Any, context: Any) -> Any:
        await context.abort(code, message)

    async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # pragma: no cover - abort raises

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    return grpc.stream_stream_rpc_method_handler(streaming, **kw)
