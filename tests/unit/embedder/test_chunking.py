from __future__ import annotations

import pytest

from osmose.embeddings.minilm import MiniLMEmbeddings
from osmose.services.embedder.chunking import build_chunks
from osmose.v1 import document_pb2 as pb


@pytest.fixture(scope="module")
def count_tokens():
    return MiniLMEmbeddings().count_tokens


def _doc() -> tuple[pb.Document, list[pb.Segment]]:
    doc = pb.Document(doc_id="a" * 32, title="Security programme")
    s1 = doc.slides.add(number=1, title="Identity", notes="Speaker notes mention the helpdesk.")
    s1.blocks.add(text="Identity", role=pb.BLOCK_ROLE_TITLE)
    s1.blocks.add(text="Multi-factor authentication for everyone", role=pb.BLOCK_ROLE_BODY)
    s2 = doc.slides.add(number=2, title="Long")
    for i in range(120):
        s2.blocks.add(text=f"Line {i}: the quick brown fox jumps over the lazy dog near the river bank",
                      role=pb.BLOCK_ROLE_BODY)
    doc.slides.add(number=3)  # empty slide: no chunk
    segs = [pb.Segment(segment_id="seg-0", index=0, title="Basics", slide_numbers=[1, 2, 3])]
    return doc, segs


def test_short_slide_is_one_chunk_with_notes_and_context(count_tokens) -> None:
    doc, segs = _doc()
    chunks = [c for c in build_chunks(doc, segs, max_tokens=256, count_tokens=count_tokens) if c.slide == 1]
    assert len(chunks) == 1
    chunk = chunks[0]
    assert "Multi-factor authentication" in chunk.text and "helpdesk" in chunk.text
    assert chunk.embed_text.startswith("Security programme › Basics › Identity\n")
    assert chunk.segment_id == "seg-0"


def test_long_slide_is_split_within_the_token_budget(count_tokens) -> None:
    doc, segs = _doc()
    chunks = [c for c in build_chunks(doc, segs, max_tokens=128, count_tokens=count_tokens) if c.slide == 2]
    assert len(chunks) > 5
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert max(count_tokens([c.embed_text for c in chunks])) <= 128
    # nothing lost: every line is in exactly one chunk
    joined = "\n".join(c.text for c in chunks)
    assert all(f"Line {i}:" in joined for i in range(120))


def test_giant_line_without_breaks_is_split(count_tokens) -> None:
    doc = pb.Document(doc_id="b" * 32)
    doc.slides.add(number=1).blocks.add(text="token " * 3000, role=pb.BLOCK_ROLE_BODY)
    doc.slides.add(number=2).blocks.add(text="漢字" * 2000, role=pb.BLOCK_ROLE_BODY)
    chunks = build_chunks(doc, [], max_tokens=64, count_tokens=count_tokens)
    assert max(count_tokens([c.embed_text for c in chunks])) <= 64
    assert sum(c.text.count("token") for c in chunks if c.slide == 1) == 3000
    assert "".join(c.text for c in chunks if c.slide == 2) == "漢字" * 2000


def test_empty_slides_give_no_chunk(count_tokens) -> None:
    doc, segs = _doc()
    assert 3 not in {c.slide for c in build_chunks(doc, segs, max_tokens=256, count_tokens=count_tokens)}
