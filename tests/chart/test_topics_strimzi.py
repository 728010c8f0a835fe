"""kafka.topics.provisioner=strimzi: one KafkaTopic per topic the code declares, valid against Strimzi's CRD.

The topics (names for another prefix, partitions, configs) come from `osmose describe --json`, so a
topic added or changed in the code changes these objects; durability comes from values; the hook Job
is gone and the services are told to wait for the operator's topics instead of creating them.
"""

from __future__ import annotations

import yaml

from tests.chart.render import FIXTURES, PROFILES, Tools, helm_template, kubeconform, load_objects
from tests.chart.test_pipeline_sync import describe

STRIMZI = FIXTURES / "valid" / "strimzi-topics.yaml"


def _render(tools: Tools) -> list[dict]:
    return load_objects(helm_template(tools, (*PROFILES["minimal"], STRIMZI)).stdout)


def test_one_kafkatopic_per_declared_topic_with_the_codes_partitions_and_configs(tools: Tools) -> None:
    values = yaml.safe_load(STRIMZI.read_text())["kafka"]
    declared = {t["name"]: t for t in describe(values["topicPrefix"])["topics"]}
    objects = _render(tools)
    topics = [o for o in objects if o["kind"] == "KafkaTopic"]
    by_topic = {o["spec"].get("topicName", o["metadata"]["name"]): o for o in topics}
    assert set(by_topic) == set(declared)
    for name, topic in by_topic.items():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
        assert topic["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert topic["spec"]["partitions"] == declared[name]["partitions"]
        assert topic["spec"]["replicas"] == values["replicationFactor"]
        assert topic["spec"]["config"] == {**declared[name]["configs"],
                                           "min.insync.replicas": str(values["minInsyncReplicas"])}
    assert not [o for o in objects if o["kind"] == "Job"], "the topics Job must not run beside the operator"
    settings = next(o for o in objects if o["kind"] == "ConfigMap" and "OSMOSE_TOPIC_PREFIX" in o.get("data", {}))
    assert settings["data"]["OSMOSE_KAFKA_CREATE_TOPICS"] == "false"
    assert settings["data"]["OSMOSE_TOPIC_PREFIX"] == values["topicPrefix"]


def test_kafkatopics_are_checked_against_strimzis_schema(tools: Tools) -> None:
    """kubeconform validates KafkaTopic (it fails on kinds without a schema): an unknown spec key is refused."""
    manifests = helm_template(tools, (*PROFILES["minimal"], STRIMZI)).stdout
    assert kubeconform(tools, manifests).returncode == 0
    broken = manifests.replace("  partitions: 6\n", "  partitions: 6\n  partition: 6\n", 1)
    assert broken != manifests
    checked = kubeconform(tools, broken)
    assert checked.returncode != 0 and "KafkaTopic" in checked.stdout, checked.stdout


def test_job_provisioner_leaves_topic_creation_to_osmose(tools: Tools) -> None:
    objects = load_objects(helm_template(tools, PROFILES["minimal"]).stdout)
    assert not [o for o in objects if o["kind"] == "KafkaTopic"]
    settings = next(o for o in objects if o["kind"] == "ConfigMap" and "OSMOSE_TOPIC_PREFIX" in o.get("data", {}))
    assert "OSMOSE_KAFKA_CREATE_TOPICS" not in settings["data"]


def test_strimzi_without_a_cluster_name_says_what_is_missing(tools: Tools) -> None:
    result = helm_template(tools, (*PROFILES["minimal"], STRIMZI), sets={"kafka.topics.strimzi.cluster": ""},
                           check=False)
    assert result.returncode != 0
    assert "kafka.topics.strimzi.cluster is required" in result.stderr
