"""Acronym definitions (Schwartz-Hearst) and standalone acronyms."""

from __future__ import annotations

from osmose.services.extractor.acronyms import AcronymPair, acronym_pairs, best_long_form, standalone_acronyms


def test_long_form_then_short_form() -> None:
    assert acronym_pairs(["Track every Key Performance Indicator (KPI) weekly"]) == [
        AcronymPair(short="KPI", long="Key Performance Indicator")
    ]


def test_short_form_then_long_form() -> None:
    assert acronym_pairs(["KPI (Key Performance Indicator) dashboards"]) == [
        AcronymPair(short="KPI", long="Key Performance Indicator")
    ]


def test_plural_short_form_gives_the_singular_alias() -> None:
    pairs = acronym_pairs(["Key Performance Indicators (KPIs) for the Product Owner"])
    assert pairs == [AcronymPair(short="KPI", long="Key Performance Indicators")]


def test_pairs_in_other_languages_and_with_extra_text_in_parentheses() -> None:
    pairs = acronym_pairs([
        "Le Règlement général sur la protection des données (RGPD) s'applique",
        "General Data Protection Regulation (GDPR, 2018)",
        "Das Bundesamt für Sicherheit in der Informationstechnik (BSI) empfiehlt",
    ])
    assert [(p.short, p.long) for p in pairs] == [
        ("RGPD", "Règlement général sur la protection des données"),
        ("GDPR", "General Data Protection Regulation"),
        ("BSI", "Bundesamt für Sicherheit in der Informationstechnik"),
    ]


def test_no_pair_when_the_letters_do_not_start_words() -> None:
    # XSS is not "cross-site scripting" letter by letter; "(Table 3)" is no acronym at all.
    assert acronym_pairs(["An attacker exploits cross-site scripting (XSS)", "see the results (Table 3)"]) == []


def test_best_long_form_is_the_shortest_matching_tail() -> None:
    assert best_long_form("MFA", "we enforce Multi-Factor Authentication") == "Multi-Factor Authentication"
    assert best_long_form("XYZ", "nothing matches here") is None


def test_standalone_acronyms_skip_stopwords_shouting_roman_numerals_and_emphasis() -> None:
    found = standalone_acronyms(
        [
            "OWASP Top 10 AND SQL injection",
            "THIS IS A SHOUTED TITLE",
            "Phase II and IV",
            "SECURITY first, and security always",
            "PCI-DSS, CI/CD and TLS1.3 at Node.JS speed",
        ],
        stopwords={"and", "this", "is", "a", "first", "always", "at"},
        lowercase_words={"security"},
    )
    assert set(found) == {"OWASP", "SQL", "PCI-DSS", "CI/CD"}
