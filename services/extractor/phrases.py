"""Repeated noun phrases of a whole document: the subjects a text keeps naming.

YAKE reads a bounded sample of each segment, so a paper that says "requêtes OLAP" eighteen
times over long pages, or a deck whose notes say "root canal refactoring", can lose its subject.
This detector reads every line once and keeps the word sequences that

- look like a noun phrase: no stopword at either end, none inside except a genitive link of
  the language ("logs de requêtes", "proof of concept"; none in German, which compounds), no
  punctuation inside, no number or single letter as a word;
- come back: a phrase of three or more words twice, of two words three times; a single word
  only when its spelling makes it a term (a hyphenated compound such as "hf-measure") or, in
  German, a capitalised noun used mid-sentence at least three times;
- are not common vocabulary only (every word frequent in the language, see :mod:`salience`);
- are terms on their own (C-value): a phrase nested in longer kept phrases keeps its count minus
  their mean count, so "canal refactoring", only ever said inside "root canal refactoring", goes,
  while "requêtes OLAP", said in "logs de requêtes OLAP" and in "résumer des requêtes OLAP", stays.

Lines repeated on several slides (titles, notes) count once; words are compared plural-folded.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from osmose.services.extractor.junk import is_junk
from osmose.services.extractor.lexicon import word_set
from osmose.services.extractor.salience import GENERIC_ZIPF, zipf
from osmose.text.plurals import singular

__all__ = ["MAX_PHRASE_WORDS", "Phrase", "repeated_phrases"]

MAX_PHRASE_WORDS = 4
MIN_REPEATS = {1: 3, 2: 3}          # by number of words; longer phrases: MIN_LONG_REPEATS
MIN_LONG_REPEATS = 2
MIN_COMPOUND_REPEATS = 2            # a hyphenated single term ("h-recall")
# Genitive links allowed inside a noun phrase, per language.
_LINKS = {
    "en": word_set("of"),
    "fr": word_set("de du des d'"),
    "es": word_set("de del"),
    "pt": word_set("de do da dos das"),
    "it": word_set("di del della dei delle"),
}
# Words with internal hyphens, dots, apostrophes, plus and sharp signs ("h-recall", "Node.js", "C#").
_TOKEN = re.compile(r"[^\W\d_](?:[\w'’.+#-]*[\w+#])?")
_ELISION = re.compile(r"^(?:l|d|qu|n|s|c|j|m|t|dell|all|nell|un)['’]", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Phrase:
    name: str      # the spelling the document uses most
    count: int     # occurrences not inside a longer kept phrase
    in_title: bool


def _chunks(line: str) -> list[list[str]]:
    """Runs of words not separated by punctuation (a phrase never crosses a comma or a colon)."""
    chunks: list[list[str]] = [[]]
    last = 0
    for match in _TOKEN.finditer(line):
        between = line[last:match.start()]
        if between.strip():
            chunks.append([])
        if line[match.end():match.end() + 1] == "-":
            chunks.append([])  # "Anwendungs- und Datenschutz": half of a compound
            last = match.end()
            continue
        word = _ELISION.sub("", match.group().rstrip("."))
        if word != match.group().rstrip(".") and chunks[-1]:
            chunks.append([])  # "l’expression": the elided article ends the previous phrase
        if word:
            chunks[-1].append(word)
        last = match.end()
        if match.group().endswith("."):
            chunks.append([])
    return [c for c in chunks if c]


def _is_word(token: str) -> bool:
    return len(_LETTERS.findall(token)) >= 2


def _is_term_spelling(token: str) -> bool:
    # "hf-measure", "h-recall", "Stand-by", "e-mail": a hyphenated compound reads as one term.
    parts = token.split("-")
    return len(parts) >= 2 and all(p.isalpha() for p in parts) and len(token) >= 5


def repeated_phrases(lines: Sequence[str], titles: Collection[str], *, language: str,
                     stopwords: Collection[str]) -> list[Phrase]:
    """The document's repeated noun phrases (see the module doc), most repeated first."""
    lang = (language or "en")[:2].lower()
    links = _LINKS.get(lang, frozenset())
    counts: Counter[tuple[str, ...]] = Counter()
    spellings: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    mid_sentence: Counter[tuple[str, ...]] = Counter()
    in_title: set[tuple[str, ...]] = set()
    title_set = set(titles)
    for line in dict.fromkeys(lines):  # a line repeated on several slides (a title, a note) says it once
        for chunk in _chunks(line):
            lowered = [w.lower() for w in chunk]
            for i in range(len(chunk)):
                for n in range(1, MAX_PHRASE_WORDS + 1):
                    if i + n > len(chunk):
                        break
                    words = lowered[i:i + n]
                    if not _is_word(chunk[i]) or not _is_word(chunk[i + n - 1]):
                        continue
                    if words[0] in stopwords or words[-1] in stopwords:
                        continue
                    if any(w in stopwords and w not in links for w in words[1:-1]):
                        continue
                    if any(not _LETTERS.search(w) for w in words):
                        continue
                    if n > 1 and lang == "de" and not chunk[i + n - 1][:1].isupper():
                        continue  # German nouns are capitalised: "Elektronikprodukten bedenken" ends in a verb
                    if n > 1 and words[-2] not in links and _is_participle(chunk[i + n - 1], lang):
                        continue  # "résumés obtenus", "selected commits": a clause, not a name
                    key = tuple(singular(w, lang) for w in words)
                    counts[key] += 1
                    spellings[key][" ".join(chunk[i:i + n])] += 1
                    if i > 0:
                        mid_sentence[key] += 1
                    if line in title_set:
                        in_title.add(key)
    kept: list[tuple[tuple[str, ...], int]] = []
    total = counts
    for key in sorted(counts, key=lambda k: (-len(k), -counts[k], k)):
        n = len(key)
        if n == 1:
            word = key[0]
            name = spellings[key].most_common(1)[0][0]
            if _is_term_spelling(word):
                needed = MIN_COMPOUND_REPEATS
            elif lang == "de" and name[:1].isupper() and mid_sentence[key] > 0:
                needed = MIN_REPEATS[1]
            else:
                continue
        else:
            needed = MIN_REPEATS.get(n, MIN_LONG_REPEATS)
        if key in in_title:
            needed = min(needed, MIN_LONG_REPEATS)
        # C-value: a phrase nested in longer ones loses their mean frequency, so a phrase that
        # combines with several modifiers ("log de / résumer des requêtes OLAP") stays a term.
        nesting = [total[longer] for longer, _ in kept if len(longer) > n and _inside(key, longer)]
        own = counts[key] - (round(sum(nesting) / len(nesting)) if nesting else 0)
        if own < needed:
            continue
        content = [w for w in key if w not in links and len(w) > 2]
        spelled = n == 1 and _is_term_spelling(key[0])  # wordfreq splits "h-recall" into two common words
        if content and not spelled and all(zipf(w, lang) >= GENERIC_ZIPF for w in content):
            continue  # "next steps", "Daten": common words only
        name = spellings[key].most_common(1)[0][0]
        if is_junk(name, stopwords):
            continue
        kept.append((key, own))
    out = [Phrase(spellings[key].most_common(1)[0][0], own, key in in_title) for key, own in kept]
    out.sort(key=lambda p: (-p.count, p.name))
    return out


_PARTICIPLE = {
    "en": re.compile(r"^[a-z]{3,}ed$"),
    "fr": re.compile(r"^[a-zà-ÿ]{3,}(?:é|ée|és|ées)$"),
    "es": re.compile(r"^[a-zá-ú]{3,}(?:ado|ada|ados|adas|ido|ida|idos|idas)$"),
    "pt": re.compile(r"^[a-zá-ú]{3,}(?:ado|ada|ados|adas|ido|ida|idos|idas)$"),
    "it": re.compile(r"^[a-zà-ù]{3,}(?:ato|ata|ati|ate|ito|ita|iti|ite)$"),
}


def _is_participle(word: str, language: str) -> bool:
    rx = _PARTICIPLE.get(language)
    return rx is not None and bool(rx.match(word))


def _inside(shorter: tuple[str, ...], longer: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i:i + n] == shorter for i in range(len(longer) - n + 1))


# English words that say a verb follows ("we refactor", "to refactor", "can refactor") or a noun
# follows ("the refactoring", "a tool").
_BEFORE_VERB = {"en": word_set("to we they you i can could will would should must may might don't doesn't "
                               "didn't never usually often always rarely")}
_BEFORE_NOUN = {"en": word_set("the a an this that these those their our its his her my your each every "
                               "any some no")}
_WORDS = re.compile(r"[^\W\d_][\w'’-]*")
MIN_VERB_EVIDENCE = 2


def verb_like_words(lines: Sequence[str], language: str) -> frozenset[str]:
    """Lower-case words the document uses as verbs and never as nouns ("refactor" in "how programmers
    refactor", "we refactor", "to refactor"; never "the refactor"): a concept does not end in one."""
    lang = (language or "en")[:2].lower()
    before_verb, before_noun = _BEFORE_VERB.get(lang), _BEFORE_NOUN.get(lang)
    if before_verb is None or before_noun is None:
        return frozenset()
    as_verb: Counter[str] = Counter()
    as_noun: set[str] = set()
    for line in dict.fromkeys(lines):
        words = [w.lower().replace("’", "'") for w in _WORDS.findall(line)]
        for previous, word in zip(words, words[1:], strict=False):
            if previous in before_verb:
                as_verb[word] += 1
            elif previous in before_noun:
                as_noun.add(word)
    return frozenset(w for w, n in as_verb.items() if n >= MIN_VERB_EVIDENCE and w not in as_noun)
