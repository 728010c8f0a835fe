"""The structured-task driver against a local vLLM-like server: recall, pack, gather, remember,
fallback counting. (Repair and the stages' mappings are tested with the extractor and the miner.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer
from osmose.models import (
    ModelRuntime,
    ModelUnavailableError,
    SegmentAnswers,
    SegmentBlock,
    SegmentTask,
    TaskUsage,
    ask_segments,
    segments_schema,
)
from tests.unit.models.backends import router, runtime

_ITEM = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}

# The local server answers a schema named osmose_concepts with concepts found in each SEGMENT block,
# and any other schema with its minimal instance (here: no segments at all).
CONCEPTS = SegmentTask(name="concept_extraction", title="concept extraction", system="Name the concepts.",
                       schema_name="osmose_concepts", answer_field="concepts",
                       schema=segments_schema("concepts", _ITEM, max_items=15))
SILENT = SegmentTask(name="concept_extraction", title="silent probe", system="Say nothing.",
                     schema_name="osmose_probe", answer_field="concepts",
                     schema=segments_schema("concepts", _ITEM, max_items=15))

UNITS = [SegmentBlock(f"seg-{i}", f"[slide {i}] {topic} keeps the network safe")
         for i, topic in enumerate(["Zero Trust", "Identity Provider", "Data Loss Prevention",
                                    "Patch Management", "Incident Response"], start=1)]


pytestmark = pytest.mark.anyio


async def _ask(models: ModelRuntime, task: SegmentTask) -> tuple[SegmentAnswers[SegmentBlock], TaskUsage]:
    session = models.session()
    return await ask_segments(session, task, UNITS), session.usage.task(task.name)


async def test_segments_are_packed_then_recalled_from_their_own_cache_entries(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url, batch_size=2), tmp_path)
    try:
        first, usage = await _ask(models, CONCEPTS)
        assert chat.chat_requests == 3  # 5 segments, 2 per call
        assert sorted(first.answers) == [u.segment_id for u in UNITS] and not first.failed
        assert usage.calls == 3 and usage.fallbacks == 0
        assert all(body["messages"][0]["content"] == CONCEPTS.system for body in chat.log)

        again, usage = await _ask(models, CONCEPTS)
        assert chat.chat_requests == 3  # no new call
        assert again.answers == first.answers and usage.cache_hits == len(UNITS) and usage.calls == 0
    finally:
        await models.aclose()

async def test_segments_missing_from_the_answer_are_fallbacks_or_a_failure(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url, batch_size=4), tmp_path)
    strict = runtime(router(llm=chat.openai_url, batch_size=4, fallback="fail"), tmp_path / "strict")
    try:
        got, usage = await _ask(models, SILENT)
        assert got.failed == UNITS and got.answers == {}
        assert got.reason == "segments missing from the answer"
        assert usage.fallbacks == len(UNITS) and chat.chat_requests == 2
        with pytest.raises(ModelUnavailableError, match="silent probe failed for 5 segments"):
            await _ask(strict, SILENT)
    finally:
        await models.aclose()
        await strict.aclose()

def test_the_cache_key_follows_the_prompt_and_the_segment_text() -> None:
    assert CONCEPTS.item_key("[slide 1] x") == CONCEPTS.item_key("[slide 1] x")
    assert CONCEPTS.item_key("[slide 1] x") != CONCEPTS.item_key("[slide 1] y")
    assert CONCEPTS.item_key("[slide 1] x") != SILENT.item_key("[slide 1] x")
