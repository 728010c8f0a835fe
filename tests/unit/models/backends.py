"""Helpers for tests that talk to the local model servers (``loadtests.fakeservers``).

Imported as ``tests.unit.models.backends`` by the model tests and the stage tests
(vision, extractor, miner): a router configuration with test-sized timeouts and
backoffs, a runtime over a SQLite cache in a temporary directory, a Redis server
on a Unix socket, and a port nothing listens on (a server that is down).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from osmose.cache import SqliteCache
from osmose.models import ModelRuntime, RouterConfig
from osmose.models.cache import ModelCache
from osmose.models.config import parse_router_config

LLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
VISION_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
TEI_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def router_dict(*, llm: str | None = None, vision: str | None = None, tei: str | None = None,
                concurrency: int = 4, attempts: int = 3, backoff: float = 0.01, max_retry_after: float = 10.0,
                min_calls: int = 50, error_rate: float = 0.5, open_seconds: float = 30.0,
                timeout_initial: float = 10.0, timeout_min: float = 0.1, batch_size: int = 4,
                max_input_chars: int = 12_000, budget: int = 20, fallback: str = "heuristic",
                requests_per_second: float = 0, packing: str = "full", extra_llm_chain: list[dict[str, Any]] | None = None,
                endpoints: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A router configuration (as the YAML would load) with test-sized numbers. `packing` is
    "full" (always `batch_size` segments per call: counts of calls a test can state) unless a
    test is about sizing calls to the load ("load", the shipped default)."""

    def endpoint(url: str | None, protocol: str = "openai", **more: Any) -> dict[str, Any]:
        return {
            "url": url or "", "protocol": protocol, "concurrency": concurrency,
            "requests_per_second": requests_per_second,
            "timeout": {"connect": 2, "initial": timeout_initial, "min": timeout_min, "max": 60, "samples": 5},
            "retries": {"attempts": attempts, "backoff_initial": backoff, "backoff_max": backoff * 4,
                        "jitter": backoff, "max_retry_after": max_retry_after},
            "breaker": {"window_seconds": 60, "min_calls": min_calls, "error_rate": error_rate,
                        "open_seconds": open_seconds, "half_open_calls": 1},
            **more,
        }

    chain_llm = [{"endpoint": "llm", "model": LLM_MODEL, "params": {"temperature": 0, "max_tokens": 2048}}]
    chain_llm += extra_llm_chain or []
    return {
        "retry_budget_per_document": budget,
        "endpoints": {
            "llm": endpoint(llm),
            "vision": endpoint(vision),
            "tei": endpoint(tei, "tei", model=TEI_MODEL, dim=384),
            **(endpoints or {}),
        },
        "tasks": {
            "vision_summary": {"chain": [{"endpoint": "vision", "model": VISION_MODEL,
                                          "params": {"temperature": 0, "max_tokens": 300}}], "fallback": fallback},
            "concept_extraction": {"chain": chain_llm, "fallback": fallback, "batch_size": batch_size,
                                   "max_input_chars": max_input_chars, "packing": packing},
            "relation_typing": {"chain": chain_llm, "fallback": fallback, "batch_size": batch_size,
                                "max_input_chars": max_input_chars, "packing": packing},
        },
        "embeddings": "tei",
    }


def router(**kwargs: Any) -> RouterConfig:
    return parse_router_config(router_dict(**kwargs), urls={}, source="<test>")


def write_router(path: Path, **kwargs: Any) -> Path:
    """The same configuration as a YAML file, for Settings(router_config=...)."""
    path.write_text(yaml.safe_dump(router_dict(**kwargs), sort_keys=False))
    return path


def runtime(config: RouterConfig, cache_dir: Path, *, clock: Callable[[], float] = time.monotonic) -> ModelRuntime:
    return ModelRuntime(config, cache=ModelCache(SqliteCache(cache_dir / "models.sqlite", namespace="models")),
                        clock=clock)


def closed_port_url(path: str = "/v1") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_server_binary() -> str | None:
    """redis-server, or a skip (a failure when CI is set: CI must have it)."""
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (apt-get install redis-server; `make setup` installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A throw-away redis-server on a Unix socket in `directory`; yields its unix:// URL."""
    binary = redis_server_binary()
    sock = directory / "redis.sock"
    proc = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
                             "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not create its socket within 10 s")
            time.sleep(0.02)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)
