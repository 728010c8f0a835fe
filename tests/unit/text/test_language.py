"""Language detection: a document's languages (triage) and one segment's (extraction)."""

from __future__ import annotations

import pytest

from osmose.text.language import detect_language, detect_languages

SAMPLES = {
    "en": "The security operations center monitors alerts around the clock and escalates incidents.",
    "fr": "Le centre des opérations de sécurité surveille les alertes jour et nuit et traite les incidents.",
    "de": "Das Sicherheitszentrum überwacht die Warnmeldungen rund um die Uhr und bearbeitet Vorfälle.",
    "es": "El centro de operaciones de seguridad vigila las alertas día y noche y gestiona los incidentes.",
    "pt": "O centro de operações de segurança monitora os alertas dia e noite e trata os incidentes.",
    "ru": "Центр безопасности круглосуточно отслеживает оповещения и обрабатывает инциденты.",
    "ja": "セキュリティオペレーションセンターは警告を常時監視し、インシデントに対応します。",
    "zh": "安全运营中心全天候监控警报并处理安全事件，确保系统稳定运行。",
    "ko": "보안 운영 센터는 경보를 24시간 모니터링하고 사고를 처리합니다.",
    "ar": "يراقب مركز العمليات الأمنية التنبيهات على مدار الساعة ويعالج الحوادث الأمنية.",
    "he": "מרכז אבטחת המידע מנטר התראות מסביב לשעון ומטפל באירועי אבטחה.",
}


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_detects_each_corpus_language(lang: str) -> None:
    profile = detect_languages([SAMPLES[lang]] * 3)
    assert profile.dominant == lang
    assert profile.languages == [lang]


def test_mixed_deck_lists_both_languages_dominant_first() -> None:
    texts = [SAMPLES["es"]] * 6 + [SAMPLES["en"]] * 2
    profile = detect_languages(texts)
    assert profile.dominant == "es"
    assert profile.languages == ["es", "en"]
    assert profile.shares["es"] > profile.shares["en"]


def test_too_little_text_is_unknown() -> None:
    profile = detect_languages(["A", "B c", "12", ""])
    assert profile.dominant == ""
    assert profile.languages == []


def test_segment_language() -> None:
    assert detect_language("Les développeurs doivent valider toutes les entrées utilisateur", "en") == "fr"
    assert detect_language("ok", "de") == "de"
    assert detect_language("データベースを管理します", "en") == "ja"
    assert detect_language("数据库管理员", "en") == "zh"
    assert detect_language("데이터베이스 관리", "en") == "ko"


def test_segment_language_among_the_documents() -> None:
    jargon = "Le pipeline de déploiement continu et le monitoring des microservices en production"
    assert detect_language(jargon, "en", allowed=["fr", "en"]) == "fr"
    assert detect_language(SAMPLES["de"], "es", allowed=["es", "pt"]) in {"es", "pt"}


def test_lorem_ipsum_filler_is_not_the_document_language() -> None:
    # An HTML course deck whose code samples are full of placeholder text came out as Latin.
    lorem = ("Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut "
             "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco.")
    profile = detect_languages([lorem] * 5 + [SAMPLES["fr"]])
    assert profile.dominant == "fr"
    assert "la" not in profile.languages
