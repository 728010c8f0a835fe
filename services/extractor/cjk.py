"""Candidate terms in Chinese, Japanese and Korean text, where YAKE's whitespace
tokenisation produces whole clauses.

Cheap, conservative heuristics (fewer concepts rather than fragments):

* Japanese: hiragana carries the grammar, so runs of kanji/katakana between
  hiragana are content words ("データベース", "開発者", "セキュリティ対策").
* Chinese: no such signal, so only short runs (2-6 characters) between
  punctuation, Latin text and 的 are candidates - short bullets and titles
  ("代码审查", "数据安全"), which is how Chinese slides name things.
* Korean: words are spaced; trailing particles (는, 를, 에서, ...) are cut off
  and words ending like verbs are dropped.

A candidate must occur at least twice in the document or be in a title
(the caller counts over the whole document: segments are small).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from osmose.services.extractor.lexicon import word_set
from osmose.text.scripts import HAN, HANGUL_SYLLABLES, IDEOGRAPHIC_MARKS, KATAKANA, KATAKANA_JOINERS

__all__ = ["MIN_OCCURRENCES", "cjk_candidates", "cjk_terms"]

MIN_OCCURRENCES = 2

# Katakana and kanji (with 々 and 〆) carry the content of Japanese; hiragana the grammar.
_JA_RUN = re.compile(f"[{KATAKANA}{KATAKANA_JOINERS}{HAN}{IDEOGRAPHIC_MARKS}]{{2,}}")
_KANA = re.compile(f"[{KATAKANA}{KATAKANA_JOINERS}]")
_ZH_RUN = re.compile(f"[{HAN}]+")
_HANGUL_WORD = re.compile(f"[{HANGUL_SYLLABLES}]+")
_ZH_BREAK = "的"
_ZH_MAX = 6
_KANJI_MAX = 6
_KANA_MAX = 20  # "アプリケーションセキュリティ" is one word
# Generic Japanese words that are never concepts ("necessary", "method", "the following", ...).
_JA_GENERIC = word_set(
    "必要 実施 説明 場合 方法 以下 以上 今回 使用 利用 可能 対応 確認 重要 目的 概要 内容 関係 問題 結果 "
    "全体 一般 現在 以外 注意 部分 事項 項目 自分 我々 今後 最初 最後 以前 以降 前回 次回 一部 全部 "
    "提供 作成 発生 存在 参照 記載 検討 実現 場所 時間 状態 方向 他"
)
_ZH_GENERIC = word_set("我们 你们 他们 所有 必须 可以 应该 进行 使用 一个 这个 那个 如何 什么 为什么 因为 所以 但是 如果 目的")
# Korean particles and copulas, longest first so "에서는" is cut before "는".
_KO_PARTICLES = tuple(
    sorted(
        word_set(
            "에서는 에게서 으로서 으로써 으로는 에서도 이라는 라는 에서 에게 한테 으로 까지 부터 처럼 보다 "
            "하고 이나 이며 이고 에는 에도 와는 과는 은 는 이 가 을 를 의 에 로 와 과 도 만 나 며"
        ),
        key=lambda p: (-len(p), p),
    )
)
_KO_VERB_ENDINGS = ("다", "요", "니다", "고", "며", "서", "게", "지", "면", "는데", "하여", "해야", "하는", "된", "할", "한")
_KO_GENERIC = word_set("모든 가장 어떤 이것 그것 저것 우리 여러 다른 경우 통해 위해 대한 대해")


def _japanese(line: str) -> list[str]:
    out = []
    for run in _JA_RUN.findall(line):
        if len(run) > (_KANA_MAX if _KANA.search(run) else _KANJI_MAX):
            continue  # a long run is a clause or a list, not a term
        if run not in _JA_GENERIC:
            out.append(run)
    return out


def _chinese(line: str) -> list[str]:
    out = []
    for run in _ZH_RUN.findall(line):
        for part in run.split(_ZH_BREAK):
            if 2 <= len(part) <= _ZH_MAX and part not in _ZH_GENERIC:
                out.append(part)
    return out


def _strip_particle(word: str) -> str:
    for particle in _KO_PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word


def _korean(line: str) -> list[str]:
    out = []
    previous = ""  # the last noun, when nothing (particle, verb, punctuation) followed it
    for match in re.finditer(r"\S+", line):
        raw = match.group()
        if not _HANGUL_WORD.fullmatch(raw):
            previous = ""
            continue
        word = _strip_particle(raw)
        if len(word) < 2 or word in _KO_GENERIC or word.endswith(_KO_VERB_ENDINGS):
            previous = ""
            continue
        out.append(word)
        if previous:
            out.append(f"{previous} {word}")  # noun compounds are spaced: "코드 리뷰"
        previous = word if word == raw else ""
    return out


_BY_LANGUAGE = {"ja": _japanese, "zh": _chinese, "ko": _korean}


def cjk_candidates(lines: Sequence[str], language: str) -> Counter[str]:
    """Every candidate term in `lines` with its count (no threshold)."""
    find = _BY_LANGUAGE.get(language)
    if find is None:
        return Counter()
    return Counter(term for line in lines for term in find(line))


def cjk_terms(
    lines: Sequence[str], titles: Sequence[str], language: str, *, document_counts: Counter[str] | None = None
) -> Counter[str]:
    """Candidate terms of `lines` with their counts there, keeping those seen at least
    :data:`MIN_OCCURRENCES` times (in `document_counts` when given) or in a title."""
    counts = cjk_candidates(lines, language)
    overall = document_counts if document_counts is not None else counts
    in_titles = set(cjk_candidates(titles, language))
    return Counter({t: n for t, n in counts.items() if overall[t] >= MIN_OCCURRENCES or t in in_titles})
