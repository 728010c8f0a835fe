"""The chart and the code agree on every stage, port, consumer group and topic.

pipeline.yaml is what `osmose describe --json` prints, and the rendered ScaledObjects, Deployments
and Services use exactly the names and ports the services use, for the default prefix and another.
Change a port, a topic or a group in the code and these fail until `make chart-values` is run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.chart.render import CHART, PROFILES, REPO, Tools, helm_template, load_objects

OSMOSE = [sys.executable, "-m", "osmose.cli.main"]


def describe(prefix: str | None = None) -> dict:
    command = [*OSMOSE, "describe", "--json"] + (["--topic-prefix", prefix] if prefix else [])
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True,
                                     env={"PATH": "/usr/bin:/bin"}, cwd=REPO).stdout)


def test_pipeline_yaml_is_what_osmose_describe_prints() -> None:
    chart_copy = yaml.safe_load((CHART / "pipeline.yaml").read_text())
    assert chart_copy == describe(), "helm/osmose/pipeline.yaml is stale: run `make chart-values`"


def test_router_default_is_the_shipped_router() -> None:
    shipped = (REPO / "libs" / "osmose" / "models" / "router.yaml").read_text()
    assert (CHART / "files" / "router.yaml").read_text() == shipped, "run `make chart-values`"


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("prefix", [None, "acme-prod.osmose"])
def test_stage_objects_use_the_codes_ports_groups_and_topics(tools: Tools, prefix: str | None) -> None:
    declared = describe(prefix)
    sets = {"kafka.topicPrefix": prefix} if prefix else {}
    objects = load_objects(helm_template(tools, PROFILES["minimal"], sets=sets).stdout)
    deployments, services = _by_kind(objects, "Deployment"), _by_kind(objects, "Service")
    scaled = _by_kind(objects, "ScaledObject")
    assert len([d for d in deployments if d.startswith("osmose-") and "backend" not in d]) == len(declared["stages"])
    for stage in declared["stages"]:
        name = f"osmose-{stage['name']}"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][:2] == ["serve", stage["name"]]
        for flag, key in (("--port", "port"), ("--internal-port", "internal_port"), ("--health-port", "health_port"),
                          ("--metrics-port", "metrics_port")):
            assert f"{flag}={stage[key]}" in container["args"]
        assert [p["containerPort"] for p in container["ports"]] == [stage["port"], stage["internal_port"],
                                                                      stage["health_port"], stage["metrics_port"]]
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [stage["port"], stage["internal_port"]]
        triggers = scaled[name]["spec"]["triggers"]
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {stage["consumer_group"]}
        assert [t["metadata"]["topic"] for t in triggers] == [stage["topics"]["input"][p] for p in declared["priorities"]]
        assert scaled[name]["spec"]["maxReplicaCount"] <= stage["partitions"]
    configmap = _by_kind(objects, "ConfigMap")["osmose-config"]
    assert configmap["data"]["OSMOSE_TOPIC_PREFIX"] == declared["prefix"]
