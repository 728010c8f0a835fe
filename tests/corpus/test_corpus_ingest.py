"""The whole pipeline over ../shared/corpus, through the CLI, as a user runs it.

One `osmose ingest --json` over every good file, one over every bad file plus a
good one; the tests below read those runs. Skipped (with the reason) when the
corpus is absent; CI always has it.
"""

from __future__ import annotations

import json
import re
import resource
from pathlib import Path

import pytest

from tests.support import run_osmose

# The module-scoped runs ingest the whole corpus: far beyond the default per-test timeout.
pytestmark = [pytest.mark.anyio, pytest.mark.corpus, pytest.mark.slow, pytest.mark.timeout(3600)]

# What each malformed file must give: "error:<reason>" or "ok" (the valid part, with warnings).
BAD_OUTCOMES = {
    "bad/owasp-2010-rc1-html-as-pptx.pptx": "error:not-a-presentation",
    "bad/owasp-top10-2017-en-truncated-upload.pdf": "error:truncated",
    "bad/pdfjs-bomb-giant.pdf": "ok",
    "bad/pdfjs-ghostscript-698804-fuzzed.pdf": "error:corrupt",
    "bad/pdfjs-pages-tree-cycle.pdf": "ok",
    "bad/pdfjs-poppler-67295-0.pdf": "error:corrupt",
    # no central directory, but the zip's local headers still hold 12 readable slides
    "bad/poi-divino-revelado-truncated.pptx": "ok",
    "bad/poi-password-protected.ppt": "error:encrypted",
    "bad/poi-pp40only.ppt": "error:unsupported-legacy-format",
    "bad/poi-stress022-ppsx-as-pptx.pptx": "ok",
    # damaged central directory; the members with a valid CRC still make one slide
    "bad/poi-xslf-fuzz-5471515212382208.pptx": "ok",
    "bad/pypdf-02voc-1byte.pdf": "error:empty",
    "bad/pypdfsf-libreoffice-password.pdf": "error:encrypted",
    "bad/tika-protected-passtika.pptx": "error:encrypted",
    "bad/truncated-pdfjs-tracemonkey.pdf": "error:truncated",
    "bad/truncated-sql2019-modern-data-platform.pptx": "error:truncated",
    "bad/unst-eng-spa-mult-pptx-as-ppt.ppt": "ok",
}
# LibreOffice's conversion of this legacy deck carries none of its notes (MANIFEST says so).
NOTES_LOST_IN_CONVERSION = {"pptx/poi-41246-fr.ppt"}
MAX_PEAK_RSS_MB = 4096


def _rel(corpus: Path, file: str) -> str:
    return Path(file).resolve().relative_to(corpus.resolve()).as_posix()


@pytest.fixture(scope="module")
def good_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    files = sorted([*corpus.glob("pptx/*"), *corpus.glob("pdf/*")])
    data = tmp_path_factory.mktemp("corpus-data")
    result = run_osmose("ingest", *files, "--json", data_dir=data, timeout=3600)
    reports = {_rel(corpus, r["file"]): r for r in result.json_lines()}
    return data, result, reports


@pytest.fixture(scope="module")
def bad_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    good = corpus / "pptx" / "docling-powerpoint-sample.pptx"
    files = [*sorted(corpus.glob("bad/*")), good]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = run_osmose("ingest", *files, "--json", data_dir=tmp_path_factory.mktemp("bad-data"), timeout=1800)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result, {_rel(corpus, r["file"]): r for r in result.json_lines()}, max(peak_mb, before / 1024)


def test_every_good_file_ingests_with_the_manifest_counts(good_run, manifest) -> None:
    _, result, reports = good_run
    expected = {p for p, row in manifest.items() if row["kind"] in ("pptx", "ppt", "pdf")}
    assert set(reports) == expected, result.stderr[-2000:]
    failures = {p: r["error"] for p, r in reports.items() if r["status"] != "ok"}
    assert not failures
    wrong = {p: (r["slides"], manifest[p]["slides_or_pages"]) for p, r in reports.items()
             if str(r["slides"]) != manifest[p]["slides_or_pages"]}
    assert not wrong
    assert result.code == 0
    assert all(r["chunks"] > 0 for p, r in reports.items() if "no text" not in manifest[p]["language"])


async def _chunk_texts(data: Path, doc_id: str) -> dict[int, str]:
    """Text of every chunk of the document, joined per slide, read back from the vector store."""

    from osmose.stores.qdrant_store import QdrantVectorStore

    async def read() -> list[dict]:
        store = QdrantVectorStore(path=data / "qdrant")
        try:
            return await store.document_payloads("default", doc_id)
        finally:
            await store.close()

    texts: dict[int, str] = {}
    for payload in await read():
        texts[payload["slide"]] = texts.get(payload["slide"], "") + "\n" + payload["text"]
    return texts


def _norm(text: str) -> str:
    return " ".join(text.split())


async def test_speaker_notes_are_in_the_chunks(good_run, manifest, corpus: Path) -> None:
    from osmose.config import Settings
    from osmose.documents.parsing import parse_document

    data, _, reports = good_run
    with_notes = [p for p, row in manifest.items()
                  if row["has_notes"].startswith("yes") and p in reports and p not in NOTES_LOST_IN_CONVERSION]
    assert len(with_notes) >= 10
    for path in with_notes:
        doc = parse_document(corpus / path, settings=Settings())
        noted = [s for s in doc.slides if len(s.notes.strip()) >= 10]
        assert noted, f"{path}: MANIFEST says it has notes, none parsed"
        chunks = await _chunk_texts(data, reports[path]["doc_id"])
        for slide in noted[:5]:
            snippet = _norm(slide.notes)[:60]
            assert snippet in _norm(chunks.get(slide.number, "")), f"{path} slide {slide.number}: notes missing"


def _distinctive_line(corpus: Path, path: str) -> tuple[str, int]:
    from osmose.config import Settings
    from osmose.documents.parsing import parse_document

    doc = parse_document(corpus / path, settings=Settings())
    counts: dict[str, int] = {}
    for slide in doc.slides:
        for block in slide.blocks:
            for line in block.text.splitlines():
                counts[_norm(line)] = counts.get(_norm(line), 0) + 1
    middle = doc.slides[len(doc.slides) // 3:] + doc.slides[: len(doc.slides) // 3]
    for slide in middle:
        for block in slide.blocks:
            for line in block.text.splitlines():
                line = _norm(line)
                if 30 <= len(line) <= 160 and counts[line] == 1 and len(re.findall(r"\w+", line)) >= 4:
                    return line, slide.number
    raise AssertionError(f"no distinctive line in {path}")


@pytest.mark.parametrize("path", [
    "pptx/sql2019-modern-data-platform.pptx",
    "pptx/owasp-top10-2017-ja.pptx",
    "pptx/cours-html-css-fr.pptx",
    "pptx/poi-stress021-he.pptx",
    "pdf/pdfjs-tracemonkey.pdf",
])
def test_a_distinctive_sentence_finds_its_deck_and_slide_first(good_run, corpus: Path, path: str) -> None:
    data, _, reports = good_run
    line, number = _distinctive_line(corpus, path)
    hits = json.loads(run_osmose("search", line, "--json", "-k", "3", data_dir=data).stdout)
    assert hits, f"no hit for {line!r}"
    assert (hits[0]["doc_id"], hits[0]["slide"]) == (reports[path]["doc_id"], number), line


def test_bad_files_fail_with_a_reason_or_keep_their_valid_part(bad_run) -> None:
    result, reports, _ = bad_run
    assert set(BAD_OUTCOMES) <= set(reports)
    for path, expected in BAD_OUTCOMES.items():
        report = reports[path]
        error = report["error"] or ""
        assert "Traceback" not in error and "internal error" not in error, (path, error)
        if expected == "ok":
            assert report["status"] == "ok", (path, error)
            assert report["warnings"], f"{path}: damaged but no warning"
        else:
            assert report["status"] == "error", (path, report)
            assert error.startswith(expected.removeprefix("error:")), (path, error)
            assert len(error) > len(expected) + 10, f"{path}: reason without explanation: {error!r}"
    assert result.code == 1
    assert "Traceback" not in result.stderr


def test_a_good_file_beside_bad_ones_still_ingests(bad_run) -> None:
    _, reports, _ = bad_run
    good = reports["pptx/docling-powerpoint-sample.pptx"]
    assert good["status"] == "ok" and good["chunks"] > 0


def test_bad_files_stay_within_time_and_memory(bad_run) -> None:
    _, reports, peak_mb = bad_run
    slow = {p: r["seconds"]["total"] for p, r in reports.items() if r["seconds"]["total"] > 120}
    assert not slow
    assert peak_mb < MAX_PEAK_RSS_MB
