"""Work in flight on the service host: per stage, from the model backends' capacity (the
in-process host's rule), with ``OSMOSE_MAX_IN_FLIGHT`` as an explicit override."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.service import ServiceHost, ServiceOptions
from osmose.hosts.wiring import DEFAULT_IN_FLIGHT, Resources
from osmose.pipeline import PIPELINE
from tests.unit.models.backends import write_router

pytestmark = pytest.mark.anyio

MODEL_STAGES = {"vision", "extractor", "embedder", "miner"}


def _online(tmp_path: Path, *, concurrency: int, **settings: object) -> Settings:
    router = write_router(tmp_path / "router.yaml", llm="http://127.0.0.1:9/v1", vision="http://127.0.0.1:9/v1",
                          tei="", concurrency=concurrency)
    return Settings(data_dir=tmp_path / "data", llm_url="http://127.0.0.1:9/v1", vision_url="http://127.0.0.1:9/v1",
                    router_config=router, **settings)


async def test_model_stages_take_the_slots_times_documents_per_slot_the_others_the_default(tmp_path: Path) -> None:
    settings = _online(tmp_path, concurrency=12)
    resources = Resources(settings)
    host = ServiceHost(settings, list(PIPELINE.names()))
    try:
        config = resources.models.config  # type: ignore[union-attr]
        assert config.chat_slots == 24  # llm 12 + vision 12
        derived = math.ceil(24 * config.documents_per_slot)
        assert derived == 12
        by_stage = {decl.name: host.in_flight_of(decl, resources) for decl in PIPELINE}
        assert {s for s, n in by_stage.items() if n == derived} == MODEL_STAGES
        assert by_stage["triage"] == by_stage["persister"] == DEFAULT_IN_FLIGHT
        # the same rule as the in-process host's documents in flight
        pipeline = InProcessPipeline(settings)
        assert pipeline.max_in_flight == derived
        await pipeline.close()
    finally:
        await resources.close()


async def test_max_in_flight_overrides_every_stage(tmp_path: Path) -> None:
    settings = _online(tmp_path, concurrency=12)
    resources = Resources(settings)
    host = ServiceHost(settings, list(PIPELINE.names()), ServiceOptions(max_in_flight=3))
    try:
        assert {host.in_flight_of(decl, resources) for decl in PIPELINE} == {3}
    finally:
        await resources.close()


async def test_without_model_endpoints_every_stage_takes_the_default(tmp_path: Path) -> None:
    resources = Resources(Settings(data_dir=tmp_path))
    host = ServiceHost(resources.settings, ["extractor", "triage"])
    assert {host.in_flight_of(decl, resources) for decl in PIPELINE} == {DEFAULT_IN_FLIGHT}
    await resources.close()


def test_the_setting_is_unset_unless_given() -> None:
    assert Settings.from_env({}).max_in_flight is None
    assert Settings.from_env({"OSMOSE_MAX_IN_FLIGHT": "7"}).max_in_flight == 7
