"""Label values, bounded: every label a metric carries comes from a small closed set.

Never a document, job or tenant id: those go on spans and in logs. A tenant is
counted by its *class* (its entitlement plan), a document by its tier and lane.
"""

from __future__ import annotations

from osmose.pipeline import TIER_NAMES
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import envelope_pb2 as epb

__all__ = ["LANES", "OTHER", "TIERS", "lane_of", "tenant_class_of", "tier_label"]

TIERS: tuple[str, ...] = (*TIER_NAMES.values(), "unspecified")
LANES: tuple[str, ...] = ("high", "bulk")
#: the class of a plan name the SLO spec does not know (keeps the label bounded)
OTHER = "other"
_DEFAULT_CLASS = "default"


def tier_label(tier: int) -> str:
    return TIER_NAMES.get(tier, "unspecified")  # type: ignore[call-overload]  # protoc types the keys as Tier


def lane_of(priority: int) -> str:
    return "high" if priority == epb.PRIORITY_HIGH else "bulk"


def tenant_class_of(message: object) -> str:
    """The tenant class (entitlement plan) of an envelope or job snapshot.

    The front door writes the caller's plan (osmose.security.entitlements: starter, business,
    enterprise) on the envelope, and the job ledger copies it into every snapshot; a document
    without one (the local ``--insecure`` use) counts as ``default``. A plan the SLO spec does
    not list becomes ``other``, so a typo cannot create a new series per tenant.
    """
    descriptor = getattr(message, "DESCRIPTOR", None)
    plan = getattr(message, "plan", "") if descriptor is not None and "plan" in descriptor.fields_by_name else ""
    if not plan:
        return _DEFAULT_CLASS
    plan = str(plan).lower()
    return plan if plan in load_spec().tenant_classes else OTHER
