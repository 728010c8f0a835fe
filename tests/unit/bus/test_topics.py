"""The topic declaration: derived from the stage declaration, valid for Kafka, readable by tools."""

from __future__ import annotations

import json

import pytest

from osmose.bus import topics
from osmose.pipeline import STAGES


def test_every_stage_has_an_input_per_priority_and_a_dead_letter_topic() -> None:
    specs = topics.declare_topics("osmose")
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 3 * len(STAGES) + 1
    for stage in STAGES:
        assert f"osmose.{stage.name}.high" in names and f"osmose.{stage.name}.bulk" in names
        assert f"osmose.{stage.name}.dlq" in names
    assert names[-1] == "osmose.jobs"
    assert topics.input_topics("p", "triage") == {"high": "p.triage.high", "bulk": "p.triage.bulk"}
    assert list(topics.input_topics("p", "triage")) == ["high", "bulk"]   # preferred class first


def test_only_the_job_topic_is_compacted_and_every_topic_bounds_messages() -> None:
    for spec in topics.declare_topics("x"):
        configs = spec.configs()
        assert configs["cleanup.policy"] == ("compact,delete" if spec.kind == "job-status" else "delete")
        assert int(configs["retention.ms"]) > 0
        assert int(configs["max.message.bytes"]) <= 1024 * 1024
        if spec.kind == "input":
            assert spec.partitions >= 2     # replicas of a stage scale up to this
    json.dumps([s.as_dict() for s in topics.declare_topics("x")])   # what `osmose topics --json` prints


def test_names_reject_unknown_stages_priorities_and_bad_prefixes() -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        topics.input_topic("osmose", "OCR stage", "high")
    with pytest.raises(ValueError, match="unknown priority"):
        topics.input_topic("osmose", "triage", "urgent")
    with pytest.raises(ValueError, match="prefix"):
        topics.declare_topics("bad prefix!")
    assert topics.consumer_group("team-a", "miner") == "team-a.miner"
