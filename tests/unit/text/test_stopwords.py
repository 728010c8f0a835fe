"""Stopword lists: YAKE's, with English always added."""

from __future__ import annotations

from osmose.text.stopwords import stopwords, yake_code


def test_yake_codes() -> None:
    assert yake_code("cs") == "cz" and yake_code("he") == "" and yake_code("pt-BR") == "pt"


def test_stopwords_add_english() -> None:
    assert "the" in stopwords("he") and "le" in stopwords("fr") and "the" in stopwords("fr")
