"""The SLO spec (``spec.yaml`` beside this module) as validated, typed objects.

Read by the rule generator (:mod:`osmose.telemetry.slo.generate`), by the dashboards and at
run time by :mod:`osmose.telemetry.metrics` (histogram buckets on the objectives, "overdue").
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SPEC_PATH", "Burn", "SloSpec", "TierSlo", "Windows", "duration_seconds", "load_spec"]

SPEC_PATH = Path(__file__).with_name("spec.yaml")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int:
    """``"5m"`` -> 300 (the Prometheus durations the spec uses: one number and one unit)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration must look like 5m, 1h, 3d; got {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Burn(_Strict):
    """One multi-window condition: both windows burn faster than ``burn`` x the budget rate."""

    short: str
    long: str
    burn: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _short_before_long(self) -> Burn:
        if duration_seconds(self.short) >= duration_seconds(self.long):
            raise ValueError(f"short window {self.short} must be shorter than long window {self.long}")
        return self


class Severity(_Strict):
    quick: Burn
    slow: Burn


class Windows(_Strict):
    """Page (someone is woken) and ticket (work hours) conditions, each quick and slow."""

    page: Severity
    ticket: Severity

    def all(self) -> list[str]:
        found = {w for sev in (self.page, self.ticket) for b in (sev.quick, sev.slow) for w in (b.short, b.long)}
        return sorted(found, key=duration_seconds)


Target = Annotated[float, Field(gt=0, lt=1)]


class TierSlo(_Strict):
    objective_seconds: Annotated[float, Field(gt=0)]
    targets: dict[str, Target]
    min_events: Annotated[int, Field(ge=1)]
    windows: Windows


class CompletenessSlo(_Strict):
    targets: dict[str, Target]
    min_events: Annotated[int, Field(ge=1)]
    windows: Windows


class AvailabilitySlo(_Strict):
    target: Target
    server_error_codes: list[str]
    min_events: Annotated[int, Field(ge=1)]
    windows: Windows


class SloSpec(_Strict):
    service: str
    period: str
    runbook_document: str
    tenant_classes: list[str]
    tiers: dict[str, TierSlo]
    completeness: CompletenessSlo
    availability: AvailabilitySlo

    @field_validator("period")
    @classmethod
    def _period_is_a_duration(cls, period: str) -> str:
        duration_seconds(period)
        return period

    @model_validator(mode="after")
    def _every_class_has_targets(self) -> SloSpec:
        classes = set(self.tenant_classes)
        for name, tier in self.tiers.items():
            if set(tier.targets) != classes:
                raise ValueError(f"tier {name}: targets must name exactly the tenant classes {sorted(classes)}")
        if set(self.completeness.targets) != classes:
            raise ValueError(f"completeness: targets must name exactly the tenant classes {sorted(classes)}")
        return self

    def runbook_url(self, alert: str) -> str:
        """Where the runbook of `alert` is: its section of the runbook document, relative to the
        repository root (the chart prefixes the deployment's monitoring.runbookBaseUrl)."""
        return f"{self.runbook_document}#runbook-{alert.lower()}"

    def objective_seconds(self, tier: str) -> float | None:
        slo = self.tiers.get(tier)
        return slo.objective_seconds if slo else None


@cache
def load_spec(path: Path = SPEC_PATH) -> SloSpec:
    return SloSpec.model_validate(yaml.safe_load(path.read_text()))
