"""Every KEDA trigger the chart renders uses keys and values KEDA's scalers actually read.

KEDA's CRD types trigger metadata as a map of strings, so kubeconform cannot catch a misspelt or
removed key: KEDA would ignore it (or use its default) and the workload would silently scale on
something else. tests/chart/keda_scalers.json holds the keys of KEDA's Kafka and Prometheus scalers
as their source declares them (provenance inside); every profile and fixture is checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chart.render import FIXTURES, PROFILES, Tools, helm_template, load_objects

SCALERS = json.loads((Path(__file__).parent / "keda_scalers.json").read_text())
RENDERS = {**{name: values for name, values in PROFILES.items()},
           **{f"fixture-{p.stem}": (*PROFILES["minimal"], p) for p in sorted((FIXTURES / "valid").glob("*.yaml"))}}


@pytest.fixture(scope="module", params=sorted(RENDERS))
def rendered_objects(request: pytest.FixtureRequest, tools: Tools) -> list[dict]:
    return load_objects(helm_template(tools, RENDERS[request.param]).stdout)


def _readable(scaler: str, key: str, source: str) -> bool:
    known = SCALERS[scaler].get(key)
    return known is not None and source in known["from"]


def test_trigger_metadata_keys_and_values_are_what_keda_reads(rendered_objects: list[dict]) -> None:
    triggers = [(o["metadata"]["name"], t) for o in rendered_objects if o["kind"] == "ScaledObject"
                for t in o["spec"]["triggers"]]
    wrong = []
    for owner, trigger in triggers:
        scaler = trigger["type"]
        if scaler not in SCALERS:
            assert scaler in ("cpu", "memory"), f"{owner}: trigger type {scaler} has no key list"
            continue
        for key, value in trigger["metadata"].items():
            if not _readable(scaler, key, "triggerMetadata"):
                wrong.append(f"{owner}/{trigger.get('name')}: {scaler} scaler reads no metadata key {key!r}")
            elif (allowed := SCALERS[scaler][key].get("enum")) and value not in allowed:
                wrong.append(f"{owner}/{trigger.get('name')}: {key}={value!r} not in {allowed}")
        required = [k for k in ("bootstrapServers", "consumerGroup", "topic") if scaler == "kafka"] + \
                   [k for k in ("serverAddress", "query", "threshold") if scaler == "prometheus"]
        wrong += [f"{owner}/{trigger.get('name')}: {k} missing" for k in required if not trigger["metadata"].get(k)]
    assert not wrong, "\n".join(wrong)


def test_trigger_authentication_parameters_are_what_the_kafka_scaler_reads(rendered_objects: list[dict]) -> None:
    for auth in (o for o in rendered_objects if o["kind"] == "TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", []):
            assert _readable("kafka", ref["parameter"], "authParams"), (auth["metadata"]["name"], ref)


def test_the_key_list_catches_a_misspelt_key() -> None:
    """The check has teeth: a wrong case, a key KEDA removed (Prometheus `metricName`, gone in 2.12) and
    a credential put in metadata instead of a TriggerAuthentication are refused."""
    assert not _readable("kafka", "lagthreshold", "triggerMetadata")
    assert not _readable("prometheus", "metricName", "triggerMetadata")
    assert _readable("kafka", "lagThreshold", "triggerMetadata")
    assert not _readable("kafka", "username", "triggerMetadata") and _readable("kafka", "username", "authParams")
