"""Tesseract OCR: language choice, output cleaning, the real binary and its absence."""

from __future__ import annotations

import pytest

from osmose.config import Settings
from osmose.documents.system_tools import locate
from osmose.services.vision.ocr import Tesseract, clean_ocr_text, tesseract_languages
from tests.fixtures.pdf_pages import OCR_WORDS, text_pixmap
from tests.unit.vision.builders import needs_tesseract

pytestmark = pytest.mark.anyio


def test_clean_keeps_text_and_drops_noise() -> None:
    raw = ("INVOICE 2024 TOTAL\n"
           "| — ~ = |\n"
           "e | ee A ~\n"
           "Total: 12 €\n"
           "\n\n\n"
           "I am a cat\n"
           "@@##%%&&\x0c")
    assert clean_ocr_text(raw) == "INVOICE 2024 TOTAL\nTotal: 12 €\n\nI am a cat"


def test_clean_empty_and_whitespace() -> None:
    assert clean_ocr_text("") == ""
    assert clean_ocr_text("  \n\x0c \n") == ""


def test_languages_follow_the_document_within_installed_packs() -> None:
    installed = frozenset({"eng", "fra", "deu", "spa"})
    assert tesseract_languages(["fr"], installed) == "fra"
    assert tesseract_languages(["fr", "en", "de"], installed) == "fra+eng"  # at most two packs
    assert tesseract_languages(["it"], installed) == "eng"  # not installed: English
    assert tesseract_languages([], installed) == "eng"
    assert tesseract_languages(["pt-BR", "es"], installed) == "spa"
    assert tesseract_languages(["fr"], frozenset()) == "eng"


async def test_missing_binary_is_a_result_not_an_exception(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, tesseract=str(tmp_path / "no" / "tesseract"))
    tesseract = Tesseract.from_settings(settings)
    assert not tesseract.available
    assert "not found at configured path" in tesseract.missing
    result = await tesseract.recognize(b"not even a png")
    assert result.text == ""
    assert result.error == tesseract.missing


@needs_tesseract
async def test_reads_words_from_a_picture() -> None:
    tesseract = Tesseract.from_settings(Settings())
    assert {"eng", "fra"} <= await tesseract.installed_languages()
    result = await tesseract.recognize(text_pixmap().tobytes("png"), languages="eng", dpi=150)
    assert result.error == ""
    for word in OCR_WORDS:
        assert word in result.text
    assert result.seconds > 0


@needs_tesseract
async def test_french_pack_reads_accents() -> None:
    tesseract = Tesseract.from_settings(Settings())
    languages = await tesseract.languages_for(["fr"])
    assert languages == "fra"
    png = text_pixmap("Réunion de l'équipe à Genève", fontsize=30).tobytes("png")
    result = await tesseract.recognize(png, languages=languages, dpi=150)
    assert "équipe" in result.text and "Genève" in result.text


@needs_tesseract
async def test_timeout_is_reported_and_the_process_killed() -> None:
    tesseract = Tesseract(locate("Tesseract", None, "tesseract"), timeout_s=0.01)
    result = await tesseract.recognize(text_pixmap().tobytes("png"))
    assert result.text == ""
    assert "did not finish within 0.01s" in result.error


@needs_tesseract
async def test_garbage_input_is_an_error_result() -> None:
    tesseract = Tesseract.from_settings(Settings())
    result = await tesseract.recognize(b"this is not an image")
    assert result.text == ""
    assert result.error.startswith("Tesseract exit code")
