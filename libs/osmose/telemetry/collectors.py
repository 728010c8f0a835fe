"""Metrics read at scrape time from state the process already holds.

* :class:`InFlightCollector` walks the job table's open jobs (every process rebuilds the
  table from the compacted job topic; the front door's process exports it, so each series
  exists once per front-door replica -- dashboards take ``max``): documents in flight, the
  age of the oldest, and how many are older than their tier's objective, per tier and stage.
  A stuck backlog shows here long before it drains into the SLI histogram.
* :class:`ModelRuntimeCollector` reads the model backends of the process: breaker state,
  concurrency in use and its limit, and the free slots call sizing sees.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from osmose.pipeline import PIPELINE, TIER_NAMES, Pipeline
from osmose.telemetry.labels import tier_label
from osmose.telemetry.slo.spec import load_spec

if TYPE_CHECKING:
    from osmose.bus.jobs import JobTable
    from osmose.models.runtime import ModelRuntime

__all__ = ["BREAKER_STATES", "InFlightCollector", "ModelRuntimeCollector"]

#: osmose_model_breaker_state's values
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class InFlightCollector(Collector):
    def __init__(self, table: JobTable, pipeline: Pipeline = PIPELINE) -> None:
        self.table = table
        self.pipeline = pipeline

    def collect(self) -> Iterator[GaugeMetricFamily]:
        spec = load_spec()
        count = GaugeMetricFamily("osmose_documents_in_flight", "Documents accepted and not ended, by the stage "
                                  "they are at (queued: not started).", labels=["tier", "stage"])
        oldest = GaugeMetricFamily("osmose_documents_in_flight_oldest_age_seconds",
                                   "Age of the oldest document in flight.", labels=["tier", "stage"])
        overdue = GaugeMetricFamily("osmose_documents_overdue", "Documents in flight for longer than their tier's "
                                    "freshness objective.", labels=["tier", "stage"])
        now = time.time()
        # Every (tier, stage) a document can be at is exported, zero included: an alert on
        # "overdue > 0" must find the series, not an absence.
        groups: dict[tuple[str, str], list[float]] = {
            (tier_label(tier), stage.name): [] for tier in TIER_NAMES for stage in self.pipeline.plan(tier)}
        for job in self.table.open_jobs():
            age = max(0.0, now - job.submitted_at_ms / 1000) if job.submitted_at_ms else 0.0
            groups.setdefault((tier_label(job.tier), job.stage or "queued"), []).append(age)
        for (tier, stage), ages in sorted(groups.items()):
            objective = spec.objective_seconds(tier)
            count.add_metric([tier, stage], len(ages))
            oldest.add_metric([tier, stage], max(ages, default=0.0))
            overdue.add_metric([tier, stage], sum(1 for a in ages if objective is not None and a > objective))
        yield from (count, oldest, overdue)

    def describe(self) -> list:
        return []


class ModelRuntimeCollector(Collector):
    """Reads every live :class:`~osmose.models.runtime.ModelRuntime` of the process (weakly held)."""

    def __init__(self) -> None:
        self._runtimes: weakref.WeakSet[ModelRuntime] = weakref.WeakSet()

    def track(self, runtime: ModelRuntime) -> None:
        self._runtimes.add(runtime)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily("osmose_model_breaker_state", "Circuit breaker of a model endpoint: "
                                  "0 closed, 1 half-open, 2 open.", labels=["endpoint"])
        in_use = GaugeMetricFamily("osmose_model_concurrency_in_use", "Requests to a model endpoint in progress.",
                                   labels=["endpoint"])
        limit = GaugeMetricFamily("osmose_model_concurrency_limit", "Concurrent requests allowed to a model "
                                  "endpoint.", labels=["endpoint"])
        free = GaugeMetricFamily("osmose_model_free_slots", "Free slots of a model endpoint as call sizing sees "
                                 "them (negative: a queue); with load_source metrics, the server's other "
                                 "clients included.", labels=["endpoint"])
        seen: set[str] = set()
        for runtime in list(self._runtimes):
            for name, backend in sorted(runtime.backends.items()):
                if name in seen:
                    continue
                seen.add(name)
                state.add_metric([name], BREAKER_STATES[backend.breaker.state.value])
                in_use.add_metric([name], backend.limits.in_flight)
                limit.add_metric([name], backend.limits.concurrency)
                free.add_metric([name], backend.free)
        yield from (state, in_use, limit, free)

    def describe(self) -> list:
        return []
