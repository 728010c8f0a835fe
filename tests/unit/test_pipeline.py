"""The stage declaration: plans per tier, routing, validation, and what `osmose describe --json` prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from click.testing import CliRunner

from osmose.bus import topics
from osmose.cli.main import cli
from osmose.pipeline import PIPELINE, STAGES, Pipeline, Stage
from osmose.v1 import document_pb2 as pb

TIERS = (pb.TIER_FAST, pb.TIER_STANDARD, pb.TIER_DEEP)


def test_plans_per_tier() -> None:
    assert [s.name for s in PIPELINE.plan(pb.TIER_FAST)] == ["triage", "embedder", "persister"]
    deep = ["triage", "vision", "extractor", "embedder", "miner", "persister"]
    assert [s.name for s in PIPELINE.plan(pb.TIER_STANDARD)] == deep
    assert [s.name for s in PIPELINE.plan(pb.TIER_DEEP)] == deep


def test_routing_follows_the_plan_of_every_tier() -> None:
    assert PIPELINE.next_stage("triage", pb.TIER_FAST).name == "embedder"
    assert PIPELINE.next_stage("persister", pb.TIER_DEEP) is None
    for tier in TIERS:
        path, stage = [PIPELINE.front_door], PIPELINE.front_door
        while (stage := PIPELINE.next_stage(stage.name, tier)) is not None:
            path.append(stage)
        assert tuple(path) == PIPELINE.plan(tier)


def test_roles_ports_and_factories() -> None:
    assert PIPELINE.front_door.name == "triage" and PIPELINE.writer.name == "persister"
    assert len({s.port for s in PIPELINE}) == len(PIPELINE)
    for decl in PIPELINE:
        cls = decl.load()
        assert cls.name == decl.name and callable(cls.Config.from_settings) and callable(cls.process)


@pytest.mark.parametrize("change, message", [
    (lambda stages: stages[1:], "front door"),
    (lambda stages: (*stages, replace(stages[1], name="again")), "ports must be unique"),
    (lambda stages: (*stages, replace(stages[1], port=59999)), "names must be unique"),
    (lambda stages: tuple(s for s in stages if s.role != "writer"), "writer"),
])
def test_invalid_pipelines_are_refused(change: Callable[[tuple[Stage, ...]], tuple[Stage, ...]], message: str
                                       ) -> None:
    with pytest.raises(ValueError, match=message):
        Pipeline(change(STAGES))


def test_invalid_stages_are_refused() -> None:
    with pytest.raises(ValueError, match="factory"):
        Stage(name="x", factory="no_colon", port=1)
    with pytest.raises(ValueError, match="unknown resources"):
        Stage(name="x", factory="m:C", port=1, resources=frozenset({"gpu"}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower-case identifier"):
        Stage(name="X-ray", factory="m:C", port=1)
    with pytest.raises(ValueError, match="unknown stage"):
        PIPELINE["ocr"]


def test_describe_json_is_the_declaration_with_topics_and_groups() -> None:
    result = CliRunner().invoke(cli, ["describe", "--json", "--topic-prefix", "team-a"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert [s["name"] for s in described["stages"]] == list(PIPELINE.names())
    for stage, decl in zip(described["stages"], PIPELINE, strict=True):
        assert stage["port"] == decl.port and stage["role"] == decl.role
        assert stage["metrics_port"] == decl.metrics_port
        assert stage["consumer_group"] == topics.consumer_group("team-a", decl.name)
        assert stage["topics"]["input"] == topics.input_topics("team-a", decl.name)
        assert stage["topics"]["dead_letter"] == topics.dead_letter_topic("team-a", decl.name)
        assert stage["partitions"] == topics.INPUT_PARTITIONS
    assert described["tiers"]["fast"] == ["triage", "embedder", "persister"]
    assert [t["name"] for t in described["topics"]] == [t.name for t in topics.declare_topics("team-a")]
    assert described["job_topic"] == "team-a.jobs"
    text = CliRunner().invoke(cli, ["describe"])
    assert text.exit_code == 0 and "persister" in text.output and "writer" in text.output
