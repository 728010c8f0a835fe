"""What the chart guarantees about the stages' transport security and credentials (issue 12), in
every profile: TLS files and credentials mounted, three listeners with the right reachability,
probes that need no certificate, no render without something to authenticate callers with."""

from __future__ import annotations

import pytest
import yaml

from tests.chart.render import NAMESPACE, PROFILES, RELEASE, REPO, Tools, helm_template, load_objects
from tests.chart.test_objects import PIPELINE, STAGES, of_kind, pod_spec, stage_deployments

TLS_DIR = "/etc/osmose/tls"


@pytest.fixture(params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest, objects: dict[str, list[dict]]) -> list[dict]:
    return objects[request.param]


def values_of(name: str) -> dict:
    merged: dict = {}
    for path in PROFILES[name]:
        merged.update(yaml.safe_load(path.read_text()))
    return merged


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def release_selector() -> dict:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "osmose", "app.kubernetes.io/instance": RELEASE}}}


def test_stages_listen_on_every_interface_with_their_declared_ports(profile: list[dict]) -> None:
    for name, deployment in stage_deployments(profile).items():
        container = pod_spec(deployment)["containers"][0]
        stage = STAGES[name]
        assert "--host=0.0.0.0" in container["args"]
        assert not any(a.startswith("--insecure") for a in container["args"]), name
        for flag, key in (("--port", "port"), ("--internal-port", "internal_port"), ("--health-port", "health_port"),
                          ("--metrics-port", "metrics_port")):
            assert f"{flag}={stage[key]}" in container["args"], (name, flag)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": stage["port"], "internal": stage["internal_port"], "health": stage["health_port"],
                         "metrics": stage["metrics_port"]}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_tls_secret_is_mounted_read_only_and_named_in_every_stage(objects: dict[str, list[dict]], name: str) -> None:
    secret = values_of(name)["security"]["tls"]["existingSecret"]
    for stage, deployment in stage_deployments(objects[name]).items():
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
        assert {i["path"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
        assert volume["secret"]["defaultMode"] == 0o440
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["mountPath"] == TLS_DIR and mount["readOnly"] is True
        env = env_of(container)
        assert env["OSMOSE_TLS_CERT"]["value"] == f"{TLS_DIR}/tls.crt", stage
        assert env["OSMOSE_TLS_KEY"]["value"] == f"{TLS_DIR}/tls.key", stage
        assert env["OSMOSE_TLS_CA"]["value"] == f"{TLS_DIR}/ca.crt", stage


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_stage_has_the_credentials_it_checks_callers_against(objects: dict[str, list[dict]], name: str) -> None:
    auth = values_of(name)["security"]["auth"]
    for deployment in stage_deployments(objects[name]).values():
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        env = env_of(container)
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "OSMOSE_API_KEYS_FILE" in env or "OSMOSE_JWT_ISSUER" in env
        if auth.get("apiKeys", {}).get("existingSecret"):
            path = env["OSMOSE_API_KEYS_FILE"]["value"]
            mount = mounts[path.rsplit("/", 1)[0]]
            assert mount["readOnly"] is True
            (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
            assert volume["secret"]["secretName"] == auth["apiKeys"]["existingSecret"]
        jwt = auth.get("jwt", {})
        if jwt.get("issuer"):
            assert env["OSMOSE_JWT_ISSUER"]["value"] == jwt["issuer"]
            assert ("OSMOSE_JWT_JWKS_FILE" in env) == bool(jwt.get("jwksConfigMap"))
            assert ("OSMOSE_JWT_JWKS_URL" in env) == bool(jwt.get("jwksUrl"))


@pytest.mark.parametrize(("sets", "message"), [
    ({"security.auth.apiKeys.existingSecret": ""}, "security.auth: configure API keys"),
    ({"security.tls.existingSecret": ""}, "security.tls.existingSecret is required"),
    ({"security.auth.jwt.issuer": "https://idp.example"}, "security.auth.jwt.issuer needs the issuer's keys"),
    ({"security.auth.jwt.issuer": "https://idp.example", "security.auth.jwt.jwksUrl": "https://idp.example/keys",
      "security.auth.jwt.jwksConfigMap": "jwks"}, "not both"),
    ({"helmTest.apiKeySecret": ""}, "helmTest.apiKeySecret is required"),
    ({"kafka.replicationFactor": "2", "kafka.minInsyncReplicas": "3"}, "every write would be refused"),
], ids=["no-credentials", "no-tls-secret", "issuer-without-keys", "two-jwks", "test-without-key", "isr-above-rf"])
def test_rendering_fails_with_the_reason(tools: Tools, sets: dict[str, str], message: str) -> None:
    result = helm_template(tools, PROFILES["minimal"], sets=sets, check=False)
    assert result.returncode != 0, f"rendered with {sets}"
    assert message in result.stderr, result.stderr


def test_jwt_alone_is_enough_without_api_keys(tools: Tools) -> None:
    objects = load_objects(helm_template(tools, PROFILES["minimal"], sets={
        "security.auth.apiKeys.existingSecret": "", "security.auth.jwt.issuer": "https://idp.example",
        "security.auth.jwt.jwksUrl": "https://idp.example/keys", "helmTest.enabled": "false"}).stdout)
    for deployment in stage_deployments(objects).values():
        env = env_of(pod_spec(deployment)["containers"][0])
        assert "OSMOSE_API_KEYS_FILE" not in env and env["OSMOSE_JWT_JWKS_URL"]["value"] == "https://idp.example/keys"
    # The stages fetch the issuer's keys: their NetworkPolicies let them reach it.
    for policy in of_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["labels"]["app.kubernetes.io/component"].startswith("stage-"):
            assert any(p["port"] == 443 for rule in policy["spec"]["egress"] for p in rule["ports"])


def test_internal_port_is_reachable_only_from_the_release(profile: list[dict]) -> None:
    policies = {o["metadata"]["name"]: o for o in of_kind(profile, "NetworkPolicy")}
    for name, stage in STAGES.items():
        rules = policies[f"{RELEASE}-{name}"]["spec"]["ingress"]
        internal = [r for r in rules if any(p["port"] == stage["internal_port"] for p in r["ports"])]
        assert len(internal) == 1, name
        assert internal[0]["from"] == [release_selector()], name
        assert [p["port"] for p in internal[0]["ports"]] == [stage["internal_port"]]
        # The public port's callers (any namespace for the front door by default) never reach it.
        for rule in rules:
            if rule is not internal[0]:
                assert stage["internal_port"] not in [p["port"] for p in rule["ports"]]


def test_public_port_keeps_its_callers_and_health_port_admits_probes(profile: list[dict]) -> None:
    policies = {o["metadata"]["name"]: o for o in of_kind(profile, "NetworkPolicy")}
    for name, stage in STAGES.items():
        rules = policies[f"{RELEASE}-{name}"]["spec"]["ingress"]
        public = [r for r in rules if [p["port"] for p in r["ports"]] == [stage["port"]]]
        health = [r for r in rules if [p["port"] for p in r["ports"]] == [stage["health_port"]]]
        assert len(public) == 1 and len(health) == 1, name
        if stage["role"] == "front-door":
            helm_test = {"podSelector": {"matchLabels": {**release_selector()["podSelector"]["matchLabels"],
                                                         "app.kubernetes.io/component": "helm-test"}}}
            assert helm_test in public[0]["from"]
        elif stage["role"] == "worker":
            assert public[0]["from"] == [release_selector()]
        assert health[0]["from"], "the health rule names its peers (networkPolicy.healthClients)"


def test_services_expose_grpc_and_internal_but_not_health(profile: list[dict]) -> None:
    services = {o["metadata"]["labels"]["osmose.io/stage"]: o for o in of_kind(profile, "Service")
                if "osmose.io/stage" in o["metadata"]["labels"]}
    assert set(services) == set(STAGES)
    for name, service in services.items():
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        assert ports == {"grpc": (STAGES[name]["port"], "grpc"), "internal": (STAGES[name]["internal_port"], "internal")}


def test_helm_test_pod_verifies_the_server_and_sends_an_api_key(profile: list[dict]) -> None:
    (pod,) = [o for o in of_kind(profile, "Pod") if o["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    assert env["OSMOSE_TLS_CA"]["value"] == f"{TLS_DIR}/ca.crt"
    assert env["OSMOSE_API_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    # The key's own tenant: naming one would be refused for any other.
    assert "OSMOSE_TENANT" not in env and "OSMOSE_TLS_KEY" not in env
    (ca,) = [v for v in pod["spec"]["volumes"] if "secret" in v]
    assert ca["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "only the CA, never the server's key"


def test_production_topics_are_replicated_three_times_two_in_sync(objects: dict[str, list[dict]]) -> None:
    production = objects["production"]
    (config,) = [o for o in of_kind(production, "ConfigMap") if o["metadata"]["name"] == f"{RELEASE}-config"]
    assert config["data"]["OSMOSE_KAFKA_REPLICATION_FACTOR"] == "3"
    assert config["data"]["OSMOSE_KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    (job,) = of_kind(production, "Job")
    env = env_of(pod_spec(job)["containers"][0])
    assert env["OSMOSE_KAFKA_REPLICATION_FACTOR"]["value"] == "3"
    assert env["OSMOSE_KAFKA_MIN_INSYNC_REPLICAS"]["value"] == "2"


def test_kafka_client_certificate_is_mounted_for_the_stages_the_job_and_keda(objects: dict[str, list[dict]]) -> None:
    burst = objects["burst-spot"]
    (config,) = [o for o in of_kind(burst, "ConfigMap") if o["metadata"]["name"] == f"{RELEASE}-config"]
    assert config["data"]["OSMOSE_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    certfile, keyfile = config["data"]["OSMOSE_KAFKA_SSL_CERTFILE"], config["data"]["OSMOSE_KAFKA_SSL_KEYFILE"]
    for workload in [*stage_deployments(burst).values(), *of_kind(burst, "Job")]:
        mounts = {m["mountPath"] for m in pod_spec(workload)["containers"][0]["volumeMounts"]}
        assert certfile.rsplit("/", 1)[0] in mounts and keyfile.rsplit("/", 1)[0] in mounts
    (auth,) = of_kind(burst, "TriggerAuthentication")
    assert {"cert", "key", "ca"} <= {r["parameter"] for r in auth["spec"]["secretTargetRef"]}


def test_cert_manager_example_names_every_stage_service() -> None:
    docs = [d for d in yaml.safe_load_all((REPO / "k8s" / "cert-manager" / "certificate.yaml").read_text()) if d]
    (certificate,) = [d for d in docs if d["kind"] == "Certificate" and not d["spec"].get("isCA")]
    names = set(certificate["spec"]["dnsNames"])
    for stage in PIPELINE["stages"]:
        assert f"{RELEASE}-{stage['name']}.{NAMESPACE}.svc" in names, stage["name"]
    assert {"server auth", "client auth"} <= set(certificate["spec"]["usages"])
    assert certificate["spec"]["secretName"] == values_of("minimal")["security"]["tls"]["existingSecret"]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_model_api_keys_come_from_the_secret_on_both_sides(objects: dict[str, list[dict]], name: str) -> None:
    """With modelAuth.existingSecret the stages send the keys and the backends the chart runs require
    them (vLLM: VLLM_API_KEY, TEI: API_KEY), the same Secret key on both sides; without it, neither."""
    secret = values_of(name).get("modelAuth", {}).get("existingSecret")
    keys = {"OSMOSE_LLM_API_KEY": "llm-api-key", "OSMOSE_VISION_API_KEY": "vision-api-key",
            "OSMOSE_TEI_API_KEY": "tei-api-key"}
    for stage, deployment in stage_deployments(objects[name]).items():
        env = env_of(pod_spec(deployment)["containers"][0])
        for variable, key in keys.items():
            if secret:
                assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}, (stage, variable)
                assert "value" not in env[variable]
            else:
                assert variable not in env, (stage, variable)
    backends = [pod_spec(d)["containers"][0] for d in of_kind(objects[name], "Deployment")
                if d["metadata"]["labels"].get("app.kubernetes.io/component", "").startswith("backend-")]
    backends += [runtime["spec"]["containers"][0] for runtime in of_kind(objects[name], "ServingRuntime")]  # KServe
    if secret:
        assert backends, "the production profile runs its backends in the cluster"
    for container in backends:
        env = env_of(container)
        engine_key = "API_KEY" if "text-embeddings" in container["image"] else "VLLM_API_KEY"
        if secret:
            ref = env[engine_key]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret and ref["key"] in keys.values(), container["name"]
        else:
            assert engine_key not in env
