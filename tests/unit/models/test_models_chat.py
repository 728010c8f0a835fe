"""The chat client and the router against a local vLLM-like server: the wire format, fallback
chains, retries with Retry-After and the per-document budget, breakers, deadlines, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from loadtests.fakeservers import ChatServer, Fault, LatencyModel
from osmose.models import (
    ChatRequest,
    CircuitOpenError,
    ImageInput,
    JsonSchema,
    ModelRequestError,
    ModelRuntime,
    ModelUnavailableError,
)
from osmose.models.breaker import BreakerState
from osmose.models.config import parse_router_config
from osmose.models.openai_chat import health, list_models
from tests.fixtures.pdf_pages import text_pixmap
from tests.unit.models.backends import LLM_MODEL, FakeClock, closed_port_url, router, router_dict, runtime

pytestmark = pytest.mark.anyio

TASK = "concept_extraction"
SCHEMA = JsonSchema("osmose_concepts", {
    "type": "object", "required": ["segments"],
    "properties": {"segments": {"type": "array", "items": {"type": "object", "required": ["id", "concepts"],
                                                           "properties": {"id": {"type": "string"}}}}}})

T = TypeVar("T")


def ask(text: str = "SEGMENT s1\n[slide 1] Zero Trust Network Access (ZTNA) replaces the VPN") -> ChatRequest:
    return ChatRequest(system="Extract concepts.", user=text, schema=SCHEMA)


async def _closing(models: ModelRuntime, coro: Awaitable[T]) -> T:
    try:
        return await coro
    finally:
        await models.aclose()


async def test_models_and_health_routes(chat: ChatServer) -> None:
    async def go() -> tuple[list[str], bool]:
        async with httpx.AsyncClient(base_url=chat.openai_url) as http:
            return await list_models(http, endpoint="llm"), await health(http, chat.openai_url)

    models, healthy = await go()
    assert LLM_MODEL in models and healthy


async def test_chat_completion_sends_the_schema_and_images_as_vllm_expects(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url), tmp_path)
    png = text_pixmap("ARCHITECTURE DIAGRAM", width=300, height=200, dpi=72).tobytes("png")
    request = ChatRequest(system="Describe.", user="Title: Overview", images=(ImageInput.from_bytes(png),),
                          schema=SCHEMA)
    answer = await _closing(models, models.session().chat(TASK, request))
    assert answer.text.startswith('{"segments"')
    body = chat.log[0]
    assert body["model"] == LLM_MODEL and body["temperature"] == 0 and body["max_tokens"] == 2048
    assert body["messages"][0] == {"role": "system", "content": "Describe."}
    parts = body["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "Title: Overview"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "osmose_concepts"


async def test_unknown_model_is_a_request_error_and_is_not_retried(chat: ChatServer, tmp_path: Path) -> None:
    raw = router_dict(llm=chat.openai_url)
    raw["tasks"][TASK]["chain"][0]["model"] = "no-such-model"
    models = runtime(parse_router_config(raw, urls={}), tmp_path)
    with pytest.raises(ModelRequestError, match="does not exist"):
        await _closing(models, models.session().chat(TASK, ask()))
    assert chat.chat_requests == 1


async def test_fallback_chain_takes_the_next_endpoint_when_the_first_is_down(chat: ChatServer, tmp_path: Path) -> None:
    config = router(llm=closed_port_url(), attempts=2,
                    endpoints={"backup": {"url": chat.openai_url, "protocol": "openai"}},
                    extra_llm_chain=[{"endpoint": "backup", "model": LLM_MODEL}])
    models = runtime(config, tmp_path)
    session = models.session()
    answer = await _closing(models, session.chat(TASK, ask()))
    assert answer.target.endpoint == "backup" and not answer.cached
    usage = session.usage.task(TASK)
    assert (usage.calls, usage.retries, usage.failures) == (3, 1, 1)  # 2 attempts on llm, 1 on backup
    assert chat.chat_requests == 1


async def test_a_429_is_retried_with_the_servers_retry_after(chat: ChatServer, tmp_path: Path) -> None:
    # the wait itself (Retry-After, not the backoff) is tested with a recorded sleep in
    # test_models_retry.py; here: the header reaches the error, and the runtime retries it
    chat.set_faults(Fault("429", count=1, retry_after=0.4))
    once = runtime(router(llm=chat.openai_url, attempts=1), tmp_path)
    with pytest.raises(ModelUnavailableError, match="429") as raised:
        await _closing(once, once.session().chat(TASK, ask()))
    assert raised.value.__cause__.retry_after == 0.4   # the endpoint's error, under the chain's
    chat.set_faults(Fault("429", count=2, retry_after=0.001))
    models = runtime(router(llm=chat.openai_url, attempts=3, backoff=0.01), tmp_path)
    session = models.session()
    answer = await _closing(models, session.chat(TASK, ask()))
    assert answer.text
    assert chat.chat_requests == 1 + 3
    assert session.usage.task(TASK).retries == 2
    # 429 is back-pressure, not ill health: the breaker saw one success and nothing else
    assert models.backends["llm"].breaker.snapshot()["failures"] == 0


async def test_a_retry_after_beyond_the_limit_fails_at_once(chat: ChatServer, tmp_path: Path) -> None:
    chat.set_faults(Fault("429", count=5, retry_after=120))
    models = runtime(router(llm=chat.openai_url, attempts=4, max_retry_after=10), tmp_path)
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="429"):
        await _closing(models, models.session().chat(TASK, ask()))
    assert chat.chat_requests == 1 and time.perf_counter() - started < 5


async def test_the_retry_budget_caps_retries_over_all_calls_of_a_document(chat: ChatServer, tmp_path: Path) -> None:
    chat.set_faults(Fault("500"))
    models = runtime(router(llm=chat.openai_url, attempts=4, budget=5), tmp_path)

    async def go() -> tuple[int, int]:
        session = models.session()
        for text in ("first call", "second call", "third call"):
            with pytest.raises(ModelUnavailableError, match="500"):
                await session.chat(TASK, ask(text))
        other = models.session()  # another document has its own budget
        with pytest.raises(ModelUnavailableError):
            await other.chat(TASK, ask("other document"))
        return session.usage.task(TASK).retries, other.usage.task(TASK).retries

    retries, other_retries = await _closing(models, go())
    # 1st call: 4 attempts (3 retries); 2nd: 1 + the 2 retries left; 3rd: no retry left.
    assert retries == 5 and other_retries == 3
    assert chat.chat_requests == 4 + 3 + 1 + 4


async def test_breaker_opens_after_the_configured_failures_and_half_opens_later(chat: ChatServer, tmp_path: Path) -> None:
    clock = FakeClock()
    chat.set_faults(Fault("500"))
    models = runtime(router(llm=chat.openai_url, attempts=1, min_calls=3, error_rate=0.5, open_seconds=30),
                     tmp_path, clock=clock)
    breaker = models.backends["llm"].breaker

    async def go() -> None:
        session = models.session()
        for i in range(3):
            with pytest.raises(ModelUnavailableError, match="500"):
                await session.chat(TASK, ask(f"call {i}"))
        assert breaker.state is BreakerState.OPEN
        assert not session.available(TASK)
        with pytest.raises(ModelUnavailableError) as raised:
            await session.chat(TASK, ask("while open"))
        assert isinstance(raised.value.__cause__, CircuitOpenError)
        assert chat.chat_requests == 3  # the open breaker kept the call off the server
        clock.advance(30)
        assert breaker.state is BreakerState.HALF_OPEN and session.available(TASK)
        chat.set_faults()  # the server recovered
        await session.chat(TASK, ask("probe"))
        assert breaker.state is BreakerState.CLOSED
        assert chat.chat_requests == 4

    await _closing(models, go())


async def test_a_hung_server_is_cut_by_the_deadline_and_retried(chat: ChatServer, tmp_path: Path) -> None:
    chat.set_faults(Fault("hang", count=1, seconds=30))
    models = runtime(router(llm=chat.openai_url, attempts=2, timeout_initial=0.5), tmp_path)
    session = models.session()
    started = time.perf_counter()
    answer = await _closing(models, session.chat(TASK, ask()))
    assert answer.text and time.perf_counter() - started < 5
    assert session.usage.task(TASK).retries == 1 and len(chat.log) == 2  # received: hung + retried


async def test_concurrency_never_exceeds_the_configured_limit(tmp_path: Path) -> None:
    with ChatServer(slots=16, latency=LatencyModel(base_s=0.05, decode_tps=1e9, prefill_tps=1e9)) as server:
        models = runtime(router(llm=server.openai_url, concurrency=3), tmp_path)

        async def go() -> None:
            session = models.session()
            await asyncio.gather(*(session.chat(TASK, ask(f"text {i}")) for i in range(20)))

        await _closing(models, go())
        metrics = server.scrape()
    assert metrics['fakeserver_requests_total{code="200",route="chat"}'] == 20
    assert metrics["fakeserver_peak_requests_in_flight"] == 3  # saturated, never above


async def test_request_rate_limit_spaces_the_calls(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url, requests_per_second=10, concurrency=16), tmp_path)

    async def go() -> None:
        session = models.session()
        await asyncio.gather(*(session.chat(TASK, ask(f"text {i}")) for i in range(20)))

    started = time.perf_counter()
    await _closing(models, go())
    assert time.perf_counter() - started >= 0.8  # 10 at once, then 10 more over a second
