"""Script ranges: CJK detection and the boundary between CJK and spaced scripts."""

from __future__ import annotations

import re

import pytest

from osmose.text.scripts import CJK, UNSPACED, cjk_ratio, is_cjk_char, space_cjk


@pytest.mark.parametrize("ch", ["あ", "カ", "ｶ", "・", "漢", "々", "한", "ㄱ", "\U00020000"])
def test_cjk_characters(ch: str) -> None:
    assert is_cjk_char(ch)


@pytest.mark.parametrize("ch", ["a", "é", "я", "ก", "1", " ", "。", "、"])
def test_not_cjk(ch: str) -> None:
    assert not is_cjk_char(ch)


def test_unspaced_scripts_include_southeast_asia_but_not_punctuation() -> None:
    unspaced = re.compile(f"[{UNSPACED}]")
    assert all(unspaced.match(ch) for ch in "漢あカ한กລကក")
    assert not any(unspaced.match(ch) for ch in "・。、a")
    assert not re.compile(f"[{CJK}]").match("ก")


def test_ratio_and_spacing() -> None:
    assert cjk_ratio("") == 0.0 and cjk_ratio("SQL") == 0.0
    assert cjk_ratio("SQL注入") == pytest.approx(2 / 5)
    assert space_cjk("SQL注入とXSS") == "SQL 注入と XSS"
