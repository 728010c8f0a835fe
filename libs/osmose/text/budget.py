"""Sizes before a tokenizer has counted: one token estimate, one greedy packer.

Requests to models are sized before the server counts anything: TEI requests by
their texts' tokens, chat prompts by their segments' characters, chunks by the
tokens of their lines. Two pieces serve all of them:

* :func:`approx_tokens` estimates from characters. Encoders (WordPiece, ≈ 3
  characters a token plus ``[CLS]``/``[SEP]``) are over-estimated so a request
  stays under the server's cap; chat models (BPE, ≈ 4 characters a token) pass
  ``chars_per_token=CHAT_CHARS_PER_TOKEN, special_tokens=0`` for rate limits.
* :func:`pack_greedy` groups consecutive items, closing a group when the next
  item would pass a count cap or a size cap. An item larger than the size cap
  gets a group of its own: callers that must cut such an item (chunking) do so
  themselves and pack what lies between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = [
    "CHAT_CHARS_PER_TOKEN",
    "ENCODER_CHARS_PER_TOKEN",
    "ENCODER_SPECIAL_TOKENS",
    "approx_token_counts",
    "approx_tokens",
    "pack_greedy",
]

T = TypeVar("T")

#: WordPiece tokens are short: counting 3 characters a token over-estimates them
ENCODER_CHARS_PER_TOKEN = 3
#: [CLS] and [SEP], added to every encoder input
ENCODER_SPECIAL_TOKENS = 2
#: BPE tokens of chat models average about 4 characters
CHAT_CHARS_PER_TOKEN = 4


def approx_tokens(text: str, *, chars_per_token: int = ENCODER_CHARS_PER_TOKEN,
                  special_tokens: int = ENCODER_SPECIAL_TOKENS) -> int:
    """Tokens of `text` estimated from its length (at least 1); the defaults over-estimate
    an encoder's WordPiece tokens."""
    return max(1, len(text) // chars_per_token + special_tokens)


def approx_token_counts(texts: Sequence[str]) -> list[int]:
    """:func:`approx_tokens` (encoder defaults) of each text: the batch form a tokenizer's
    ``count_tokens`` has, for backends without a local tokenizer."""
    return [approx_tokens(t) for t in texts]


def pack_greedy(items: Sequence[T], *, size: Callable[[T], int], max_size: int,
                max_items: int | None = None) -> list[list[T]]:
    """Consecutive `items` in groups of at most `max_items` items and `max_size` total
    `size`, in order; a group is closed when the next item would pass either cap, and
    an item alone above `max_size` forms a group of its own."""
    groups: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        cost = size(item)
        if current and ((max_items is not None and len(current) >= max_items) or used + cost > max_size):
            groups.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        groups.append(current)
    return groups
