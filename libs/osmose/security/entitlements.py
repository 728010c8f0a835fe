"""Plans: what a tenant's credential entitles it to.

A plan is also the tenant *class* the metrics and SLOs are labelled by (a bounded
label: never the tenant id). The priority lane comes from the plan, never from the
client's claim, so no caller can starve bulk work by asking for premium treatment.
"""

from __future__ import annotations

from dataclasses import dataclass

from osmose.security.exceptions import PermissionDeniedError
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb

__all__ = ["PLANS", "Plan", "plan_named"]

_ALL_TIERS = frozenset({pb.TIER_FAST, pb.TIER_STANDARD, pb.TIER_DEEP})


@dataclass(frozen=True, kw_only=True)
class Plan:
    name: str
    #: tiers its documents may run in (a request for another is refused; triage's choice is capped)
    tiers: frozenset[pb.Tier]
    #: the Kafka lane its work travels in
    priority: epb.Priority
    documents_per_day: int
    concurrent_jobs: int

    def check_tier(self, tier: int) -> None:
        if tier != pb.TIER_UNSPECIFIED and tier not in self.tiers:
            name = pb.Tier.Name(tier).removeprefix("TIER_").lower()
            raise PermissionDeniedError(f"tier-not-entitled: the {self.name} plan does not include the {name} tier")

    @property
    def best_tier(self) -> int:
        return max(self.tiers)


PLANS: dict[str, Plan] = {p.name: p for p in (
    Plan(name="starter", tiers=frozenset({pb.TIER_FAST, pb.TIER_STANDARD}), priority=epb.PRIORITY_BULK,
         documents_per_day=500, concurrent_jobs=5),
    Plan(name="business", tiers=_ALL_TIERS, priority=epb.PRIORITY_BULK, documents_per_day=5_000, concurrent_jobs=20),
    Plan(name="enterprise", tiers=_ALL_TIERS, priority=epb.PRIORITY_HIGH, documents_per_day=50_000,
         concurrent_jobs=100),
)}


def plan_named(name: str) -> Plan:
    try:
        return PLANS[name.lower()]
    except KeyError:
        raise PermissionDeniedError(f"unknown-plan: {name!r}; plans are {', '.join(PLANS)}") from None
