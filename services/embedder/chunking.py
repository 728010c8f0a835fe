"""Chunks: what retrieval returns and what gets embedded.

One chunk per slide when it fits, else the slide's text cut at line, then word,
boundaries into pieces that fit the model's window together with their context
line (document › segment › slide title). The context goes into the embedded
text only: it anchors "Step 3" to the topic it belongs to, while the displayed
text stays what the slide says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from osmose.text.slide_text import slide_text
from osmose.v1 import document_pb2 as pb

__all__ = ["ChunkDraft", "approx_tokens", "build_chunks"]

TokenCounter = Callable[[Sequence[str]], list[int]]
_SEPARATOR = " › "


def approx_tokens(texts: Sequence[str]) -> list[int]:
    """A conservative estimate for backends without a local tokenizer (~3 characters a token)."""
    return [len(t) // 3 + 2 for t in texts]


@dataclass(frozen=True)
class ChunkDraft:
    slide: int
    segment_id: str
    index: int
    text: str
    embed_text: str


def _fitting_prefix(text: str, budget: int, count: TokenCounter) -> int:
    """Characters of the longest prefix (roughly) that fits `budget` tokens; at least 1."""
    total = count([text])[0]
    if total <= budget:
        return len(text)
    n = max(1, int(len(text) * budget / total * 0.9))
    while n > 1 and count([text[:n]])[0] > budget:
        n = max(1, int(n * 0.8))
    return n


def _split_long_line(line: str, budget: int, count: TokenCounter) -> list[str]:
    """Cut one over-long line into pieces that fit, at spaces where there are any
    (CJK text and base64 blobs have none)."""
    pieces: list[str] = []
    rest = line.strip()
    while rest:
        n = _fitting_prefix(rest, budget, count)
        if n < len(rest):
            space = rest.rfind(" ", 0, n + 1)
            if space > n // 2:
                n = space
        pieces.append(rest[:n].strip())
        rest = rest[n:].strip()
    return [p for p in pieces if p]


def _pack(text: str, budget: int, count: TokenCounter) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    sizes = count(lines)
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for line, size in zip(lines, sizes, strict=True):
        size = max(size - 2, 1)  # [CLS]/[SEP] are counted once per chunk, not per line
        if size > budget:
            if current:
                pieces.append("\n".join(current))
                current, used = [], 0
            pieces.extend(_split_long_line(line, budget, count))
            continue
        if used + size > budget and current:
            pieces.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += size
    if current:
        pieces.append("\n".join(current))
    return pieces


def build_chunks(doc: pb.Document, segments: Sequence[pb.Segment], *, max_tokens: int,
                 count_tokens: TokenCounter = approx_tokens) -> list[ChunkDraft]:
    segment_of = {n: seg for seg in segments for n in seg.slide_numbers}
    drafts: list[ChunkDraft] = []
    for slide in doc.slides:
        text = slide_text(slide)
        if not text.strip():
            continue
        segment = segment_of.get(slide.number)
        context_parts = [doc.title.strip(), segment.title.strip() if segment else "", slide.title.strip()]
        context = _SEPARATOR.join(dict.fromkeys(p for p in context_parts if p))[:300]
        budget = max_tokens - (count_tokens([context])[0] if context else 2) - 1
        for index, piece in enumerate(_pack(text, max(budget, 16), count_tokens)):
            drafts.append(ChunkDraft(
                slide=slide.number,
                segment_id=segment.segment_id if segment else "",
                index=index,
                text=piece,
                embed_text=f"{context}\n{piece}" if context else piece,
            ))
    return drafts
