"""The per-document budget as a user meets it in `osmose ingest`: a clear `too-large`
with a non-zero exit, or a lower tier with the reason on the --json line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.dense_deck import dense_deck_once
from tests.support import run_osmose


@pytest.mark.slow
def test_generated_27mb_deck_is_refused_with_a_clear_reason(tmp_path_factory, tmp_path: Path,
                                                             samples: list[Path]) -> None:
    deck = dense_deck_once(tmp_path_factory.getbasetemp())
    result = run_osmose("ingest", deck, samples[1], "--json", data_dir=tmp_path)
    assert result.code == 1, result.stderr
    refused, other = result.json_lines()
    assert refused["status"] == "error" and other["status"] == "ok"    # the other file goes on
    assert refused["error"].startswith("too-large: about ")
    assert "tokens to embed" in refused["error"] and "OSMOSE_MAX_EMBED_TOKENS" in refused["error"]
    assert refused["chunks"] == 0 and refused["embedded"] == 0
    # nothing of it was written
    stats = json.loads(run_osmose("stats", "--json", data_dir=tmp_path).stdout)
    assert stats["default"]["documents"] == 1
    human = run_osmose("ingest", deck, data_dir=tmp_path)
    assert human.code == 1 and "too-large" in human.stdout + human.stderr


def test_over_the_call_budget_the_tier_is_lowered_and_the_line_says_why(tmp_path: Path,
                                                                       samples: list[Path]) -> None:
    result = run_osmose("ingest", samples[0], "--json", data_dir=tmp_path, env={"OSMOSE_MAX_MODEL_CALLS": "0"})
    assert result.code == 0, result.stderr
    (line,) = result.json_lines()
    assert line["status"] == "ok" and line["tier"] == "fast" and line["chunks"] > 0
    assert "budget: deep would need" in line["tier_reason"] and "OSMOSE_MAX_MODEL_CALLS" in line["tier_reason"]
    assert any(w.startswith("tier lowered to fast") for w in line["warnings"])
