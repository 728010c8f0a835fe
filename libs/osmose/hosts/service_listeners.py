"""The gRPC listeners of one service process.

Secure (the default):

``public`` (the stage's declared port, TLS)
    what clients call: the ingestion API (with the front door), the query API (with the
    writer) and health; every call but health is authenticated (API key or JWT) by
    :class:`osmose.security.interceptor.AuthInterceptor`. Reflection only when asked for.
``internal`` (declared port + 100, mutual TLS)
    the stages' ``Process`` RPCs, for the deployment's own tools: a client certificate signed
    by the deployment's CA is required, so no network client reaches them.
``health`` (declared port + 200, plaintext)
    the health service only, for kubelet's gRPC probes (which cannot speak TLS); it serves
    no data.

Insecure (``--insecure``, the embedded default on a laptop and the tests): one plaintext
listener with everything on it, allowed on a loopback address only.

The public and internal listeners serve at most ``max_concurrent_rpcs`` calls at once
(OSMOSE_MAX_CONCURRENT_RPCS, streams included); gRPC answers RESOURCE_EXHAUSTED beyond,
which clients retry. The health listener is not capped: probes must answer under load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from osmose.config import Settings
from osmose.errors import ConfigurationError
from osmose.hosts.service_client import CHANNEL_OPTIONS
from osmose.security.credentials import authenticator_from_settings
from osmose.security.exceptions import SecurityError
from osmose.security.interceptor import AuthInterceptor
from osmose.security.tls import TlsFiles, is_loopback, server_credentials
from osmose.telemetry.grpc_server import ServerTelemetry

__all__ = ["Listeners"]

logger = logging.getLogger(__name__)

Register = Callable[[grpc.aio.Server], None]


@dataclass
class _Listener:
    name: str
    server: grpc.aio.Server
    port: int
    credentials: grpc.ServerCredentials | None
    services: list[str]
    bound: int = 0


class Listeners:
    def __init__(self, *, settings: Settings, host: str, port: int, internal_port: int | None,
                 health_port: int | None, insecure: bool, reflection: bool | None,
                 health_servicer: health.aio.HealthServicer) -> None:
        self.host, self.insecure = host, insecure
        self.reflection = insecure if reflection is None else reflection
        self.health_servicer = health_servicer
        try:
            authenticator = authenticator_from_settings(settings)
        except SecurityError as exc:
            raise ConfigurationError(str(exc).removeprefix("configuration: ")) from None
        # gRPC metrics per method and status first, so refused calls are counted too.
        interceptors = [ServerTelemetry(), AuthInterceptor(authenticator)]
        cap = settings.max_concurrent_rpcs
        if insecure:
            if not is_loopback(host):
                raise ConfigurationError(f"--insecure (plaintext) listens on loopback only, not {host}; "
                                         "give the listener a certificate (OSMOSE_TLS_CERT, OSMOSE_TLS_KEY)")
            one = _Listener("public", grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=interceptors,
                                                      maximum_concurrent_rpcs=cap), port, None, [])
            self.public = self.internal = one
            self._all = [one]
        else:
            if authenticator is None:
                raise ConfigurationError("a public listener needs credentials to check: set OSMOSE_API_KEYS_FILE "
                                         "and/or OSMOSE_JWT_ISSUER (or run with --insecure on loopback)")
            files = TlsFiles(cert=settings.tls_cert, key=settings.tls_key, ca=settings.tls_ca)
            self.public = _Listener("public", grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=interceptors,
                                                              maximum_concurrent_rpcs=cap),
                                    port, server_credentials(files, require_client_cert=False), [])
            self.internal = _Listener("internal", grpc.aio.server(options=CHANNEL_OPTIONS,
                                                                  interceptors=[ServerTelemetry()],
                                                                  maximum_concurrent_rpcs=cap),
                                      port + 100 if internal_port is None else internal_port,
                                      server_credentials(files, require_client_cert=True), [])
            probes = _Listener("health", grpc.aio.server(), port + 200 if health_port is None else health_port,
                               None, [])
            self._all = [self.public, self.internal, probes]
        for listener in self._all:
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, listener.server)

    def add_public(self, name: str, register: Register) -> None:
        register(self.public.server)
        self.public.services.append(name)

    def add_internal(self, name: str, register: Register) -> None:
        register(self.internal.server)
        if self.internal is not self.public:
            self.internal.services.append(name)
        else:
            self.public.services.append(name)

    @property
    def service_names(self) -> list[str]:
        return [name for listener in self._all for name in listener.services]

    @property
    def bound_port(self) -> int:
        return self.public.bound

    def ports(self) -> dict[str, int]:
        return {listener.name: listener.bound for listener in self._all}

    async def start(self) -> None:
        for listener in self._all:
            if self.reflection and listener is self.public:
                reflection.enable_server_reflection(
                    [*listener.services, health.SERVICE_NAME, reflection.SERVICE_NAME], listener.server)
            address = f"{self.host}:{listener.port}"
            try:
                listener.bound = (listener.server.add_secure_port(address, listener.credentials)
                                  if listener.credentials is not None else listener.server.add_insecure_port(address))
            except RuntimeError:
                listener.bound = 0
            if not listener.bound:
                raise ConfigurationError(f"cannot listen on {address} ({listener.name}; port in use?)")
            await listener.server.start()

    async def stop(self, grace_s: float) -> None:
        for listener in self._all:
            await listener.server.stop(grace_s)
