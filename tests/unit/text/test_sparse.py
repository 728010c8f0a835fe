"""Sparse lexical vectors: analysis in many scripts, stable indices, BM25 values."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import unicodedata

import pytest

from osmose.text.sparse import AVG_DOC_LEN, K1, B, analyse, sparse_encode, sparse_query, token_index, tokenize


def test_english_words_compounds_and_code_names() -> None:
    assert tokenize("Hello, World! Don't use e-mail; ship C++ and C# in Q3 2024.") == [
        "hello", "world", "don't", "don", "t", "use", "e-mail", "e", "mail", "ship",
        "c++", "and", "c#", "in", "q3", "2024",
    ]


def test_punctuation_only_text_has_no_tokens() -> None:
    assert tokenize("... --- !!! ??? ___ •••  — «» “”") == []
    assert sparse_encode("... ---") == sparse_encode("")
    assert sparse_encode("").indices == [] and sparse_query("").indices == []


def test_french_accents_casefold_and_elision() -> None:
    tokens = tokenize("Stratégie de l'ÉLÉPHANT à Paris")
    assert "stratégie" in tokens and "strategie" in tokens  # exact and accent-free forms
    assert "éléphant" in tokens and "elephant" in tokens
    assert "l'éléphant" in tokens  # the compound too, so the exact phrase scores higher
    assert "à" in tokens and "a" in tokens


def test_composed_and_decomposed_accents_are_the_same_token() -> None:
    composed = "café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert sparse_query(composed) == sparse_query(decomposed)


def test_compatibility_forms_fold_to_plain_letters() -> None:
    assert tokenize("Ｐｙｔｈｏｎ ﬁle") == ["python", "file"]


def test_japanese_runs_give_characters_and_bigrams() -> None:
    assert tokenize("東京都") == ["東", "京", "都", "東京", "京都"]
    # the katakana middle dot separates; latin and kana split at the script change
    assert tokenize("iPhone用アプリ・テスト") == [
        "iphone", "用", "ア", "プ", "リ", "用ア", "アプ", "プリ", "テ", "ス", "ト", "テス", "スト",
    ]


def test_chinese_query_matches_inside_an_unspaced_sentence() -> None:
    doc = set(sparse_encode("我们使用机器学习来分析数据").indices)
    query = sparse_query("机器学习")
    assert set(query.indices) <= doc


def test_korean_bigrams_match_stems_inside_words() -> None:
    assert tokenize("한국어") == ["한", "국", "어", "한국", "국어"]
    assert set(sparse_query("한국").indices) <= set(sparse_encode("한국어 분석기").indices)


def test_thai_marks_stay_with_their_letter() -> None:
    tokens = tokenize("ง่าย")
    assert tokens[:3] == ["ง่", "า", "ย"]
    assert "\u0e48" not in tokens  # never a lone tone mark


def test_arabic_harakat_and_letter_variants() -> None:
    assert tokenize("كَتَبَ") == ["كتب"]  # vocalised and plain spellings are one token
    assert "احمد" in tokenize("أحمد")  # hamza forms of alef fold to bare alef
    assert set(sparse_query("احمد").indices) <= set(sparse_encode("أحمد").indices)


def test_hebrew_points_are_optional() -> None:
    assert tokenize("שָׁלוֹם עוֹלָם") == ["שלום", "עולם"]


def test_devanagari_vowel_signs_do_not_split_words() -> None:
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]


def test_very_long_tokens_are_dropped_but_counted() -> None:
    tokens, length = analyse("a" * 200 + " real")
    assert tokens == ["real"]
    assert length == 2


def test_index_is_the_documented_hash() -> None:
    digest = hashlib.blake2b(b"osmose", digest_size=4, person=b"osmose-sparse-1").digest()
    assert token_index("osmose") == int.from_bytes(digest, "big") & 0x7FFFFFFF == 725278726
    assert token_index("東京") == 344542071
    assert token_index("stratégie") == 504465588


def test_indices_are_stable_across_processes() -> None:
    code = "from osmose.text.sparse import token_index; print(token_index('osmose'), token_index('東京'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["725278726", "344542071"]


def test_indices_are_31_bit_sorted_and_unique() -> None:
    vector = sparse_encode("the the the cat sat on the mat " * 3 + "東京都 한국어 कुछ")
    assert vector.indices == sorted(set(vector.indices))
    assert all(0 <= i < 2**31 for i in vector.indices)
    assert len(vector.values) == len(vector.indices)


def test_document_values_are_bm25_term_frequency_saturation() -> None:
    def expected(tf: int, length: int) -> float:
        return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / AVG_DOC_LEN))

    once = sparse_encode("revenue")
    assert once.values == [pytest.approx(expected(1, 1))]

    repeated = dict(zip(*(lambda v: (v.indices, v.values))(sparse_encode("growth growth growth margin")), strict=True))
    growth, margin = repeated[token_index("growth")], repeated[token_index("margin")]
    assert growth == pytest.approx(expected(3, 4))
    assert margin == pytest.approx(expected(1, 4))
    assert margin < growth < 3 * margin  # saturates
    assert growth < K1 + 1

    # a longer chunk weighs the same term less
    padded = sparse_encode("margin " + " ".join(f"w{i}" for i in range(200)))
    assert dict(zip(padded.indices, padded.values, strict=True))[token_index("margin")] < margin


def test_query_values_are_one_per_distinct_token() -> None:
    query = sparse_query("Revenue revenue REVENUE growth")
    assert query.indices == sorted({token_index("revenue"), token_index("growth")})
    assert query.values == [1.0, 1.0]
