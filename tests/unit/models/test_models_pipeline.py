"""The whole pipeline (in-process host) against local vLLM- and TEI-like servers: what a document
costs in model calls, on a first ingest, a replay, and a new version with one changed slide."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path

import pptx
import pytest
from pptx.util import Inches

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.report import IngestReport
from osmose.services.extractor.llm_extract import SYSTEM as EXTRACTION_SYSTEM
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import png_bytes
from tests.unit.models.backends import write_router

pytestmark = pytest.mark.anyio

TOPICS = [
    ("Identity", [["Zero Trust Network Access (ZTNA) replaces the corporate VPN",
                   "Every request is checked by the Identity Provider"],
                  ["The Identity Provider issues short-lived tokens",
                   "Multi-Factor Authentication (MFA) protects administrator accounts"]]),
    ("Monitoring", [["The Security Operations Center (SOC) watches alerts around the clock",
                     "Analysts use Microsoft Sentinel for correlation"],
                    ["Microsoft Sentinel depends on Log Analytics workspaces",
                     "Alert rules follow the MITRE ATT&CK framework"]]),
    ("Resilience", [["Immutable backups protect against ransomware",
                     "Recovery tests run twice a year with the Incident Commander"],
                    ["The Business Continuity Plan names a Recovery Time Objective (RTO)",
                     "Backups are copied to a second Azure region"]]),
]


def build_deck(path: Path, *, change: str | None = None) -> Path:
    """Three sections (header + two content slides each) and a diagram slide (a big picture)."""
    prs = pptx.Presentation()
    for title, slides in TOPICS:
        prs.slides.add_slide(prs.slide_layouts[2]).shapes.title.text = title
        for n, bullets in enumerate(slides, 1):
            slide = prs.slides.add_slide(prs.slide_layouts[1])
            slide.shapes.title.text = f"{title}: part {n}"
            lines: Sequence[str] = bullets
            if change and title == "Monitoring" and n == 2:
                lines = [change, *bullets[1:]]
            frame = slide.placeholders[1].text_frame
            frame.text = lines[0]
            for line in lines[1:]:
                frame.add_paragraph().text = line
    diagram = prs.slides.add_slide(prs.slide_layouts[5])
    diagram.shapes.title.text = "Architecture"
    diagram.shapes.add_picture(io.BytesIO(png_bytes(800, 500, (40, 90, 160))), Inches(0.5), Inches(1.5),
                               Inches(9), Inches(5.5))
    prs.save(path)
    return path


async def ingest(settings: Settings, path: Path) -> IngestReport:
    async def go() -> IngestReport:
        async with InProcessPipeline(settings) as pipeline:
            return await pipeline.ingest_one(path, tenant="acme", tier=pb.TIER_DEEP)

    report = await go()
    assert report.status == "ok", report.error
    return report


def calls(report: IngestReport, task: str) -> int:
    return report.model["by_task"].get(task, {}).get("calls", 0)


@pytest.mark.slow
async def test_first_ingest_replay_and_one_changed_slide(tmp_path: Path) -> None:
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        settings = Settings(
            data_dir=tmp_path / "data", llm_url=llm.openai_url, vision_url=llm.openai_url, tei_url=tei.url,
            router_config=write_router(tmp_path / "router.yaml", llm="${llm_url}", vision="${vision_url}",
                                       tei="${tei_url}"))
        deck = build_deck(tmp_path / "v1.pptx")
        first = await ingest(settings, deck)
        renders = shutil.which("soffice") is not None  # a deck is rendered through LibreOffice

        assert first.segments == 4 and first.vision_slides == 1
        assert calls(first, "concept_extraction") == 1  # 4 segments, 4 per call
        assert calls(first, "vision_summary") == (1 if renders else 0)
        assert calls(first, "relation_typing") == 1
        assert calls(first, "embedding") >= 1
        assert first.model["calls"] == llm.chat_requests + tei.embed_requests  # every request is accounted for

        replay = await ingest(settings, deck)
        assert replay.model["calls"] == 0 and replay.model["cache_hits"] > 0
        assert replay.embedded == 0
        assert (replay.concepts, replay.relations) == (first.concepts, first.relations)

        changed = build_deck(tmp_path / "v2.pptx", change="Microsoft Sentinel now also reads Defender for Cloud")
        before = len(llm.log)
        second = await ingest(settings, changed)
        extraction = second.model["by_task"]["concept_extraction"]
        assert (extraction["calls"], extraction["cache_hits"]) == (1, 3)  # the changed segment only
        asked = [body["messages"][1]["content"] for body in llm.log[before:]
                 if body["messages"][0]["content"] == EXTRACTION_SYSTEM]
        assert len(asked) == 1 and asked[0].count("SEGMENT ") == 1 and "Defender for Cloud" in asked[0]
        assert calls(second, "relation_typing") == 1
        assert calls(second, "vision_summary") == 0  # the diagram did not change
        assert second.embedded == 1  # the changed slide's chunk


def test_offline_default_reports_a_zero_model_object(tmp_path: Path) -> None:
    report = IngestReport(file="x")
    assert report.as_dict()["model"] == {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "output_tokens": 0,
                                         "backend_seconds": 0.0, "retries": 0, "failures": 0, "fallbacks": 0,
                                         "by_task": {}}
