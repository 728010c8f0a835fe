"""The one token estimate and the one greedy packer."""

from __future__ import annotations

from osmose.text.budget import CHAT_CHARS_PER_TOKEN, approx_token_counts, approx_tokens, pack_greedy


def test_encoder_estimate_over_counts_and_chat_estimate_is_plainer() -> None:
    assert approx_tokens("") == 2  # [CLS] and [SEP]
    assert approx_tokens("a" * 30) == 12
    assert approx_tokens("a" * 30, chars_per_token=CHAT_CHARS_PER_TOKEN, special_tokens=0) == 7
    assert approx_tokens("", chars_per_token=CHAT_CHARS_PER_TOKEN, special_tokens=0) == 1  # never zero
    assert approx_token_counts(["", "a" * 30]) == [2, 12]


def test_groups_follow_both_caps_in_order() -> None:
    texts = ["word " * 10] * 10 + ["word " * 300]
    costs = approx_token_counts(texts)
    groups = pack_greedy(range(len(texts)), size=costs.__getitem__, max_items=4, max_size=100)
    assert all(len(g) <= 4 for g in groups)
    assert [i for g in groups for i in g] == list(range(11))
    assert all(sum(costs[i] for i in g) <= 100 for g in groups[:-1])
    assert groups[-1] == [10]  # an item above the size cap gets a group of its own


def test_size_cap_alone_and_nothing_to_pack() -> None:
    assert pack_greedy(["aa", "bb", "cc", "d"], size=len, max_size=4) == [["aa", "bb"], ["cc", "d"]]
    assert pack_greedy([], size=len, max_size=4) == []
    assert pack_greedy(["toolong", "a"], size=len, max_size=4) == [["toolong"], ["a"]]
