"""`osmose describe --json` is what the services really use: the ports they listen on by
default, the consumer groups they join and the topics they create on the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from tests.e2e.cluster import delete_topics, health_status
from tests.support import OSMOSE

pytestmark = pytest.mark.timeout(240)


def _group_id(group: object) -> str:
    """kafka-python returns group dicts (3.x) or (id, protocol) tuples (2.x)."""
    if isinstance(group, dict):
        return str(group.get("group_id") or group.get("group"))
    return str(group[0])  # type: ignore[index]


def _admin_view(bootstrap: str, prefix: str) -> tuple[set[str], set[str]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        groups = {_group_id(g) for g in admin.list_groups()}
        topics = set(admin.list_topics())
    finally:
        admin.close()
    return ({g for g in groups if g.startswith(f"{prefix}.")}, {t for t in topics if t.startswith(f"{prefix}.")})


def test_services_use_the_described_ports_groups_and_topics(kafka_bootstrap: str, topic_prefix: str,
                                                            tmp_path: Path) -> None:
    prefix = f"{topic_prefix}-describe"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
    env.update(OSMOSE_KAFKA_BOOTSTRAP=kafka_bootstrap, OSMOSE_TOPIC_PREFIX=prefix)
    described = json.loads(subprocess.run([str(OSMOSE), "describe", "--json"], env=env, check=True,
                                          capture_output=True, text=True).stdout)
    ports = {s["name"]: s["port"] for s in described["stages"]}
    front_door = described["stages"][0]["name"]
    # `serve all` listens on the front door's port; a single stage on its own port (no --port given).
    procs = {
        name: subprocess.Popen([str(OSMOSE), "serve", name, "--insecure", "--host", "127.0.0.1", "--data-dir",
                                str(tmp_path / name), "--session-timeout", "6"],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=(tmp_path / f"{name}.log").open("wb"), start_new_session=True)
        for name in ("all", "embedder")}
    try:
        deadline = time.monotonic() + 180
        for name, port in (("all", ports[front_door]), ("embedder", ports["embedder"])):
            while health_status(port) != health_pb2.HealthCheckResponse.SERVING:
                assert procs[name].poll() is None, (tmp_path / f"{name}.log").read_text()
                assert time.monotonic() < deadline, f"`osmose serve {name}` not serving on {port}"
                time.sleep(0.25)
        groups, topics = _admin_view(kafka_bootstrap, prefix)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(60)
        delete_topics(kafka_bootstrap, prefix)
    assert groups == {s["consumer_group"] for s in described["stages"]}
    assert topics == {t["name"] for t in described["topics"]}
    inputs = {t for s in described["stages"] for t in s["topics"]["input"].values()}
    assert inputs | {s["topics"]["dead_letter"] for s in described["stages"]} | {described["job_topic"]} == topics
    assert all(proc.returncode == 0 for proc in procs.values())
