"""Observability of Osmose: Prometheus metrics, OpenTelemetry traces, SLOs and dashboards.

``metrics``      every metric, defined once          ``tracing``     spans and their export
``documents``    the SLI and completeness (ledger)    ``stages``      per-stage hooks (worker)
``models``       model backend hooks                  ``kafka_lag``   lag in messages and seconds
``grpc_server``  the gRPC interceptor                 ``collectors``  scrape-time gauges
``server``       the /metrics HTTP endpoint           ``slo/``        the SLO spec and rule generator
``dashboards/``  Grafana dashboards as code

Submodules are imported where used: nothing here is imported eagerly.
"""

__all__: list[str] = []
