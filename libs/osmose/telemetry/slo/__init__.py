"""Service level objectives, written once (``spec.yaml``) and generated into Prometheus rules."""

from osmose.telemetry.slo.spec import SloSpec, Windows, load_spec

__all__ = ["SloSpec", "Windows", "load_spec"]
