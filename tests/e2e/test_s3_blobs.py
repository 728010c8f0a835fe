"""Services on different machines share no folder: with OSMOSE_BLOB_URL the claim check goes
through an S3-compatible bucket (the real SeaweedFS server that dev/seaweedfs.sh starts), and the
services' own data folders hold no blob."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from osmose.hosts.service_client import ServiceClient
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.conftest import s3_bucket, s3_settings
from tests.e2e.cluster import Cluster, delete_topics
from tests.fixtures.builders import build_title_body_pptx

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

FAST_PLAN = ["triage", "embedder", "persister"]


async def test_fast_plan_over_kafka_with_the_claim_check_in_s3(kafka_bootstrap: str, topic_prefix: str,
                                                                s3_client: Any, tmp_path: Path) -> None:
    settings, bucket, prefix = s3_settings(), s3_bucket(), f"e2e-{uuid.uuid4().hex[:8]}"
    env = {"OSMOSE_BLOB_URL": f"s3://{bucket}/{prefix}", "OSMOSE_BLOB_S3_ENDPOINT": settings["endpoint_url"],
           "OSMOSE_BLOB_S3_ACCESS_KEY_ID": settings["access_key_id"],
           "OSMOSE_BLOB_S3_SECRET_ACCESS_KEY": settings["secret_access_key"]}
    topics = f"{topic_prefix}-s3"
    cluster = Cluster(bootstrap=kafka_bootstrap, prefix=topics, data_dir=tmp_path / "data", log_dir=tmp_path,
                      extra_env=env)
    try:
        for stage in FAST_PLAN:
            cluster.start(stage)
        cluster.wait_serving(FAST_PLAN)
        async with ServiceClient(cluster.front_door) as client:
            response = await client.submit(build_title_body_pptx(tmp_path), tenant="acme", tier=pb.TIER_FAST)
            job = await client.watch(response.job_id, timeout_s=180)
        codes = cluster.stop_all()
    finally:
        cluster.stop_all()
        delete_topics(kafka_bootstrap, topics)
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    assert json.loads(job.report_json)["chunks"] > 0
    assert codes == dict.fromkeys(FAST_PLAN, 0)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    assert len(keys) >= 2, keys      # the submitted file and at least one claim-checked work item
    assert not (tmp_path / "data" / "blobs").exists() or not any((tmp_path / "data" / "blobs").rglob("*"))
