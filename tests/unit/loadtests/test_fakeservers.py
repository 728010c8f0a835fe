"""The local model servers of loadtests.fakeservers themselves: protocol details, runtime fault control, metrics, determinism."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtests.fakeservers import ChatServer, Fault, LatencyModel, TeiServer, parse_fault, parse_metrics
from loadtests.fakeservers.runner import post_json
from tests.unit.models.backends import LLM_MODEL

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    """A chat server that answers at once (latency scaled to zero)."""
    with ChatServer(latency=LatencyModel(time_scale=0)) as server:
        yield server


def _chat(server: ChatServer, **extra: object) -> httpx.Response:
    body = {"model": LLM_MODEL, "messages": [{"role": "user", "content": "SEGMENT s1\n[slide 2] Zero Trust "
                                                                        "Network Access (ZTNA) for the VPN"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "osmose_concepts", "schema": {}}},
            **extra}
    return httpx.post(f"{server.openai_url}/chat/completions", json=body, timeout=10)


def test_answers_are_deterministic_and_cut_at_max_tokens(chat: ChatServer) -> None:
    first, second = _chat(chat).json(), _chat(chat).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert '"Zero Trust Network Access"' in first["choices"][0]["message"]["content"]
    short = _chat(chat, max_tokens=5).json()
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 5


def test_unknown_models_and_streaming_are_refused_like_vllm(chat: ChatServer) -> None:
    response = _chat(chat, model="gpt-5")
    assert response.status_code == 404 and response.json()["message"] == "The model `gpt-5` does not exist."
    assert _chat(chat, stream=True).status_code == 400


def test_faults_are_set_and_cleared_at_runtime_over_http(chat: ChatServer) -> None:
    post_json(f"{chat.url}/admin/faults", {"faults": [parse_fault("429:count=2:retry_after=3").as_dict()]})
    got = [_chat(chat) for _ in range(3)]
    assert [r.status_code for r in got] == [429, 429, 200]
    assert got[0].headers["Retry-After"] == "3"
    post_json(f"{chat.url}/admin/faults", {"faults": [{"kind": "malformed", "count": 1}]})
    assert _chat(chat).json()["choices"][0]["message"]["content"].startswith("Sure! Here is the JSON")
    httpx.delete(f"{chat.url}/admin/faults")
    assert httpx.get(f"{chat.url}/admin/faults").json()["faults"] == []
    metrics = chat.scrape()
    assert metrics['fakeserver_faults_injected_total{kind="429"}'] == 2
    assert metrics['fakeserver_requests_total{code="429",route="chat"}'] == 2


def test_vllm_queue_metrics_show_running_and_waiting() -> None:
    latency = LatencyModel(base_s=0.5, decode_tps=1e9, prefill_tps=1e9)
    with ChatServer(slots=1, latency=latency) as server, httpx.Client(timeout=10) as client:
        threads = [threading.Thread(target=lambda: _chat(server)) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:  # wait on the condition, with a deadline
            seen = parse_metrics(client.get(f"{server.url}/metrics").text)
            if seen.get("vllm:num_requests_waiting") == 2:
                break
            time.sleep(0.02)
        for t in threads:
            t.join()
    assert seen["vllm:num_requests_running"] == 1 and seen["vllm:num_requests_waiting"] == 2


def test_tei_enforces_its_limits() -> None:
    with TeiServer(max_client_batch_size=2, max_input_length=8, latency=LatencyModel(time_scale=0)) as tei:
        too_many = httpx.post(f"{tei.url}/embed", json={"inputs": ["a", "b", "c"]})
        assert too_many.status_code == 413 and "batch size 3 > maximum allowed batch size 2" in too_many.text
        long = "word " * 20
        assert httpx.post(f"{tei.url}/embed", json={"inputs": [long]}).status_code == 413
        assert httpx.post(f"{tei.url}/embed", json={"inputs": [long], "truncate": True}).status_code == 200
        tei.set_faults(Fault("malformed", count=1))
        assert httpx.post(f"{tei.url}/embed", json={"inputs": "x"}).text == "[[0.1, 0.2"
        assert "te_queue_size" in tei.scrape()


def test_command_line_starts_a_server_and_changes_its_faults() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "loadtests.fakeservers", "chat", "--port", "0",
                             "--time-scale", "0", "--fault", "500:count=1"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("fake chat server listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert httpx.get(f"{url}/health").status_code == 200
        done = subprocess.run([sys.executable, "-m", "loadtests.fakeservers", "faults", url, "503:count=4"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "503" in done.stdout
        assert httpx.get(f"{url}/admin/faults").json()["faults"][0]["kind"] == "503"
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
