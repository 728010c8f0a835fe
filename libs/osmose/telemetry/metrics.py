"""Every Prometheus metric of Osmose, defined once (prometheus-client, default registry).

Conventions: the ``osmose_`` prefix, the unit in the name (``_seconds``, ``_messages``,
``_total`` for counters), and labels from closed sets only (:mod:`osmose.telemetry.labels`):
tier, tenant class, lane, stage, outcome, endpoint, task, gRPC method and code -- never a
document, job or tenant id. Model metrics follow the OpenTelemetry GenAI names
(``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``) with the prefix.

What records what:

* the job ledger (every job transition) -> the document SLI and completeness counters
  (:mod:`osmose.telemetry.documents`);
* the stage worker -> per-stage latency, throughput, in-flight, retries, dead letters, Kafka wait;
* the consumer -> Kafka lag in messages and seconds per consumer group and lane;
* the model backends -> GenAI duration and tokens, queue wait, retries, cache, breakers;
* the gRPC interceptor -> handled RPCs and latency per method and code;
* a collector over the job table (front door) -> in flight / oldest / overdue per tier and stage;
* the overdue counter (front door, :mod:`osmose.telemetry.overdue`) -> documents late, once each.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from osmose.telemetry.slo.spec import load_spec

__all__ = [
    "DEAD_LETTERS", "DOCUMENTS_ACCEPTED", "DOCUMENTS_CANCELLED", "DOCUMENTS_FAILED", "DOCUMENTS_LATE",
    "DOCUMENTS_PERSISTED", "DOCUMENTS_REPLAYED",
    "DOCUMENT_E2E", "GEN_AI_DURATION", "GEN_AI_TOKENS", "GRPC_HANDLED", "GRPC_HANDLING", "KAFKA_LAG_MESSAGES",
    "KAFKA_LAG_SECONDS", "LOOKAHEAD_ITEMS", "MODEL_CACHE", "MODEL_QUEUE_WAIT", "MODEL_RETRIES", "STAGE_DURATION", "STAGE_IN_FLIGHT",
    "STAGE_KAFKA_WAIT", "STAGE_MESSAGES", "STAGE_RETRIES", "sli_buckets",
]


def sli_buckets() -> tuple[float, ...]:
    """Bucket boundaries of the document SLI: a spread from 1 s to 8 h plus every tier's
    objective exactly, so "within the objective" is a bucket, not an interpolation."""
    spread = {1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200,
              14400, 28800}
    objectives = {tier.objective_seconds for tier in load_spec().tiers.values()}
    return tuple(sorted(float(b) for b in spread | objectives))


_STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# The OpenTelemetry GenAI semantic conventions' advice for these two histograms.
_GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_GEN_AI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
_RPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# -- documents (the job ledger) ----------------------------------------------------------------------

DOCUMENT_E2E = Histogram(
    "osmose_document_e2e_seconds",
    "Seconds from accepted (Submit) to visible in both stores, or to the failure, per document.",
    ["tier", "tenant_class", "lane", "outcome"], buckets=sli_buckets())
DOCUMENT_SEARCHABLE = Histogram(
    "osmose_document_searchable_seconds",
    "Seconds from accepted (Submit) to searchable, per document: the FAST pass of a preview "
    "(--preview), or the only pass; counted once, when the document first becomes searchable.",
    ["tier", "tenant_class", "lane", "preview"], buckets=sli_buckets())
DOCUMENTS_ACCEPTED = Counter(
    "osmose_documents_accepted_total", "Documents accepted by the front door (queued).", ["tenant_class", "lane"])
DOCUMENTS_PERSISTED = Counter(
    "osmose_documents_persisted_total", "Documents visible in both stores (job done).",
    ["tier", "tenant_class", "lane"])
DOCUMENTS_FAILED = Counter(
    "osmose_documents_failed_total", "Documents that failed (dead-lettered) at a stage.",
    ["tier", "tenant_class", "lane", "stage"])
DOCUMENTS_REPLAYED = Counter(
    "osmose_documents_replayed_total",
    "Dead-lettered documents re-driven by `osmose dlq replay`, counted by the stage that takes the replayed "
    "message (accepted + replayed = persisted + failed + cancelled + in flight).", ["tenant_class", "lane"])
DOCUMENTS_LATE = Counter(
    "osmose_documents_late_total",
    "Documents that missed their tier's freshness objective, counted once per document: when first seen "
    "in flight past it, or when it ended past it (osmose.telemetry.overdue).",
    ["tier", "tenant_class", "lane"])
DOCUMENTS_CANCELLED = Counter(
    "osmose_documents_cancelled_total", "Documents cancelled by request before they ended.", ["tenant_class", "lane"])
DEAD_LETTERS = Counter(
    "osmose_dead_letters_total", "Messages a stage sent to its dead-letter topic, by reason code.",
    ["stage", "reason"])

# -- stages (the worker) ------------------------------------------------------------------------------

STAGE_DURATION = Histogram(
    "osmose_stage_duration_seconds", "Service time of one stage on one document (the successful or last attempt).",
    ["stage", "tier", "outcome"], buckets=_STAGE_BUCKETS)
LOOKAHEAD_ITEMS = Counter(
    "osmose_lookahead_items_total", "Look-ahead work items (osmose.hosts.streaming): published by the stage "
    "in front (outcome published, publish-failed) and run by the stage they warm up (ok, failed, dropped).",
    ["stage", "outcome"])
STAGE_MESSAGES = Counter(
    "osmose_stage_messages_total", "Messages a stage handled, by outcome (ok, failed, skipped, lookahead).",
    ["stage", "lane", "outcome"])
STAGE_IN_FLIGHT = Gauge(
    "osmose_stage_in_flight_messages", "Messages a stage is working on now.", ["stage", "lane"])
STAGE_RETRIES = Counter(
    "osmose_stage_retries_total", "Retries of a stage after a retryable error.", ["stage"])
STAGE_KAFKA_WAIT = Histogram(
    "osmose_stage_kafka_wait_seconds", "Seconds a message waited in Kafka (produced -> the stage starts it).",
    ["stage", "tier", "lane"], buckets=_STAGE_BUCKETS)

# -- Kafka (the consumer) -----------------------------------------------------------------------------

KAFKA_LAG_MESSAGES = Gauge(
    "osmose_kafka_consumer_lag_messages", "Messages not yet consumed in this process's partitions.",
    ["group", "stage", "lane"])
KAFKA_LAG_SECONDS = Gauge(
    "osmose_kafka_consumer_lag_seconds",
    "Age of the oldest message not yet finished in this process's partitions (0 when caught up).",
    ["group", "stage", "lane"])

# -- model backends -----------------------------------------------------------------------------------

GEN_AI_DURATION = Histogram(
    "osmose_gen_ai_client_operation_duration_seconds",
    "GenAI client operation duration (one HTTP request to a model backend).",
    ["operation", "endpoint", "task", "tier", "outcome"], buckets=_GEN_AI_DURATION_BUCKETS)
GEN_AI_TOKENS = Histogram(
    "osmose_gen_ai_client_token_usage", "Tokens per GenAI call, input and output.",
    ["token_type", "operation", "task", "tier"], buckets=_GEN_AI_TOKEN_BUCKETS)
MODEL_QUEUE_WAIT = Histogram(
    "osmose_model_queue_wait_seconds", "Seconds a call waited for the backend's rate limits and concurrency slot.",
    ["endpoint", "task", "tier"], buckets=_STAGE_BUCKETS)
MODEL_RETRIES = Counter("osmose_model_retries_total", "Retried model calls.", ["endpoint", "task"])
MODEL_CACHE = Counter(
    "osmose_model_cache_requests_total", "Model-call cache lookups by result (hit, miss).", ["task", "result"])

# -- gRPC server --------------------------------------------------------------------------------------

GRPC_HANDLED = Counter(
    "osmose_grpc_server_handled_total", "RPCs completed, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"])
GRPC_HANDLING = Histogram(
    "osmose_grpc_server_handling_seconds", "Seconds to complete an RPC.", ["grpc_service", "grpc_method"],
    buckets=_RPC_BUCKETS)
