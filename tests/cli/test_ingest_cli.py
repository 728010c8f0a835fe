"""The CLI contract: `osmose ingest|search|stats`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_osmose

REPORT_KEYS = {"file", "status", "error", "warnings", "doc_id", "tier", "slides", "segments", "concepts",
               "relations", "chunks", "embedded", "seconds", "model", "tier_reason"}


@pytest.fixture(scope="module")
def ingested(samples: list[Path], tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("data")
    first = run_osmose("ingest", *samples, "--json", data_dir=data)
    return data, first


def test_help_explains_every_command() -> None:
    top = run_osmose("--help")
    assert top.code == 0
    for command in ("ingest", "search", "stats"):
        assert command in top.stdout
        sub = run_osmose(command, "--help")
        assert sub.code == 0 and "--data-dir" in sub.stdout
    assert "--tier" in run_osmose("ingest", "--help").stdout


def test_ingest_json_is_one_object_per_file(ingested, samples: list[Path]) -> None:
    _, result = ingested
    assert result.code == 0, result.stderr
    reports = result.json_lines()
    assert [r["file"] for r in reports] == [str(p) for p in samples]
    for report in reports:
        assert set(report) == REPORT_KEYS
        assert report["status"] == "ok" and report["error"] is None
        assert report["chunks"] > 0 and report["embedded"] == report["chunks"]
        assert set(report["seconds"]) >= {"triage", "embedder", "persister", "total"}
        assert report["model"]["calls"] == 0 and report["model"]["by_task"] == {}  # offline: no model server
    deck, data_deck, pdf = reports
    assert (deck["slides"], data_deck["slides"], pdf["slides"]) == (12, 5, 3)
    # small documents get the full graph
    assert deck["tier"] == "deep" and deck["concepts"] > 10 and deck["relations"] > 0
    assert deck["segments"] >= 2


def test_reingest_changes_nothing_and_embeds_nothing(ingested, samples: list[Path]) -> None:
    data, first = ingested
    before = run_osmose("stats", "--json", data_dir=data)
    again = run_osmose("ingest", *samples, "--json", data_dir=data)
    assert again.code == 0
    assert [r["embedded"] for r in again.json_lines()] == [0, 0, 0]
    assert [r["doc_id"] for r in again.json_lines()] == [r["doc_id"] for r in first.json_lines()]
    after = run_osmose("stats", "--json", data_dir=data)
    assert json.loads(after.stdout) == json.loads(before.stdout)
    counts = json.loads(after.stdout)["default"]
    assert counts["documents"] == 3 and counts["slides"] == 20
    assert counts["chunks"] == sum(r["chunks"] for r in first.json_lines())


def test_search_finds_a_sentence_from_speaker_notes(ingested) -> None:
    data, _ = ingested
    result = run_osmose("search", "The 2024 incident started with a phished VPN password", "--json",
                        data_dir=data)
    assert result.code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert hits[0]["file"] == "zero-trust-programme.pptx" and hits[0]["slide"] == 2
    assert set(hits[0]) == {"doc_id", "file", "slide", "score", "text", "concepts", "related"}
    assert "phished VPN password" in hits[0]["text"]


def test_search_returns_concepts_of_the_slide(ingested) -> None:
    data, _ = ingested
    hits = json.loads(run_osmose("search", "Zero Trust Network Access replaces the VPN", "--json", "-k", "3",
                                 data_dir=data).stdout)
    assert len(hits) == 3
    top = hits[0]
    assert (top["file"], top["slide"]) == ("zero-trust-programme.pptx", 6)
    assert any("zero trust network access" in c.lower() or "ztna" in c.lower() for c in top["concepts"])


def test_human_output(ingested) -> None:
    data, _ = ingested
    stats = run_osmose("stats", data_dir=data)
    assert stats.code == 0 and "default" in stats.stdout and "documents" in stats.stdout
    search = run_osmose("search", "security operations center", "-k", "2", data_dir=data)
    assert search.code == 0 and "1. " in search.stdout and "2. " in search.stdout


def test_bad_file_fails_alone_with_a_reason(samples: list[Path], tmp_path: Path) -> None:
    html = tmp_path / "not-a-deck.pptx"
    html.write_text("<html><body>This is a web page</body></html>")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.pdf"
    result = run_osmose("ingest", html, samples[1], empty, missing, "--json", data_dir=tmp_path / "d")
    assert result.code == 1
    bad, good, zero, absent = result.json_lines()
    assert good["status"] == "ok" and good["chunks"] > 0
    for report in (bad, zero, absent):
        assert report["status"] == "error" and report["error"]
        assert "Traceback" not in report["error"] and "internal error" not in report["error"]
    assert zero["error"].startswith("empty")
    assert absent["error"].startswith("not-found")
    assert "Traceback" not in result.stderr


def test_forced_fast_tier_is_embeddings_only(samples: list[Path], tmp_path: Path) -> None:
    report = run_osmose("ingest", samples[0], "--tier", "fast", "--json", data_dir=tmp_path).json_lines()[0]
    assert report["tier"] == "fast"
    assert (report["concepts"], report["relations"]) == (0, 0)
    assert report["chunks"] > 0
    assert "extractor" not in report["seconds"] and "vision" not in report["seconds"]


def test_preview_is_searchable_first_and_ends_with_the_direct_runs_counts(ingested, samples: list[Path],
                                                                         tmp_path: Path) -> None:
    """`--preview` on the offline default: the same graph counts as a direct ingest, the report
    says when the document became searchable, and the unchanged deck again embeds nothing."""
    _, direct = ingested
    report = run_osmose("ingest", samples[0], "--preview", "--json", data_dir=tmp_path).json_lines()[0]
    plain = direct.json_lines()[0]
    assert report["status"] == "ok" and report["tier"] == plain["tier"] == "deep"
    assert [report[k] for k in ("concepts", "relations", "chunks")] == [plain[k] for k in ("concepts", "relations",
                                                                                            "chunks")]
    assert 0 < report["seconds"]["searchable"] <= report["seconds"]["total"]
    assert report["tier_reason"].endswith("searchable at fast first")
    again = run_osmose("ingest", samples[0], "--preview", "--json", data_dir=tmp_path).json_lines()[0]
    assert again["embedded"] == 0 and again["concepts"] == plain["concepts"]
    assert "--preview" in run_osmose("ingest", "--help").stdout


def test_tenants_see_only_their_own_data(samples: list[Path], tmp_path: Path) -> None:
    deck, data_deck, _ = samples
    assert run_osmose("ingest", deck, "--tenant", "acme", data_dir=tmp_path).code == 0
    assert run_osmose("ingest", deck, data_deck, "--tenant", "globex", data_dir=tmp_path).code == 0
    stats = json.loads(run_osmose("stats", "--json", data_dir=tmp_path).stdout)
    assert stats["acme"]["documents"] == 1 and stats["globex"]["documents"] == 2
    only_acme = json.loads(run_osmose("stats", "--json", "--tenant", "acme", data_dir=tmp_path).stdout)
    assert list(only_acme) == ["acme"]
    query = "Databricks for data engineering and machine learning"
    acme_hits = json.loads(run_osmose("search", query, "--tenant", "acme", "--json", data_dir=tmp_path).stdout)
    assert all(h["file"] == deck.name for h in acme_hits)
    globex_hits = json.loads(run_osmose("search", query, "--tenant", "globex", "--json", data_dir=tmp_path).stdout)
    assert globex_hits[0]["file"] == data_deck.name


def test_env_sets_the_data_dir(samples: list[Path], tmp_path: Path) -> None:
    result = run_osmose("ingest", samples[2], "--json", env={"OSMOSE_DATA_DIR": str(tmp_path / "env-data")})
    assert result.code == 0
    assert (tmp_path / "env-data" / "graph.sqlite").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_osmose("ingest", data_dir=tmp_path).code == 2
    assert run_osmose("ingest", "x.pptx", "--tier", "ultra").code == 2
    result = run_osmose("search", "anything", data_dir=tmp_path / "nothing-here")
    assert result.code == 1 and "ingest something first" in result.stderr
