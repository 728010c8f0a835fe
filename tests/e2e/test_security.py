"""The services as an attacker on the network meets them: TLS on the public listener, every call
authenticated (API keys and JWTs), the tenant taken from the credential, the stages' Process RPCs
off the public listener, and erasure of a tenant. `osmose serve all` on the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2

from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.security import generate_api_key, hash_api_key
from osmose.security.devca import write_dev_ca
from osmose.security.tls import TlsFiles
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2_grpc as sgrpc
from tests.e2e.cluster import delete_topics, free_ports, health_status
from tests.fixtures.builders import build_title_body_pptx
from tests.support import OSMOSE

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

ISSUER = "https://id.osmose.test"


class Deployment:
    def __init__(self, root: Path, bootstrap: str, prefix: str) -> None:
        self.certs = write_dev_ca(root / "certs")
        self.keys = {name: generate_api_key() for name in ("alpha", "beta", "admin")}
        entries = [{"name": f"{n}-bot", "sha256": hash_api_key(k), "tenant": "admins" if n == "admin" else n,
                    "plan": "business", "roles": ["admin"] if n == "admin" else []} for n, k in self.keys.items()]
        (root / "keys.json").write_text(json.dumps({"keys": entries}))
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        (root / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "test", "use": "sig"}]}))
        self.port, self.internal_port, self.health_port, self.metrics_port = free_ports(4)
        self.prefix, self.bootstrap = prefix, bootstrap
        self.blobs = root / "data" / "blobs"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
        env.update(OSMOSE_KAFKA_BOOTSTRAP=bootstrap, OSMOSE_TOPIC_PREFIX=prefix, OSMOSE_DATA_DIR=str(root / "data"),
                   OSMOSE_TLS_CERT=str(self.certs / "server.pem"), OSMOSE_TLS_KEY=str(self.certs / "server-key.pem"),
                   OSMOSE_TLS_CA=str(self.certs / "ca.pem"), OSMOSE_API_KEYS_FILE=str(root / "keys.json"),
                   OSMOSE_JWT_ISSUER=ISSUER, OSMOSE_JWT_JWKS_FILE=str(root / "jwks.json"))
        self.log = root / "serve.log"
        self.proc = subprocess.Popen(
            [str(OSMOSE), "serve", "all", "--host", "127.0.0.1", "--port", str(self.port), "--internal-port",
             str(self.internal_port), "--health-port", str(self.health_port), "--metrics-port", str(self.metrics_port),
             "--session-timeout", "6"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
            start_new_session=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while health_status(self.health_port) != health_pb2.HealthCheckResponse.SERVING:   # plaintext probe port
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "not serving:\n" + self.log.read_text()[-3000:]
            time.sleep(0.25)

    def client(self, *, key: str | None = None, token: str | None = None) -> ServiceClient:
        tls = TlsFiles(ca=self.certs / "ca.pem")
        return ServiceClient(self.target, tls=tls, api_key=self.keys[key] if key else None, token=token)

    def token(self, tenant: str, *, expires_in: float = 300) -> str:
        claims = {"iss": ISSUER, "aud": "osmose", "sub": f"user@{tenant}", "exp": int(time.time() + expires_in),
                  "osmose_tenant": tenant, "osmose_plan": "enterprise"}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": "test"})

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


@pytest.fixture
def deployment(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Deployment]:
    running = Deployment(tmp_path, kafka_bootstrap, f"{topic_prefix}-secure")
    try:
        running.wait_serving()
        yield running
    finally:
        code = running.stop()
        delete_topics(kafka_bootstrap, running.prefix)
        assert code == 0, running.log.read_text()[-3000:]


async def _denied(call: Awaitable[object], *, naming: str | None = "beta") -> None:
    with pytest.raises(RequestRejected) as refused:
        await call
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED, refused.value
    if naming:
        assert f"'{naming}'" in str(refused.value)


async def test_tenants_are_enforced_from_the_credential(deployment: Deployment, tmp_path: Path) -> None:
    deck = build_title_body_pptx(tmp_path)
    async with deployment.client(key="alpha") as alpha:
        submitted = await alpha.submit(deck, tenant="", file="deck.pptx")        # the tenant of the credential
        job = await alpha.watch(submitted.job_id, timeout_s=180)
        assert job.state == epb.JOB_STATE_SUCCEEDED and job.tenant == "alpha", job.error
        assert job.priority == epb.PRIORITY_BULK     # the business plan's lane, whatever the client claims
        # Naming another tenant is refused on every call, with the tenant named in the reason.
        await _denied(alpha.submit(deck, tenant="beta"))
        await _denied(alpha.search("Quarterly Review", tenant="beta", limit=3))
        await _denied(alpha.stats("beta"))
        await _denied(alpha.get_job(submitted.job_id, tenant="beta"))
        await _denied(alpha.watch(submitted.job_id, tenant="beta", timeout_s=10, reconnect_s=0))
        await _denied(alpha.cancel(submitted.job_id, tenant="beta"))
        await _denied(alpha.delete_document(submitted.doc_id, tenant="beta"))
        await _denied(alpha.delete_tenant("beta"), naming=None)                   # admins only
        assert list(await alpha.stats()) == ["alpha"]                            # only its own
        hits = await alpha.search("Quarterly Review", tenant="", limit=3)
        assert hits and all(h.doc_id == submitted.doc_id for h in hits)
    async with deployment.client(key="beta") as beta:
        with pytest.raises(RequestRejected) as unknown:                          # no oracle: as if it did not exist
            await beta.get_job(submitted.job_id)
        assert unknown.value.code == grpc.StatusCode.NOT_FOUND
        own = await beta.stats()
        assert set(own) <= {"beta"} and not any(own.get("beta", {}).values())    # nothing of alpha's
        assert await beta.search("Quarterly Review", tenant="", limit=3) == []
    async with deployment.client(token=deployment.token("alpha")) as alpha_user:  # a JWT of the same tenant
        assert list(await alpha_user.stats()) == ["alpha"]
    async with deployment.client(key="admin") as admin:
        erased = await admin.delete_tenant("alpha")
        assert erased.documents == 1 and erased.chunks > 0
        assert erased.blobs >= 1                                                  # the deck nobody else sent
        assert not any(p.name.startswith(submitted.doc_id) for p in (deployment.blobs / "sha256").rglob("*"))
        assert not (deployment.blobs / "owners" / "alpha").exists()
        assert (await admin.delete_tenant("alpha")).documents == 0                # idempotent
        assert not any((await admin.stats()).get("alpha", {}).values())
    async with deployment.client(key="alpha") as alpha:
        assert await alpha.search("Quarterly Review", tenant="", limit=3) == []
        again = await alpha.submit(deck, tenant="")                               # re-ingest after erasure works
        assert (await alpha.watch(again.job_id, timeout_s=180)).state == epb.JOB_STATE_SUCCEEDED
        assert await alpha.search("Quarterly Review", tenant="", limit=3)
    # The CLI erases a document with the caller's credential, over TLS.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
    env.update(OSMOSE_TLS_CA=str(deployment.certs / "ca.pem"), OSMOSE_API_KEY=deployment.keys["alpha"])
    done = subprocess.run([str(OSMOSE), "delete", "--server", deployment.target, "--document", again.doc_id, "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents"] == 1
    async with deployment.client(key="alpha") as alpha:
        assert await alpha.search("Quarterly Review", tenant="", limit=3) == []
        # The erasure is a job the front door answers for (from the job topic), with its counts.
        job_id = json.loads(done.stdout)["job_id"]
        deadline = time.monotonic() + 60
        while True:
            try:
                job = await alpha.get_job(job_id)
                break
            except RequestRejected as exc:
                assert exc.code == grpc.StatusCode.NOT_FOUND and time.monotonic() < deadline, exc
                await asyncio.sleep(0.2)
        assert (job.action, job.state, job.doc_id, job.counts["documents"]) == (
            "delete-document", epb.JOB_STATE_SUCCEEDED, again.doc_id, 1)
    # ... and it took the document's blobs and ownership markers (nobody else sent that deck).
    assert not any(p.name.startswith(again.doc_id) for p in (deployment.blobs / "sha256").rglob("*"))
    assert not any(again.doc_id in str(p) for top in ("owners", "documents")
                   for p in (deployment.blobs / top).rglob("*") if p.is_file())


async def test_unauthenticated_plaintext_and_internal_calls_are_refused(deployment: Deployment) -> None:
    async with deployment.client() as anonymous:                                  # TLS, no credential
        for call in (anonymous.stats(), anonymous.get_job("x")):
            with pytest.raises(RequestRejected) as refused:
                await call
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    async with deployment.client(token=deployment.token("alpha", expires_in=-3600)) as expired:
        with pytest.raises(RequestRejected) as refused:
            await expired.stats()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED and "expired" in str(refused.value)
    # A plaintext client cannot talk to the TLS listener.
    async with grpc.aio.insecure_channel(deployment.target) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await sgrpc.QueryServiceStub(plaintext).Stats(ppb.WorkItem(), timeout=5)  # type: ignore[arg-type]
        assert failed.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    # The stages' Process RPCs are not on the public listener, even with a valid credential...
    async with deployment.client(key="admin") as admin:
        assert admin._channel is not None
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await sgrpc.TriageServiceStub(admin._channel).Process(ppb.WorkItem(tenant="alpha"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # ...and the internal listener wants a client certificate of the deployment's CA.
    internal = ServiceClient(f"127.0.0.1:{deployment.internal_port}", tls=TlsFiles(ca=deployment.certs / "ca.pem"),
                             connect_timeout_s=3)
    with pytest.raises(Exception):  # noqa: B017 - the handshake fails: ServiceUnreachable or an RPC error
        async with internal as client:
            assert client._channel is not None
            await sgrpc.TriageServiceStub(client._channel).Process(ppb.WorkItem(), timeout=5)
    mtls = TlsFiles(ca=deployment.certs / "ca.pem", cert=deployment.certs / "client.pem",
                    key=deployment.certs / "client-key.pem")
    async with ServiceClient(f"127.0.0.1:{deployment.internal_port}", tls=mtls) as client:
        assert client._channel is not None
        with pytest.raises(grpc.aio.AioRpcError) as bad_source:       # reached: and a path is never opened
            await sgrpc.TriageServiceStub(client._channel).Process(
                ppb.WorkItem(tenant="alpha", source_uri="/etc/passwd"), timeout=10)
        assert bad_source.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_source.value.details().startswith("bad-source")
