"""Hostile documents (tests/fuzz/hostile.py): each one gets a verdict with a reason, or a document
within its bounds, in-process and through the bounded worker pool, without running past the
worker's deadline or memory ceiling."""

from __future__ import annotations

import functools
import os
import resource
import time
from collections.abc import Callable

import pytest

from osmose.config import Limits, Settings
from osmose.documents.parsing import parse_document_bytes
from osmose.documents.parsing.worker import ParserPool
from osmose.errors import DocumentError
from osmose.v1 import document_pb2 as pb
from tests.fuzz import hostile
from tests.fuzz.targets import check_document, check_parse

SETTINGS = Settings()
# `make fuzz` sets FUZZ_FULL_SIZE=1: a million PDF objects, 1 GiB bombs, 100,000 shapes, 50 MB
# notes. `make test` builds the same cases smaller (each still past the bound it exercises).
FULL = os.environ.get("FUZZ_FULL_SIZE") == "1"


def _size(full: int, ci: int) -> int:
    return full if FULL else ci


# name -> (builder, expected outcome: "ok" or a DocumentError reason)
CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "billion-laughs.pptx": (hostile.billion_laughs_pptx, "corrupt"),  # libxml2 refuses the amplification
    "external-entity.pptx": (hostile.external_entity_pptx, "ok"),     # the entity is not resolved
    "entity-in-content-types.pptx": (hostile.entity_in_content_types_pptx, "corrupt"),
    "deep-nesting.pptx": (lambda: hostile.deep_nesting_pptx(_size(100_000, 2_000)), "corrupt"),  # depth limit 256
    "nested-groups-250.pptx": (hostile.nested_groups_pptx, "corrupt"),
    "deep-text-nesting.pptx": (hostile.deep_text_nesting_pptx, "corrupt"),
    "many-shapes.pptx": (lambda: hostile.many_shapes_pptx(_size(100_000, 12_000)), "ok"),  # capped at 10,000
    "invalid-utf8.pptx": (hostile.invalid_utf8_pptx, "corrupt"),
    "latin1-declared.pptx": (hostile.latin1_declared_pptx, "ok"),
    "giant-notes-9mb.pptx": (lambda: hostile.giant_notes_pptx(9_000_000), "ok"),
    "giant-notes-50mb.pptx": (lambda: hostile.giant_notes_pptx(_size(50_000_000, 11_000_000)),
                              "corrupt"),  # libxml2's 10 MB text node limit
    "giant-text.pptx": (lambda: hostile.giant_text_pptx(_size(50_000_000, 11_000_000)), "corrupt"),
    "many-slides.pptx": (hostile.many_slides_pptx, "too-many-pages"),
    "zip-bomb-honest.pptx": (hostile.zip_bomb_honest_pptx, "uncompressed-too-large"),
    "zip-bomb-lying.pptx": (hostile.zip_bomb_lying_pptx, "corrupt"),
    "many-members.pptx": (lambda: hostile.many_members_pptx(_size(25_000, 20_100)), "uncompressed-too-large"),
    "many-objects.pdf": (lambda: hostile.many_objects_pdf(_size(1_000_000, 200_000)), "ok"),
    "many-pages.pdf": (hostile.many_pages_pdf, "too-many-pages"),
    "huge-content-stream.pdf": (lambda: hostile.huge_content_stream_pdf(_size(2_000_000, 300_000)), "ok"),
    "flate-bomb.pdf": (lambda: hostile.flate_bomb_pdf(_size(1024**3, 128 * 1024**2)), "ok"),
    "deep-array.pdf": (hostile.deep_array_pdf, "corrupt"),
    "page-tree-cycle.pdf": (hostile.page_tree_cycle_pdf, "ok"),
    "huge-mediabox.pdf": (hostile.huge_mediabox_pdf, "ok"),
}
# Run again in a worker with a 1.5 GiB ceiling: the ones that cost memory or time.
IN_WORKER = ["zip-bomb-lying.pptx", "huge-content-stream.pdf", "billion-laughs.pptx", "many-shapes.pptx",
             "flate-bomb.pdf", "giant-notes-9mb.pptx"]


@functools.cache
def _data(name: str) -> bytes:
    return CASES[name][0]()


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_document_gets_a_verdict(name: str) -> None:
    assert check_parse(_data(name), file_name=name, settings=SETTINGS) == CASES[name][1]


def test_every_builder_is_a_case() -> None:
    assert set(hostile.HOSTILE) - set(CASES) == {"giant-notes.pptx"}  # run as giant-notes-9mb and -50mb


def _doc(name: str) -> pb.Document:
    return parse_document_bytes(_data(name), settings=SETTINGS, file_name=name)


def test_external_entity_is_not_read() -> None:
    doc = _doc("external-entity.pptx")
    assert "root:" not in doc.SerializeToString().decode("utf-8", "replace")


def test_latin1_part_is_decoded_by_its_declaration() -> None:
    assert "café crème" in [b.text for b in _doc("latin1-declared.pptx").slides[0].blocks]


def test_shape_count_is_capped_with_a_warning() -> None:
    doc = _doc("many-shapes.pptx")
    assert any("more than 10,000 shapes" in w for w in doc.warnings)
    check_document(doc, SETTINGS)


def test_giant_notes_are_capped_at_max_page_chars() -> None:
    doc = _doc("giant-notes-9mb.pptx")
    assert len(doc.slides[0].notes) == SETTINGS.limits.max_page_chars
    assert any("truncated" in w for w in doc.warnings)


def test_page_with_huge_text_is_read_as_plain_text() -> None:
    doc = _doc("huge-content-stream.pdf")
    assert any("read as plain text blocks" in w for w in doc.warnings)
    assert sum(len(b.text) for b in doc.slides[0].blocks) <= SETTINGS.limits.max_page_chars


def test_lying_zip_member_is_never_inflated_whole() -> None:
    """Regression (fuzzing): a member declaring 100 bytes that inflates to 1 GiB made zipfile
    allocate 1 GiB per read (2.1 GB peak); it is now read in bounded chunks."""
    before = _rss_mb()
    with pytest.raises(DocumentError) as rejected:
        _doc("zip-bomb-lying.pptx")
    assert rejected.value.reason == "corrupt"
    assert _rss_mb() - before < 300


def test_hostile_documents_in_the_bounded_worker() -> None:
    settings = Settings(limits=Limits(parse_timeout_s=60))
    parser = ParserPool(size=1, memory_limit_bytes=1536 * 1024**2)
    try:
        for name in IN_WORKER:
            expected = CASES[name][1]
            started = time.monotonic()
            try:
                doc = parser.parse(_data(name), settings=settings, file_name=name)
            except DocumentError as exc:
                outcome = exc.reason
            else:
                check_document(doc, settings)
                outcome = "ok"
            assert outcome == expected, name
            assert time.monotonic() - started < 60 + 30, name  # within the deadline (plus worker start)
    finally:
        parser.close()
