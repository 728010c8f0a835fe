"""The vision stage with a vision model behind a local vLLM-like server: summaries for flagged
pages, the cache, and degraded pages (the document still completes) when the model is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from loadtests.fakeservers import ChatServer, LatencyModel
from osmose.models import ModelRuntime
from osmose.models.breaker import BreakerState
from osmose.services.vision import VisionConfig, VisionStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import closed_port_url, router, runtime
from tests.unit.vision.builders import image_slide, make_item, visual_slide

pytestmark = pytest.mark.anyio

PAGES = 5


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer(latency=LatencyModel(time_scale=0)) as server:
        yield server


@pytest.fixture(scope="module")
def pages_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "pages.pdf"
    doc = pymupdf.open()
    for n in range(1, PAGES + 1):
        page = doc.new_page()
        page.insert_text((72, 100), f"Quarterly revenue by region, page {n}", fontsize=20)
        page.draw_rect(pymupdf.Rect(72, 150, 400, 400), color=(0, 0, 1), fill=(0.2, 0.4, 0.8))
    doc.save(path)
    return path


def _item(pdf: Path, pages: int = PAGES) -> ppb.WorkItem:
    return make_item(pdf, [visual_slide(n) for n in range(1, pages + 1)] + [image_slide(pages + 1, needed=False)])


async def _process(models: ModelRuntime, item: ppb.WorkItem, data_dir: Path) -> ppb.WorkItem:
    async def go() -> ppb.WorkItem:
        try:
            return await VisionStage(VisionConfig(data_dir=data_dir), models=models).process(item)
        finally:
            await models.aclose()

    return await go()


async def test_flagged_pages_get_a_vision_summary(chat: ChatServer, pages_pdf: Path, tmp_path: Path) -> None:
    item = await _process(runtime(router(vision=chat.openai_url), tmp_path), _item(pages_pdf), tmp_path)
    for slide in item.document.slides[:PAGES]:
        vision = slide.vision
        assert vision.path == pb.VISION_PATH_LLM, list(vision.notes)
        assert vision.text.startswith("The slide shows a ") and "colour image" in vision.text
        assert "Quarterly revenue by region" in vision.text  # the parsed title went with the image
        assert vision.renderer == "pymupdf" and not vision.degraded
    assert not item.document.slides[PAGES].HasField("vision")  # not flagged: not described
    usage = item.model_usage.by_task["vision_summary"]
    assert usage.calls == PAGES and usage.prompt_tokens > 0 and usage.output_tokens > 0
    assert chat.chat_requests == PAGES
    image_part = chat.log[0]["messages"][1]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert list(item.warnings) == []


async def test_a_replay_asks_nothing_and_gives_the_same_document(chat: ChatServer, pages_pdf: Path,
                                                           tmp_path: Path) -> None:
    first = await _process(runtime(router(vision=chat.openai_url), tmp_path), _item(pages_pdf), tmp_path)
    again = await _process(runtime(router(vision=chat.openai_url), tmp_path), _item(pages_pdf), tmp_path)
    assert chat.chat_requests == PAGES
    usage = again.model_usage.by_task["vision_summary"]
    assert (usage.calls, usage.cache_hits) == (0, PAGES)
    assert first.document.SerializeToString(deterministic=True) == again.document.SerializeToString(deterministic=True)


async def test_vision_server_down_gives_degraded_pages_and_the_document_completes(pages_pdf: Path,
                                                                            tmp_path: Path) -> None:
    models = runtime(router(vision=closed_port_url(), attempts=2, min_calls=2, error_rate=0.5), tmp_path)
    breaker = models.backends["vision"].breaker

    async def go() -> tuple[ppb.WorkItem, ppb.WorkItem]:
        try:
            stage = VisionStage(VisionConfig(data_dir=tmp_path), models=models)
            first = await stage.process(_item(pages_pdf))
            assert breaker.state is BreakerState.OPEN
            second = await stage.process(_item(pages_pdf))  # the next document: breaker open, no attempt
            return first, second
        finally:
            await models.aclose()

    first, second = await go()
    for item in (first, second):
        for slide in item.document.slides[:PAGES]:
            assert slide.vision.path == pb.VISION_PATH_DESCRIPTION and slide.vision.degraded
            assert slide.vision.text.startswith(f"Page {slide.number}: Quarterly revenue by region")
            assert "vision model" in slide.vision.notes[0]
        assert any("did not describe 5 of 5 flagged pages" in w for w in item.warnings)
        assert item.model_usage.by_task["vision_summary"].fallbacks == PAGES
    assert first.model_usage.by_task["vision_summary"].calls >= 2  # failures that opened the breaker
    assert second.model_usage.by_task["vision_summary"].calls == 0
    assert all(s.vision.notes[0] == "vision model unavailable (circuit open)" for s in second.document.slides[:PAGES])
    assert all(not s.vision.renderer for s in second.document.slides[:PAGES])  # not rendered for nothing


async def test_offline_default_never_takes_the_model_path(pages_pdf: Path, tmp_path: Path) -> None:
    item = await VisionStage(VisionConfig(data_dir=tmp_path)).process(_item(pages_pdf))
    assert {s.vision.path for s in item.document.slides[:PAGES]} == {pb.VISION_PATH_DESCRIPTION}
    assert not item.HasField("model_usage")
