"""The front door's Submit under hostile requests, on a real in-process gRPC server (insecure port,
every call as the local CLI, no broker: the published messages are recorded).

Properties: every call ends with OK or one of the documented refusals (INVALID_ARGUMENT,
RESOURCE_EXHAUSTED, NOT_FOUND, PERMISSION_DENIED), never UNKNOWN (an uncaught exception: bytes
that were not a SubmitRequest got UNKNOWN and a logged traceback until the front door translated
the DecodeError to INVALID_ARGUMENT bad-request); an accepted job publishes
messages under the producer's 1 MiB limit whose names are bounded and free of control characters.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import grpc
import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.envelope import decode
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.config import Limits, Settings
from osmose.hosts.service_frontdoor import MAX_FILE, MAX_FILE_NAME, IngestionServicer
from osmose.hosts.service_worker import ServiceBus
from osmose.security.interceptor import AuthInterceptor
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc
from tests.fuzz.targets import mutate

pytestmark = pytest.mark.anyio

SUBMIT = "/osmose.v1.IngestionService/Submit"
PRODUCER_LIMIT = 1024 * 1024
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.PERMISSION_DENIED}
HOSTILE_TEXT = ["", "a" * 600_000, "a" * (MAX_FILE_NAME + 1), "a" * MAX_FILE_NAME, "x\x00y.pptx", "x\ny.pptx",
                "x\x7f.pptx", "x\x1b[31m.pptx", "../../etc/passwd", "/", ".", "..", "dir/", "C:\\x\\y.pptx",
                "\u202eslide.pptx", "\ufeff.pptx", "\U0001f600.pptx", "\u2028.pptx", "x\x85y.pptx", "x\x9b.pptx", "a" * (MAX_FILE + 1),
                "tenant with spaces", "acme", "ACME", "a" * 300, "t\x00"]


def _breaks_lines(text: str) -> bool:
    """Control characters (C0, DEL, C1) and the Unicode line/paragraph separators."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


class RecordingProducer:
    """Stands in for Kafka's producer: records what would be published (sizes are the point)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      timeout_s: float | None = None) -> None:
        self.sent.append((topic, value))


def _headers(rng: random.Random) -> spb.SubmitHeader:
    header = spb.SubmitHeader()
    header.file_name = rng.choice(HOSTILE_TEXT + ["deck.pptx"] * 5)
    header.file = rng.choice(HOSTILE_TEXT + [""] * 5)
    header.tenant = rng.choice(HOSTILE_TEXT + [""] * 5)
    header.tier = rng.choice([0, 1, 2, 3, 4, 99, -1, 2**31 - 1])
    header.priority = rng.choice([0, 1, 2, 7, -5])
    header.size_bytes = rng.choice([0, 5, 2**64 - 1, 1024 * 1024 + 1])
    if rng.random() < 0.2:
        header.blob_ref = rng.choice(["sha256:" + "0" * 64, "sha256:../x", "nope", "a" * 5000])
    return header


async def test_undecodable_submit_request_is_invalid_argument(tmp_path: Path) -> None:
    """Regression (fuzzing): a truncated varint in the header's bytes was an UNKNOWN status."""
    async def call(submit: grpc.aio.StreamUnaryMultiCallable) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(iter([b"\x0a\x05\x0a\x80"]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("bad-request")
    await _with_server(tmp_path, RecordingProducer(), call)


@pytest.mark.parametrize(("header", "reason"), [
    (spb.SubmitHeader(file_name="d.pptx", tier=99), "bad-header"),          # was UNKNOWN (ValueError)
    (spb.SubmitHeader(file_name="d.pptx", tenant="t\x00"), "invalid-tenant"),  # was accepted
    (spb.SubmitHeader(file_name="d.pptx", tenant="."), "invalid-tenant"),      # named a folder: found by the fuzzer
    (spb.SubmitHeader(file_name="d.pptx", tenant="../other"), "invalid-tenant"),
    (spb.SubmitHeader(file_name="d\x85.pptx"), "bad-header"),                # C1 control: was accepted
    (spb.SubmitHeader(file_name="d.pptx", file="a\u2028b"), "bad-header"),   # line separator: was accepted
    (spb.SubmitHeader(file_name="invoice\u202excod.pptx"), "bad-header"),     # bidi override: was accepted
    (spb.SubmitHeader(file_name="a\u2066b.pdf"), "bad-header"),               # bidi isolate: was accepted
])
async def test_hostile_header_regressions(tmp_path: Path, header: spb.SubmitHeader, reason: str) -> None:
    """Regressions (fuzzing): each of these headers got UNKNOWN or was queued."""
    producer = RecordingProducer()

    async def call(submit: grpc.aio.StreamUnaryMultiCallable) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(iter([spb.SubmitRequest(header=header).SerializeToString()]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(reason), refused.value.details()
    await _with_server(tmp_path, producer, call)
    assert producer.sent == []


@pytest.mark.parametrize("method", ["GetJob", "Cancel", "WatchJob"])
async def test_undecodable_unary_requests_are_invalid_argument(tmp_path: Path, method: str) -> None:
    """Regression (finding 10): bytes that are not the method's request were UNKNOWN with a logged
    traceback, raised by grpc before any Osmose code ran; the interceptor now decodes them."""
    async def calls(channel: grpc.aio.Channel) -> None:
        factory = channel.unary_stream if method == "WatchJob" else channel.unary_unary
        call = factory(f"/osmose.v1.IngestionService/{method}", request_serializer=lambda b: b,
                       response_deserializer=lambda b: b)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            if method == "WatchJob":
                async for _ in call(b"\x0a\x05\x0a\x80", timeout=10):
                    pass
            else:
                await call(b"\x0a\x05\x0a\x80", timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        assert refused.value.details().startswith("bad-request"), refused.value.details()
    await _with_server(tmp_path, RecordingProducer(), None, channel_body=calls)


async def test_hostile_job_requests(tmp_path: Path) -> None:
    """GetJob and Cancel with hostile job ids and tenants, and mutated wire bytes: NOT_FOUND,
    INVALID_ARGUMENT or PERMISSION_DENIED, never UNKNOWN (undecodable bytes were UNKNOWN: finding 10)."""
    rng = random.Random(17)
    seen: set[str] = set()

    async def calls(channel: grpc.aio.Channel) -> None:
        for n in range(150):
            method = rng.choice(["GetJob", "Cancel"])
            call = channel.unary_unary(f"/osmose.v1.IngestionService/{method}", request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
            request = spb.GetJobRequest(job_id=rng.choice(HOSTILE_TEXT), tenant=rng.choice(HOSTILE_TEXT + [""] * 5))
            raw = request.SerializeToString()
            wire = n % 3 == 2
            if wire:
                raw = mutate(raw, rng)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(raw, timeout=10)
            code, details = refused.value.code(), refused.value.details() or ""
            seen.add(code.name)
            assert code in REFUSED, (method, code, details[:200])   # undecodable bytes: INVALID_ARGUMENT
    await _with_server(tmp_path, RecordingProducer(), None, channel_body=calls)
    assert "NOT_FOUND" in seen, seen


async def _with_server(tmp_path: Path, producer: RecordingProducer, body,  # type: ignore[no-untyped-def]
                       *, channel_body=None) -> None:
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=JobTable(), host="fuzz:1")
    settings = Settings(data_dir=tmp_path, limits=Limits(max_file_bytes=1024 * 1024))
    server = grpc.aio.server(interceptors=[AuthInterceptor(None)])
    sgrpc.add_IngestionServiceServicer_to_server(IngestionServicer(bus=bus, settings=settings, ready=lambda: True),
                                                 server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            if channel_body is not None:
                await channel_body(channel)
            else:
                await body(channel.stream_unary(SUBMIT, request_serializer=lambda b: b,
                                                response_deserializer=spb.SubmitResponse.FromString))
    finally:
        await server.stop(0)


async def test_hostile_submit_requests(tmp_path: Path) -> None:
    producer = RecordingProducer()
    rng = random.Random(13)
    seen: dict[str, int] = {}

    async def calls(submit: grpc.aio.StreamUnaryMultiCallable) -> None:
        for n in range(300):
            header = _headers(rng)
            messages = [spb.SubmitRequest(header=header).SerializeToString()]
            messages += [spb.SubmitRequest(chunk=b"PK\x03\x04" + bytes(rng.randrange(2000))).SerializeToString()
                         for _ in range(rng.randrange(3))]
            raw = n % 3 == 2
            if raw:  # the bytes on the wire, mutated (invalid UTF-8, broken varints, unknown fields)
                messages = [mutate(m, rng) for m in messages]
            before = len(producer.sent)
            try:
                await submit(iter(messages), timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in REFUSED, (exc.code(), exc.details(), header)
                seen[exc.code().name] = seen.get(exc.code().name, 0) + 1
                continue
            seen["OK"] = seen.get("OK", 0) + 1
            for topic, value in producer.sent[before:]:
                assert len(value) < PRODUCER_LIMIT, (topic, len(value))
                if topic != "p.jobs":
                    envelope = decode(value)
                    assert len(envelope.file) <= MAX_FILE and not _breaks_lines(envelope.file), envelope.file[:80]
                    assert not _breaks_lines(envelope.tenant)

    await _with_server(tmp_path, producer, calls)
    assert seen.get("OK", 0) > 0 and seen.get("INVALID_ARGUMENT", 0) > 0, seen
