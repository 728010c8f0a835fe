"""Properties of the rendered objects, in every profile: what the issue asks the chart to guarantee."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.chart.render import CHART, PROFILES, Tools, helm_template, load_objects

PIPELINE = yaml.safe_load((CHART / "pipeline.yaml").read_text())
STAGES = {s["name"]: s for s in PIPELINE["stages"]}
WORKLOADS = ("Deployment", "Job", "Pod")


def pod_spec(obj: dict) -> dict:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def of_kind(objects: list[dict], *kinds: str) -> list[dict]:
    return [o for o in objects if o["kind"] in kinds]


def stage_deployments(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["labels"]["osmose.io/stage"]: o for o in of_kind(objects, "Deployment")
            if "osmose.io/stage" in o["metadata"]["labels"]}


@pytest.fixture(params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest, objects: dict[str, list[dict]]) -> list[dict]:
    return objects[request.param]


def test_every_stage_has_a_deployment_with_grpc_probes_on_its_health_port(profile: list[dict]) -> None:
    # kubelet's native gRPC probes cannot speak TLS: they go to the plaintext health listener.
    deployments = stage_deployments(profile)
    assert set(deployments) == set(STAGES)
    for name, deployment in deployments.items():
        container = pod_spec(deployment)["containers"][0]
        health = STAGES[name]["health_port"]
        assert {"name": "health", "containerPort": health, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health, (name, probe)
        # readiness follows the stage's dependencies; liveness only that the process runs
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"
        assert "service" not in container["readinessProbe"]["grpc"]


def test_grace_period_covers_the_drain(profile: list[dict]) -> None:
    for deployment in stage_deployments(profile).values():
        args = pod_spec(deployment)["containers"][0]["args"]
        drain = float(next(a for a in args if a.startswith("--drain-timeout=")).split("=")[1])
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > drain + 5


def test_no_container_runs_as_root_or_with_a_writable_root(profile: list[dict]) -> None:
    for obj in of_kind(profile, *WORKLOADS):
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, obj["metadata"]["name"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == ["ALL"]
            assert ctx["runAsUser"] > 0
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), obj["metadata"]["name"]
    for runtime in of_kind(profile, "ServingRuntime"):
        for container in runtime["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for isvc in of_kind(profile, "InferenceService"):
        assert isvc["spec"]["predictor"]["securityContext"]["runAsNonRoot"] is True


def scaled_targets(objects: list[dict]) -> set[str]:
    return {o["spec"]["scaleTargetRef"]["name"] for o in of_kind(objects, "ScaledObject", "HorizontalPodAutoscaler")}


def test_no_replicas_field_where_an_autoscaler_owns_the_workload(profile: list[dict]) -> None:
    targets = scaled_targets(profile)
    for deployment in of_kind(profile, "Deployment"):
        if deployment["metadata"]["name"] in targets:
            assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
        else:
            assert "replicas" in deployment["spec"]


def test_pdbs_only_where_more_than_one_replica_is_kept(profile: list[dict]) -> None:
    floors = {o["spec"]["scaleTargetRef"]["name"]: o["spec"].get("minReplicaCount", o["spec"].get("minReplicas", 1))
              for o in of_kind(profile, "ScaledObject", "HorizontalPodAutoscaler")}
    pdbs = {o["metadata"]["name"] for o in of_kind(profile, "PodDisruptionBudget")}
    for deployment in stage_deployments(profile).values():
        name = deployment["metadata"]["name"]
        floor = floors.get(name, deployment["spec"].get("replicas", 1))
        assert (name in pdbs) == (floor > 1), (name, floor)


def test_scaled_objects_never_exceed_the_partitions(profile: list[dict]) -> None:
    for scaled in of_kind(profile, "ScaledObject"):
        stage = scaled["metadata"]["labels"].get("osmose.io/stage")
        if stage:
            assert scaled["spec"]["maxReplicaCount"] <= STAGES[stage]["partitions"]
            lanes = [t["name"] for t in scaled["spec"]["triggers"]]
            assert lanes == [f"{p}-lane" for p in PIPELINE["priorities"]]


# An aggregation at the top of the query, without `by`/`without`: exactly one series.
ONE_SERIES = re.compile(r"^(sum|max|min|avg|count)\((?!.*\)\s*(by|without)\b).*\)$")


def test_every_prometheus_query_aggregates_to_one_series(profile: list[dict]) -> None:
    for scaled in of_kind(profile, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "prometheus":
                assert ONE_SERIES.match(trigger["metadata"]["query"]), trigger["metadata"]["query"]
                assert trigger["metadata"]["ignoreNullValues"] == "false"


def test_backends_wake_on_their_callers_lag(profile: list[dict]) -> None:
    for scaled in of_kind(profile, "ScaledObject"):
        if scaled["metadata"]["labels"]["app.kubernetes.io/component"].startswith("backend-"):
            kinds = [t["type"] for t in scaled["spec"]["triggers"]]
            assert "kafka" in kinds and "prometheus" in kinds
            for trigger in scaled["spec"]["triggers"]:
                if trigger["type"] == "kafka":
                    group = trigger["metadata"]["consumerGroup"]
                    assert group.split(".")[-1] in STAGES


def gpu_requests(spec_resources: dict) -> bool:
    return any("gpu" in key for key in (spec_resources.get("limits") or {}))


def test_gpu_workloads_land_only_on_gpu_pools(profile: list[dict]) -> None:
    pool_selectors = {}
    for doc in (CHART / "values-production.yaml", CHART / "values-burst-spot.yaml"):
        pool_selectors.update({name: pool["nodeSelector"] for name, pool in
                               (yaml.safe_load(doc.read_text()).get("gpuPools") or {}).items()})
    placed = []
    for deployment in of_kind(profile, "Deployment"):
        spec = pod_spec(deployment)
        if any(gpu_requests(c.get("resources", {})) for c in spec["containers"]):
            placed.append(spec)
    for isvc in of_kind(profile, "InferenceService"):
        if gpu_requests(isvc["spec"]["predictor"]["model"]["resources"]):
            placed.append(isvc["spec"]["predictor"])
    for spec in placed:
        selector = spec.get("nodeSelector") or {}
        assert any(all(selector.get(k) == v for k, v in pool.items()) for pool in pool_selectors.values()), selector
        assert spec.get("tolerations"), "a GPU pod must tolerate the GPU taint"
    # Stages never ask for a GPU.
    for deployment in stage_deployments(profile).values():
        assert not gpu_requests(pod_spec(deployment)["containers"][0]["resources"])


def test_network_policies_allow_only_what_each_stage_needs(profile: list[dict]) -> None:
    policies = {o["metadata"]["name"]: o for o in of_kind(profile, "NetworkPolicy")}
    for name, stage in STAGES.items():
        policy = policies[f"osmose-{name}"]
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert ingress_ports == {stage["port"], stage["internal_port"], stage["health_port"], stage["metrics_port"]}
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert (7687 in egress_ports) == ("graph" in stage["resources"]), name
        assert (6333 in egress_ports) == ("vectors" in stage["resources"]), name
        assert 9092 in egress_ports and 53 in egress_ports


def test_backends_get_shm_and_long_startup_probes(profile: list[dict]) -> None:
    for deployment in of_kind(profile, "Deployment"):
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"].startswith("backend-"):
            spec = pod_spec(deployment)
            assert any(v["name"] == "shm" and v["emptyDir"]["medium"] == "Memory" for v in spec["volumes"])
            probe = spec["containers"][0]["startupProbe"]
            assert probe["periodSeconds"] * probe["failureThreshold"] >= 600


def test_helm_test_pod_submits_to_the_front_door(profile: list[dict]) -> None:
    (pod,) = [o for o in of_kind(profile, "Pod") if o["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    container = pod["spec"]["containers"][0]
    assert "osmose submit --wait" in container["args"][0]
    server = {e["name"]: e.get("value") for e in container["env"]}["OSMOSE_SERVER"]
    front = PIPELINE["stages"][0]
    assert server.endswith(f":{front['port']}") and f"-{front['name']}." in server


def test_topics_job_runs_osmose_topics_create_as_a_hook(profile: list[dict]) -> None:
    (job,) = of_kind(profile, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert pod_spec(job)["containers"][0]["args"] == ["topics", "--create"]


def test_max_replicas_above_the_partitions_is_refused_with_the_reason(tools: Tools) -> None:
    partitions = STAGES["embedder"]["partitions"]
    result = helm_template(tools, PROFILES["minimal"], check=False,
                           sets={"stages.embedder.autoscaling.maxReplicas": str(partitions + 1)})
    assert result.returncode != 0
    assert f"maxReplicas is {partitions + 1}" in result.stderr
    assert f"have {partitions} partitions" in result.stderr and "KEDA would silently cap it" in result.stderr


def test_hpa_mode_renders_cpu_autoscalers_and_no_scaled_objects(tools: Tools) -> None:
    objects = load_objects(helm_template(tools, PROFILES["minimal"], sets={"autoscaling.mode": "hpa"}).stdout)
    assert not of_kind(objects, "ScaledObject")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    assert len(hpas) == len(STAGES)
    assert all(h["spec"]["metrics"][0]["resource"]["name"] == "cpu" for h in hpas)


def test_fixed_replicas_without_an_autoscaler(tools: Tools) -> None:
    objects = load_objects(helm_template(tools, PROFILES["minimal"], sets={
        "autoscaling.mode": "none", "stageDefaults.replicas": "3"}).stdout)
    assert not of_kind(objects, "ScaledObject", "HorizontalPodAutoscaler")
    assert all(d["spec"]["replicas"] == 3 for d in stage_deployments(objects).values())
    assert len(of_kind(objects, "PodDisruptionBudget")) == len(STAGES)


def test_in_flight_is_derived_by_the_process_unless_the_values_fix_it(tools: Tools) -> None:
    derived = stage_deployments(load_objects(helm_template(tools, PROFILES["minimal"]).stdout))
    assert not any(a.startswith("--max-in-flight") for d in derived.values() for a in pod_spec(d)["containers"][0]["args"])
    fixed = stage_deployments(load_objects(helm_template(tools, PROFILES["minimal"], sets={
        "stageDefaults.maxInFlight": "4", "stages.miner.maxInFlight": "6"}).stdout))
    args = {name: pod_spec(d)["containers"][0]["args"] for name, d in fixed.items()}
    assert "--max-in-flight=6" in args["miner"]
    assert all("--max-in-flight=4" in a for name, a in args.items() if name != "miner")


def test_scale_to_zero_with_an_activation_threshold_is_refused(tools: Tools) -> None:
    result = helm_template(tools, PROFILES["minimal"], check=False, sets={
        "stages.miner.autoscaling.minReplicas": "0", "stages.miner.autoscaling.lanes.bulk.activationLagThreshold": "5"})
    assert result.returncode != 0 and "would never wake the stage" in result.stderr


def test_monitoring_objects_follow_the_declaration(profile: list[dict]) -> None:
    """Stages expose the declared metrics port; with monitoring on, one PodMonitor scrapes it, one
    PrometheusRule holds every generated group and one ConfigMap per generated dashboard is labelled."""
    for name, deployment in stage_deployments(profile).items():
        container = pod_spec(deployment)["containers"][0]
        assert {"name": "metrics", "containerPort": STAGES[name]["metrics_port"], "protocol": "TCP"} in container["ports"]
        assert f"--metrics-port={STAGES[name]['metrics_port']}" in container["args"]
    monitors = [o for o in of_kind(profile, "PodMonitor") if o["metadata"]["name"].endswith("-stages")]
    rules = of_kind(profile, "PrometheusRule")
    dashboards = [o for o in of_kind(profile, "ConfigMap") if "grafana_dashboard" in o["metadata"]["labels"]]
    if not monitors:
        assert not rules and not dashboards
        return
    assert monitors[0]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    files = CHART / "files"
    groups = [g["name"] for f in sorted((files / "prometheus").glob("*.yaml"))
              for g in yaml.safe_load(f.read_text())["groups"]]
    assert [g["name"] for g in rules[0]["spec"]["groups"]] == groups
    assert sorted(next(iter(c["data"])) for c in dashboards) == sorted(p.name for p in (files / "dashboards").glob("*.json"))


def _alerts(groups: list[dict]) -> dict[tuple[str, str], str]:
    """(alert, severity + other labels) -> runbook_url of every alert rule in `groups`."""
    return {(r["alert"], repr(sorted(r["labels"].items()))): r["annotations"]["runbook_url"]
            for g in groups for r in g["rules"] if "alert" in r}


def test_alert_runbook_links_follow_the_deployments_base_url(tools: Tools) -> None:
    """monitoring.runbookBaseUrl goes in front of every alert's runbook link ("README.md#runbook-..."
    in the generated files); without it the link stays relative; a base without "/" is refused."""
    generated = _alerts([g for f in sorted((CHART / "files" / "prometheus").glob("*.yaml"))
                         for g in yaml.safe_load(f.read_text())["groups"]])
    assert generated and all(url.startswith("README.md#runbook-") for url in generated.values())
    base = "https://git.example.com/platform/osmose/-/blob/v0.1.0/"
    for sets, expected in (({}, ""), ({"monitoring.runbookBaseUrl": base}, base)):
        objects = load_objects(helm_template(tools, PROFILES["minimal"], sets={
            "monitoring.prometheusRule.enabled": "true", **sets}).stdout)
        (rule,) = of_kind(objects, "PrometheusRule")
        assert _alerts(rule["spec"]["groups"]) == {key: expected + url for key, url in generated.items()}
    result = helm_template(tools, PROFILES["minimal"], check=False,
                           sets={"monitoring.runbookBaseUrl": "https://git.example.com/osmose"})
    assert result.returncode != 0 and "runbookBaseUrl" in result.stderr


def test_blob_sweep_cronjob_runs_the_sweep_as_an_unprivileged_pod(profile: list[dict]) -> None:
    """`osmose blobs sweep` daily, one run at a time, with the stages' settings (blob store, Kafka)."""
    (cron,) = of_kind(profile, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["osmose"] and container["args"] == ["blobs", "sweep"]
    assert {"configMapRef": {"name": "osmose-config"}} in container["envFrom"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert float(env["OSMOSE_BLOB_RETENTION_DAYS"]) >= 7
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
