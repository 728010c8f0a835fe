"""The metric-name contract, against a real Prometheus (Debian's package).

Six `osmose serve` processes on the real broker ingest a few documents (one FAST, one STANDARD,
one DEEP, one that fails), their model calls answered by local vLLM-like and TEI servers. Each
process's /metrics passes `promtool check metrics`. A Prometheus server scrapes them every second,
plus the recorded /metrics fixtures of vLLM, TEI, KEDA and kube-state-metrics
(tests/fixtures/metrics/), and evaluates the generated rules. Then:

* every metric a rule, an alert or a dashboard panel names exists in what Prometheus scraped or
  recorded, with every label its selectors match on and every label it groups by;
* every panel's query returns data;
* every rule evaluates without error.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.hosts.service_client import ServiceClient
from osmose.telemetry.dashboards.panels import DASHBOARDS
from osmose.telemetry.slo.generate import OUT as RULES
from osmose.v1 import document_pb2 as pb
from tests.e2e.cluster import STAGES, Cluster, delete_topics, free_ports
from tests.fixtures.builders import build_picture_pptx, build_title_body_pptx
from tests.unit.models.backends import write_router

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600),
              pytest.mark.skipif((shutil.which("prometheus") is None or shutil.which("promtool") is None) and not os.environ.get("CI"),
                                 reason="the Prometheus server and promtool (Debian package prometheus) are needed")]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
_METRIC = re.compile(r"\b((?:osmose_|slo:|vllm:|te_|keda_|kube_)[a-zA-Z0-9_:]*)")
_SELECTOR = re.compile(r"\b((?:osmose_|slo:|vllm:|te_|keda_|kube_)[a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')
_BY = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")


@contextmanager
def fixture_server() -> Iterator[int]:
    """The recorded /metrics files at /<name>/metrics."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = FIXTURES / f"{self.path.strip('/').removesuffix('/metrics')}.prom"
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def prometheus(tmp: Path, targets: dict[str, list[str]], fixtures_port: int) -> Iterator[str]:
    [port] = free_ports(1)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yaml"))],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": hosts}]} for job, hosts in targets.items()]
        # namespace and pod: what the PodMonitors' relabelling attaches in a cluster
        + [{"job_name": name, "metrics_path": f"/{name}/metrics",
            "static_configs": [{"targets": [f"127.0.0.1:{fixtures_port}"],
                                "labels": {"namespace": "osmose", "pod": f"{name}-0"}}]}
           for name in ("vllm", "tei", "keda", "kube-state-metrics")],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--enable-feature=exemplar-storage"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "Prometheus did not become ready"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def api(url: str, path: str, **params: str | list[str]) -> object:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=30) as response:  # noqa: S310 - loopback
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def rule_exprs() -> list[str]:
    return [rule["expr"] for path in sorted(RULES.glob("*.yaml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def panel_exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL with Grafana's variables replaced)."""
    return [(d.uid, p.title, expr.replace("$__rate_interval", "1m").replace("$__range", "15m"))
            for d in DASHBOARDS for p in d.panels for expr, _ in p.queries]


async def test_rules_alerts_and_panels_name_only_what_prometheus_scraped(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    prefix = f"{topic_prefix}-contract"
    with ChatServer(latency=LatencyModel(time_scale=0)) as chat, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        router = write_router(tmp_path / "router.yaml", llm=f"{chat.url}/v1", vision=f"{chat.url}/v1", tei=tei.url)
        cluster = Cluster(bootstrap=kafka_bootstrap, prefix=prefix, data_dir=tmp_path / "data", log_dir=tmp_path,
                          extra_env={"OSMOSE_LLM_URL": f"{chat.url}/v1", "OSMOSE_VISION_URL": f"{chat.url}/v1",
                                     "OSMOSE_TEI_URL": tei.url, "OSMOSE_ROUTER_CONFIG": str(router)})
        broken = tmp_path / "broken.pptx"
        broken.write_bytes(b"PK\x03\x04 this is not a deck")
        documents = [(build_title_body_pptx(tmp_path, name="fast.pptx"), pb.TIER_FAST),
                     (build_title_body_pptx(tmp_path, name="standard.pptx",
                                            body=("Zero Trust Network Access", "replaces the VPN")), pb.TIER_STANDARD),
                     (build_picture_pptx(tmp_path), pb.TIER_DEEP), (broken, pb.TIER_FAST)]
        try:
            cluster.start_all()
            cluster.wait_serving()
            with fixture_server() as fixtures_port, prometheus(
                    tmp_path, {f"osmose-{s}": [f"127.0.0.1:{cluster.metrics_ports[s]}"] for s in STAGES},
                    fixtures_port) as url:
                async with ServiceClient(cluster.front_door) as client:
                    jobs = [await client.submit(path, tenant="acme", tier=tier) for path, tier in documents]
                    for job in jobs:
                        await client.watch(job.job_id, timeout_s=240)
                # every service's real output is valid exposition
                for stage in STAGES:
                    with urllib.request.urlopen(  # noqa: S310 - loopback
                            f"http://127.0.0.1:{cluster.metrics_ports[stage]}/metrics", timeout=10) as response:
                        text = response.read().decode()
                    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                                           text=True, timeout=60)
                    assert check.returncode == 0, (stage, check.stdout + check.stderr)
                # a few scrapes and rule evaluations after the last document
                deadline = time.monotonic() + 60
                while True:
                    data = api(url, "query", query="sum(osmose_documents_persisted_total)")
                    if data["result"] and float(data["result"][0]["value"][1]) >= 3:
                        break
                    assert time.monotonic() < deadline, "Prometheus did not scrape the persisted documents"
                    time.sleep(0.5)
                time.sleep(5)
                problems = _contract_problems(url)
        finally:
            cluster.stop_all()
            delete_topics(kafka_bootstrap, prefix)
    assert not problems, "\n".join(problems)


def _contract_problems(url: str) -> list[str]:
    problems: list[str] = []
    targets = api(url, "targets")["activeTargets"]
    problems += [f"target {t['labels']['job']} is {t['health']}: {t.get('lastError')}" for t in targets
                 if t["health"] != "up"]
    names = set(api(url, "label/__name__/values"))
    exprs = [("rule", "", e) for e in rule_exprs()] + [(d, p, e) for d, p, e in panel_exprs()]
    for where, what, expr in exprs:
        metrics = set(_METRIC.findall(expr))
        for metric in sorted(metrics - names):
            problems.append(f"{where} {what}: {metric} was never scraped or recorded")
        # Label names must exist; values may not have occurred in a short run (a tenant class with no
        # document, an error code that never happened): those are the alerts' business, not a typo's.
        for metric, matchers in _SELECTOR.findall(expr):
            wanted = {label for label, _op, _value in _MATCHER.findall(matchers)}
            if metric in names and wanted:
                labels = set().union(*(set(s) for s in api(url, "series", **{"match[]": metric})[:200]))
                problems += [f"{where} {what}: {metric} has no label {label}" for label in sorted(wanted - labels)]
        grouped = {label.strip() for clause in _BY.findall(expr) for label in clause.split(",") if label.strip()}
        if grouped and metrics & names:
            labels: set[str] = set()
            for metric in metrics & names:
                for series in api(url, "series", **{"match[]": metric})[:200]:
                    labels |= set(series)
            problems += [f"{where} {what}: no series of {sorted(metrics)} has label {label}"
                         for label in sorted(grouped - labels)]
    for dashboard, panel, expr in panel_exprs():
        if not api(url, "query", query=expr)["result"]:
            problems.append(f"panel {dashboard} / {panel} returns no data: {expr}")
    for group in api(url, "rules")["groups"]:
        problems += [f"rule {r.get('name')} in {group['name']}: {r.get('lastError')}" for r in group["rules"]
                     if r.get("health") not in ("ok", None)]
    return problems
