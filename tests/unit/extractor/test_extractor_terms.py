"""Capitalised names, CamelCase products and junk filtering."""

from __future__ import annotations

import pytest

from osmose.services.extractor.junk import is_junk
from osmose.services.extractor.terms import capitalised_terms
from osmose.text.stopwords import stopwords


def _terms(lines: list[str], language: str = "en") -> set[str]:
    return set(capitalised_terms(lines, language=language, stopwords=stopwords(language)))


def test_multi_word_names_inside_sentences() -> None:
    found = _terms([
        "Use parameterized queries in SQL Server and Azure Data Studio",
        "Priorities are set by the Product Owner every sprint",
        "We follow ISO 27001 and SOC 2, and TLS 1.3 everywhere",
    ])
    assert {"SQL Server", "Azure Data Studio", "Product Owner", "ISO 27001", "SOC 2"} <= found
    assert "TLS 1.3" not in found  # a protocol in a version: TLS is counted with the acronyms


def test_camel_case_and_punctuated_product_names() -> None:
    found = _terms(["The team ships with GitHub, PowerShell, Node.js, .NET and C#"])
    assert {"GitHub", "PowerShell", "Node.js", ".NET", "C#"} <= found


def test_sentence_start_and_title_case_lines_are_not_names() -> None:
    found = _terms(["Developers must validate input", "How To Write Secure Code Quickly"])
    assert found == set()


def test_german_nouns_are_not_names_but_products_are() -> None:
    found = _terms(["Die Entwickler müssen alle Eingaben in Azure Data Studio validieren"], language="de")
    assert found == {"Azure Data Studio"}


def test_single_capitalised_word_is_counted_for_the_caller() -> None:
    counts = capitalised_terms(
        ["We deploy on Kubernetes today", "It runs on Kubernetes tomorrow"], language="en",
        stopwords=stopwords("en"),
    )
    assert counts["Kubernetes"] == 2


@pytest.mark.parametrize(
    "phrase",
    ["2023 revenue", "42", "x", "the of", "https://example.com/a", "user_id", "getUserName", "os.path.join",
     "config.json", "Server and Azure", "a3f9e2b1c0", "Overview", "thank you", "x = 1"],
)
def test_junk(phrase: str) -> None:
    assert is_junk(phrase, stopwords("en"))


@pytest.mark.parametrize(
    "phrase",
    ["OWASP Top 10", "TLS 1.3", "Python 3.11", "ISO/IEC 27001", "Node.js", ".NET", "C++", "C#", "iPhone",
     "defense in depth", "PCI-DSS", "CI/CD", "3D printing", "SHA-256"],
)
def test_not_junk(phrase: str) -> None:
    assert not is_junk(phrase, stopwords("en"))
