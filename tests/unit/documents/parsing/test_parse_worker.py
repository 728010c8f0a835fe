"""Parsing in worker processes: same documents as in-process parsing, errors keep their
class and reason, and a document past its deadline is stopped without harming the next."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.documents.parsing import parse_document, parse_document_bytes
from osmose.documents.parsing.worker import ParserPool
from osmose.errors import CorruptDocumentError, DocumentError, EmptyDocumentError
from tests.fixtures.builders import build_many_slides_pptx, build_title_body_pptx


@pytest.fixture
def pool():
    pool = ParserPool(size=1)
    yield pool
    pool.close()


def test_worker_parses_exactly_like_the_caller_process(tmp_path: Path, pool: ParserPool) -> None:
    deck = build_title_body_pptx(tmp_path)
    settings = Settings()
    here = parse_document(deck, settings=settings)
    there = pool.parse(deck.read_bytes(), settings=settings, file_name=deck.name)
    assert there == here
    again = pool.parse(deck.read_bytes(), settings=settings, file_name=deck.name)
    assert again == here
    assert pool.workers.started == 1  # the worker was reused, not restarted


@pytest.mark.parametrize(("data", "expected"), [
    (b"PK\x03\x04" + b"\x00" * 200, CorruptDocumentError),
    (b"", EmptyDocumentError),
])
def test_errors_come_back_with_their_class_reason_and_message(pool: ParserPool, data: bytes, expected: type) -> None:
    with pytest.raises(expected) as here:
        parse_document_bytes(data, settings=Settings(), file_name="bad.pptx")
    with pytest.raises(expected) as there:
        pool.parse(data, settings=Settings(), file_name="bad.pptx")
    assert type(there.value) is type(here.value)
    assert (there.value.reason, str(there.value)) == (here.value.reason, str(here.value))


def test_a_document_past_its_deadline_is_stopped_and_the_next_one_parses(tmp_path: Path, pool: ParserPool) -> None:
    deck = build_many_slides_pptx(tmp_path, count=120)
    hurried = Settings()
    hurried = hurried.with_overrides(limits=replace(hurried.limits, parse_timeout_s=0.05))
    with pytest.raises(DocumentError) as late:
        pool.parse(deck.read_bytes(), settings=hurried, file_name=deck.name)
    assert late.value.reason == "parse-timeout"
    small = build_title_body_pptx(tmp_path)
    doc = pool.parse(small.read_bytes(), settings=Settings(), file_name=small.name)
    assert len(doc.slides) >= 1
