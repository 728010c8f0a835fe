"""API keys for the model endpoints: taken from settings (a Secret), never from the router YAML,
sent as bearer tokens to servers that require them (vLLM's and TEI's --api-key), never echoed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.models import ChatRequest, ModelRequestError, ModelRuntime, RouterConfigError, load_router_config
from osmose.models.config import parse_router_config
from tests.unit.models.backends import router_dict, runtime

pytestmark = pytest.mark.anyio

KEY = "sk-test-7f3a9c2e5b"


def keyed_router(llm: str, tei: str, *, key: str | None) -> object:
    raw = router_dict(llm=llm, tei=tei)
    raw["endpoints"]["llm"]["api_key"] = "${llm_api_key}"
    raw["endpoints"]["tei"]["api_key"] = "${tei_api_key}"
    return parse_router_config(raw, urls={}, keys={"llm_api_key": key, "tei_api_key": key})


def test_the_shipped_router_reads_keys_from_settings_only() -> None:
    settings = Settings.from_env({"OSMOSE_LLM_URL": "http://gpu:8000/v1", "OSMOSE_LLM_API_KEY": KEY})
    config = load_router_config(None, urls={"llm_url": settings.llm_url},
                                keys={"llm_api_key": settings.llm_api_key.get_secret_value()
                                      if settings.llm_api_key else None})
    assert config.endpoints["llm"].api_key.get_secret_value() == KEY
    assert config.endpoints["vision"].api_key.get_secret_value() == ""
    assert KEY not in repr(config) and KEY not in str(config.endpoints["llm"])


@pytest.mark.parametrize("written", [KEY, "${qdrant_api_key}", "Bearer ${llm_api_key}", 42])
def test_a_key_written_in_the_yaml_is_refused_without_being_echoed(written: object) -> None:
    raw = router_dict(llm="http://gpu:8000/v1")
    raw["endpoints"]["llm"]["api_key"] = written
    with pytest.raises(RouterConfigError, match=r"endpoints\.llm\.api_key: .*never from this file") as caught:
        parse_router_config(raw, urls={})
    assert KEY not in str(caught.value)


async def test_bearer_token_reaches_servers_that_require_it(tmp_path: Path) -> None:
    fast = LatencyModel(time_scale=0)
    with ChatServer(latency=fast, api_key=KEY) as chat, TeiServer(latency=fast, api_key=KEY) as tei:
        models: ModelRuntime = runtime(keyed_router(chat.openai_url, tei.url, key=KEY), tmp_path)  # type: ignore[arg-type]
        try:
            answer = await models.session().chat("concept_extraction", ChatRequest(system="Extract.", user="ZTNA"))
            assert models.embeddings is not None
            vectors = await models.embeddings.embed(["zero trust"])
        finally:
            await models.aclose()
        assert answer.text and vectors.shape == (1, 384) and np.isfinite(vectors).all()
        assert chat.unauthorized == 0 and tei.unauthorized == 0 and chat.chat_requests == 1


async def test_a_wrong_key_is_a_clear_request_error_not_retried_and_not_echoed(tmp_path: Path) -> None:
    wrong = "sk-wrong-000000"
    with ChatServer(latency=LatencyModel(time_scale=0), api_key=KEY) as chat:
        models: ModelRuntime = runtime(keyed_router(chat.openai_url, "", key=wrong), tmp_path)  # type: ignore[arg-type]
        try:
            with pytest.raises(ModelRequestError, match="401.*refused the credential.*OSMOSE_LLM_API_KEY") as caught:
                await models.session().chat("concept_extraction", ChatRequest(system="Extract.", user="ZTNA"))
        finally:
            await models.aclose()
        assert wrong not in str(caught.value) and KEY not in str(caught.value)
        assert chat.unauthorized == 1   # a credential error is not retried
