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

from osmose.text.budget import approx_token_counts, pack_greedy
from osmose.text.slide_text import slide_text
from osmose.v1 import document_pb2 as pb

__all__ = ["ChunkDraft", "TokenCounter", "build_chunks"]

TokenCounter = Callable[[Sequence[str]], list[int]]
_SEPARATOR = " › "


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
    """The lines of `text` packed greedily into pieces within `budget`; a line over the
    budget is cut on its own (:func:`_split_long_line`) and breaks the run of packed lines."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    # [CLS]/[SEP] are counted once per chunk, not per line
    sized = [(line, max(size - 2, 1)) for line, size in zip(lines, count(lines), strict=True)]
    pieces: list[str] = []
    run: list[tuple[str, int]] = []

    def close_run() -> None:
        groups = pack_greedy(run, size=lambda entry: entry[1], max_size=budget)
        pieces.extend("\n".join(line for line, _ in group) for group in groups)
        run.clear()

    for line, size in sized:
        if size > budget:
            close_run()
            pieces.extend(_split_long_line(line, budget, count))
        else:
            run.append((line, size))
    close_run()
    return pieces


def build_chunks(doc: pb.Document, segments: Sequence[pb.Segment], *, max_tokens: int,
                 count_tokens: TokenCounter = approx_token_counts) -> list[ChunkDraft]:
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
