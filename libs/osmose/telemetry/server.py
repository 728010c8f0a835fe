"""The process's ``/metrics`` endpoint (Prometheus text, or OpenMetrics with exemplars when asked).

:func:`start_metrics` is the one call a host makes: it serves the default registry on the
stage's declared metrics port (``Stage.metrics_port``, `osmose describe`), registers the
in-flight collector over the job table when the process hosts the front door, and installs
OTLP trace export when configured. :meth:`MetricsEndpoint.close` undoes all of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, start_http_server

from osmose.errors import ConfigurationError
from osmose.telemetry import tracing
from osmose.telemetry.collectors import InFlightCollector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from osmose.bus.jobs import JobTable

__all__ = ["MetricsEndpoint", "start_metrics"]

logger = logging.getLogger(__name__)


@dataclass
class MetricsEndpoint:
    port: int
    _server: WSGIServer | None
    _collector: InFlightCollector | None

    def close(self) -> None:
        if self._collector is not None:
            REGISTRY.unregister(self._collector)
            self._collector = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_metrics(*, host: str, port: int, table: JobTable | None = None, otlp_endpoint: str | None = None,
                  service_name: str = "osmose") -> MetricsEndpoint:
    """Serve /metrics on `host`:`port` (0: no endpoint; the metrics are still recorded)."""
    tracing.configure(otlp_endpoint=otlp_endpoint, service_name=service_name)
    collector = None
    if table is not None:
        collector = InFlightCollector(table)
        REGISTRY.register(collector)
    if not port:
        return MetricsEndpoint(port=0, _server=None, _collector=collector)
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        if collector is not None:
            REGISTRY.unregister(collector)
        raise ConfigurationError(f"cannot serve /metrics on {host}:{port} ({exc.strerror or exc})") from exc
    bound = server.server_address[1]
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsEndpoint(port=bound, _server=server, _collector=collector)
