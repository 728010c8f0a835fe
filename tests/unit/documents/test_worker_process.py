"""The bounded worker helper: reuse, deadline, memory ceiling, environment, session, interruption."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from osmose.documents.worker_process import WorkerGone, WorkerPool, WorkerProcess, WorkerSpec
from tests.support import REPO

SPEC = WorkerSpec(handler="tests.fixtures.worker_handlers:probe", memory_limit_bytes=1024**3,
                  config={"greeting": "ready"}, capture_stderr=True)


@pytest.fixture(autouse=True)
def _importable_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(SPEC, size=1)
    yield pool
    pool.close()


def test_a_worker_answers_and_is_reused(pool: WorkerPool) -> None:
    first, body = pool.request({"op": "echo"}, b"abc", timeout_s=30)
    second, _ = pool.request({"op": "echo"}, b"", timeout_s=30)
    assert body == b"cba"
    assert first["pid"] == second["pid"]
    assert pool.started == 1


def test_a_large_body_goes_both_ways(pool: WorkerPool) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: many pipe buffers each way
    _, body = pool.request({"op": "echo"}, data, timeout_s=60)
    assert body == data[::-1]


def test_a_request_past_its_deadline_kills_the_worker_and_the_next_gets_a_new_one(pool: WorkerPool) -> None:
    first, _ = pool.request({"op": "echo"}, timeout_s=30)
    started = time.perf_counter()
    with pytest.raises(TimeoutError, match="no answer within 0.2s"):
        pool.request({"op": "sleep", "seconds": 60}, timeout_s=0.2)
    assert time.perf_counter() - started < 10
    again, _ = pool.request({"op": "echo"}, timeout_s=30)
    assert again["pid"] != first["pid"]
    assert pool.started == 2


def test_the_memory_ceiling_ends_the_worker_not_the_caller(pool: WorkerPool) -> None:
    with pytest.raises(WorkerGone, match="MemoryError") as gone:
        pool.request({"op": "allocate", "bytes": 2 * 1024**3}, timeout_s=30)
    assert gone.value.returncode == 1
    reply, _ = pool.request({"op": "echo"}, timeout_s=30)
    assert reply["pid"]


def test_the_worker_gets_no_settings_or_secrets_and_its_own_session(
        pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMOSE_NEO4J_PASSWORD", "hunter2")
    monkeypatch.setenv("OSMOSE_DATA_DIR", "/somewhere")
    monkeypatch.setenv("VENDOR_API_KEY", "k")
    monkeypatch.setenv("OSMOSE_LOG_LEVEL", "INFO")
    reply, _ = pool.request({"op": "env"}, timeout_s=30)
    env = reply["env"]
    assert "hunter2" not in env.values()
    assert not {"OSMOSE_NEO4J_PASSWORD", "OSMOSE_DATA_DIR", "VENDOR_API_KEY"} & env.keys()
    assert env["OSMOSE_LOG_LEVEL"] == "INFO" and env["PATH"]
    session, _ = pool.request({"op": "session"}, timeout_s=30)
    assert session["leader"] is True


def test_hello_carries_the_handler_config() -> None:
    worker = WorkerProcess(SPEC)
    try:
        assert worker.wait_ready()["greeting"] == "ready"
    finally:
        worker.close()
    assert not worker.alive


def test_interrupt_from_another_thread_ends_a_request_in_flight() -> None:
    worker = WorkerProcess(SPEC)
    worker.wait_ready()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            worker.request({"op": "sleep", "seconds": 60}, timeout_s=60)
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    worker.interrupt()  # whether the request is already in flight or not, it must end now
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], WorkerGone)
    assert not worker.alive


def test_a_handler_that_cannot_be_built_means_the_worker_did_not_start() -> None:
    worker = WorkerProcess(WorkerSpec(handler="tests.fixtures.worker_handlers:nowhere",
                                      memory_limit_bytes=1024**3, capture_stderr=True))
    with pytest.raises(WorkerGone, match="exit code 1: AttributeError"):
        worker.wait_ready()


def test_libreoffice_and_tesseract_get_no_settings_or_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from osmose.documents.system_tools import tool_env

    monkeypatch.setenv("OSMOSE_GRAPH_PASSWORD", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("OSMOSE_LOG_LEVEL", "INFO")
    env = tool_env(HOME="/tmp/work")
    assert not {"OSMOSE_GRAPH_PASSWORD", "AWS_SECRET_ACCESS_KEY"} & env.keys()
    assert env["HOME"] == "/tmp/work" and env["OSMOSE_LOG_LEVEL"] == "INFO" and "PATH" in env
