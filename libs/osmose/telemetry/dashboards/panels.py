"""The dashboards, declared as data: every panel's title, unit and PromQL queries.

Kept apart from the builder (:mod:`.generate`) so the metric-name contract test
(tests/e2e/test_metric_contract.py) can run every query against a real Prometheus.
Queries name only metrics the services export (osmose_*), Sloth's recordings (slo:*),
and the documented metrics of vLLM (vllm:*) and TEI (te_*).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DASHBOARDS", "Dashboard", "Panel"]

_TIER = 'tier=~"fast|standard|deep"'


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]   # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"               # timeseries | stat
    description: str = ""
    #: the query needs a model backend to have run (vLLM/TEI fixtures or real servers)
    backend: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]


def _p(title: str, *queries: tuple[str, str], **kw: object) -> Panel:
    return Panel(title=title, queries=tuple(queries), **kw)  # type: ignore[arg-type]


SLA = Dashboard("osmose-sla", "Osmose / SLA overview",
                "Objectives, error budget remaining and burn rates per tier and tenant class; cost per document.", (
    _p("SLO objectives", ("max by (sloth_slo) (slo:objective:ratio)", "{{sloth_slo}}"), unit="percentunit",
       kind="stat"),
    _p("Error budget remaining (30d)", ("max by (sloth_slo) (slo:period_error_budget_remaining:ratio)",
                                        "{{sloth_slo}}"), unit="percentunit", kind="stat"),
    _p("Burn rate now, per tier and tenant class",
       ("max by (tier, tenant_class) (slo:current_burn_rate:ratio{slo=\"freshness\"})", "{{tier}} {{tenant_class}}"),
       unit="short"),
    _p("Completeness burn rate, per tenant class",
       ("max by (tenant_class) (slo:current_burn_rate:ratio{slo=\"completeness\"})", "{{tenant_class}}")),
    _p("Accepted to visible, p95 per tier",
       (f"histogram_quantile(0.95, sum by (tier, le) (rate(osmose_document_e2e_seconds_bucket{{{_TIER}}}[$__rate_interval])))",
        "{{tier}}"), unit="s"),
    _p("Documents ended per outcome",
       ("sum by (outcome) (rate(osmose_document_e2e_seconds_count[$__rate_interval]))", "{{outcome}}"), unit="reqps"),
    _p("Documents late per tier (counted once: when overdue in flight, or when they ended late)",
       ("sum by (tier) (rate(osmose_documents_late_total[$__rate_interval]))", "{{tier}}"), unit="reqps"),
    _p("Backend seconds per document, per tier",
       ("sum by (tier) (rate(osmose_gen_ai_client_operation_duration_seconds_sum[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_documents_persisted_total[$__rate_interval]))", "{{tier}}"), unit="s"),
    _p("Tokens per document, per tier",
       ("sum by (tier) (rate(osmose_gen_ai_client_token_usage_sum[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_documents_persisted_total[$__rate_interval]))", "{{tier}}")),
))

PIPELINE = Dashboard("osmose-pipeline", "Osmose / Pipeline",
                     "Per stage: throughput, latency, in flight, Kafka lag in messages and seconds, overdue, dead letters.", (
    _p("Messages per stage and outcome",
       ("sum by (stage, outcome) (rate(osmose_stage_messages_total[$__rate_interval]))", "{{stage}} {{outcome}}"),
       unit="reqps"),
    _p("Stage service time, p95",
       ("histogram_quantile(0.95, sum by (stage, le) (rate(osmose_stage_duration_seconds_bucket[$__rate_interval])))",
        "{{stage}}"), unit="s"),
    _p("In flight per stage", ("sum by (stage) (osmose_stage_in_flight_messages)", "{{stage}}")),
    _p("Kafka lag, seconds (oldest unfinished message)",
       ("max by (stage, lane) (osmose_kafka_consumer_lag_seconds)", "{{stage}} {{lane}}"), unit="s"),
    _p("Kafka lag, messages", ("sum by (stage, lane) (osmose_kafka_consumer_lag_messages)", "{{stage}} {{lane}}")),
    _p("Documents in flight per tier and stage",
       ("max by (tier, stage) (osmose_documents_in_flight)", "{{tier}} {{stage}}")),
    _p("Oldest document in flight", ("max by (tier) (osmose_documents_in_flight_oldest_age_seconds)", "{{tier}}"),
       unit="s"),
    _p("Overdue documents (older than the tier's objective)",
       ("max by (tier, stage) (osmose_documents_overdue)", "{{tier}} {{stage}}")),
    _p("Dead letters per stage and reason",
       ("sum by (stage, reason) (increase(osmose_dead_letters_total[$__range]))", "{{stage}} {{reason}}"),
       kind="stat"),
    _p("Retries per stage", ("sum by (stage) (rate(osmose_stage_retries_total[$__rate_interval]))", "{{stage}}"),
       unit="reqps"),
    _p("Completeness: accepted + replayed = persisted + failed + cancelled + in flight",
       ("sum(increase(osmose_documents_accepted_total[$__range]))", "accepted"),
       ("sum(increase(osmose_documents_replayed_total[$__range])) or vector(0)", "replayed"),
       ("sum(increase(osmose_documents_persisted_total[$__range]))", "persisted"),
       ("sum(increase(osmose_documents_failed_total[$__range])) or vector(0)", "failed"),
       ("sum(increase(osmose_documents_cancelled_total[$__range])) or vector(0)", "cancelled"), kind="stat"),
))

BUDGET = Dashboard("osmose-budget", "Osmose / Budget attribution",
                   "Where each tier's time goes: Kafka wait, stage service time, backend queue, store writes.", (
    _p("Kafka wait per message, mean, per tier",
       ("sum by (tier) (rate(osmose_stage_kafka_wait_seconds_sum[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_stage_kafka_wait_seconds_count[$__rate_interval]))", "{{tier}}"), unit="s"),
    _p("Stage service time per document, per tier and stage",
       ("sum by (tier, stage) (rate(osmose_stage_duration_seconds_sum{stage!=\"persister\"}[$__rate_interval])) / "
        "sum by (tier, stage) (rate(osmose_stage_duration_seconds_count{stage!=\"persister\"}[$__rate_interval]))",
        "{{tier}} {{stage}}"), unit="s"),
    _p("Backend queue time per call, per tier",
       ("sum by (tier) (rate(osmose_model_queue_wait_seconds_sum[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_model_queue_wait_seconds_count[$__rate_interval]))", "{{tier}}"), unit="s"),
    _p("Store write time per document (persister), per tier",
       ("sum by (tier) (rate(osmose_stage_duration_seconds_sum{stage=\"persister\"}[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_stage_duration_seconds_count{stage=\"persister\"}[$__rate_interval]))",
        "{{tier}}"), unit="s"),
    _p("Accepted to visible, mean, per tier",
       ("sum by (tier) (rate(osmose_document_e2e_seconds_sum[$__rate_interval])) / "
        "sum by (tier) (rate(osmose_document_e2e_seconds_count[$__rate_interval]))", "{{tier}}"), unit="s"),
))

BACKENDS = Dashboard("osmose-backends", "Osmose / Model backends and GPU pools",
                     "Model calls as Osmose sees them (GenAI metrics) and as vLLM and TEI report them.", (
    _p("GenAI call latency p95 per endpoint",
       ("histogram_quantile(0.95, sum by (endpoint, le) "
        "(rate(osmose_gen_ai_client_operation_duration_seconds_bucket[$__rate_interval])))", "{{endpoint}}"),
       unit="s"),
    _p("GenAI calls per endpoint and outcome",
       ("sum by (endpoint, outcome) (rate(osmose_gen_ai_client_operation_duration_seconds_count[$__rate_interval]))",
        "{{endpoint}} {{outcome}}"), unit="reqps"),
    _p("Breaker state (0 closed, 1 half-open, 2 open)", ("max by (endpoint) (osmose_model_breaker_state)",
                                                          "{{endpoint}}"), kind="stat"),
    _p("Concurrency in use / limit",
       ("max by (endpoint) (osmose_model_concurrency_in_use / osmose_model_concurrency_limit)", "{{endpoint}}"),
       unit="percentunit"),
    _p("Tokens per second, input and output",
       ("sum by (token_type) (rate(osmose_gen_ai_client_token_usage_sum[$__rate_interval]))", "{{token_type}}")),
    _p("Model cache hit ratio",
       ("sum(rate(osmose_model_cache_requests_total{result=\"hit\"}[$__rate_interval])) / "
        "sum(rate(osmose_model_cache_requests_total[$__rate_interval]))", "hit ratio"), unit="percentunit"),
    _p("vLLM queue: waiting and running",
       ("sum by (model_name) (vllm:num_requests_waiting)", "waiting {{model_name}}"),
       ("sum by (model_name) (vllm:num_requests_running)", "running {{model_name}}"), backend=True),
    _p("vLLM KV cache usage", ("max by (model_name) (vllm:kv_cache_usage_perc)", "{{model_name}}"),
       unit="percentunit", backend=True),
    _p("vLLM tokens per second",
       ("sum(rate(vllm:prompt_tokens_total[$__rate_interval]))", "prompt"),
       ("sum(rate(vllm:generation_tokens_total[$__rate_interval]))", "generation"), backend=True),
    _p("vLLM request latency p95",
       ("histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[$__rate_interval])))",
        "p95"), unit="s", backend=True),
    _p("TEI queue size", ("sum by (pod) (te_queue_size)", "{{pod}}"), backend=True),
    _p("TEI request latency p95",
       ("histogram_quantile(0.95, sum by (le) (rate(te_request_duration_bucket[$__rate_interval])))", "p95"),
       unit="s", backend=True),
))

TENANTS = Dashboard("osmose-tenants", "Osmose / Tenants and tiers",
                    "Per tier and tenant class: volume, latency and completeness.", (
    _p("Documents accepted per tenant class and lane",
       ("sum by (tenant_class, lane) (rate(osmose_documents_accepted_total[$__rate_interval]))",
        "{{tenant_class}} {{lane}}"), unit="reqps"),
    _p("Documents persisted per tier and tenant class",
       ("sum by (tier, tenant_class) (rate(osmose_documents_persisted_total[$__rate_interval]))",
        "{{tier}} {{tenant_class}}"), unit="reqps"),
    _p("Accepted to visible p95, per tier and tenant class",
       ("histogram_quantile(0.95, sum by (tier, tenant_class, le) "
        "(rate(osmose_document_e2e_seconds_bucket[$__rate_interval])))", "{{tier}} {{tenant_class}}"), unit="s"),
    _p("Budget remaining per tier and tenant class",
       ("max by (tier, tenant_class) (slo:period_error_budget_remaining:ratio{slo=\"freshness\"})",
        "{{tier}} {{tenant_class}}"), unit="percentunit", kind="stat"),
    _p("Submit calls per status code",
       ("sum by (grpc_code) (rate(osmose_grpc_server_handled_total{grpc_method=\"Submit\"}[$__rate_interval]))",
        "{{grpc_code}}"), unit="reqps"),
))

DASHBOARDS: tuple[Dashboard, ...] = (SLA, PIPELINE, BUDGET, BACKENDS, TENANTS)
