"""Slide text repairs before any detector reads it.

What parsers hand over is not always what the author wrote:

- **filler text** ("Lorem ipsum dolor sit amet") is dropped;
- **placeholder names** of shapes and pictures ("Picture 1", "Grafik 3", "Espace réservé du
  contenu 2"), **picture file names and paths** used as alt text ("E:\\Sculpture\\f0391.jpg",
  "china_fabrik2.jpg", "Blauer_engel") and **alt-text boilerplate** written by the authoring tool ("Ein Bild, das Text
  enthält. Automatisch generierte Beschreibung", "A picture containing ...") are dropped;
- **footnote marks** glued to words ("Aligon∗", "Marcel¹") are removed;
- **words joined across a line break** are split again where a short lower-case function
  word was glued to the next word ("dieAnwendungssicherheit"), and words hyphenated at a
  line break ("Sicher-heitsrelevante") are rejoined when the document also writes them whole.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from osmose.services.extractor.lexicon import word_set

__all__ = ["clean_lines", "is_boilerplate_line", "rejoin_hyphenated", "split_glued_words"]

_PLACEHOLDER = re.compile(
    r"^\s*(picture|image|grafik|bild|imagen|imagem|graphique|chart|diagram|diagramm|rectangle|rechteck|oval|"
    r"text ?box|textfeld|zone de texte|content placeholder|inhaltsplatzhalter|espace réservé du contenu|"
    r"espace réservé|marcador de posición|group|gruppieren|groupe|object|objekt|objet|slide number|"
    r"foliennummer|numéro de diapositive|title|titel|titre|subtitle|untertitel|sous-titre|freihandform|"
    r"freeform|connector|gerade verbindung|straight connector|alt text)\s*\d*\s*$",
    re.IGNORECASE,
)
# What authoring tools write into alt text by themselves (several languages).
_ALT_TEXT = re.compile(
    r"^(ein bild, das|an? (picture|image|screenshot|close up|drawing) (containing|of)\b|une image contenant|"
    r"imagen que contiene|uma imagem contendo|immagine che contiene)"
    r"|(automatisch generierte beschreibung|description automatically generated|"
    r"description générée automatiquement|descripción generada automáticamente)\s*\.?\s*$",
    re.IGNORECASE,
)
# A picture's file name or path, which authoring tools use as its alt text: a drive or network path,
# a name with an image/document extension, or one token joined by underscores ("KKA_Logo4c").
_PATH_START = re.compile(r"^(?:[a-z]:\\|\\\\)", re.IGNORECASE)
_FILE_EXTENSION = re.compile(r"\.(?:jpe?g|png|gif|bmp|tiff?|svg|emf|wmf|webp|pdf|pptx?|docx?|xlsx?)$", re.IGNORECASE)
_UNDERSCORED = re.compile(r"^[^\W_]+(?:_[^\W_]+)+$")
_FOOTNOTE = re.compile(r"(?<=[^\W\d_])[∗*†‡§¹²³⁴⁵⁶⁷⁸⁹⁰]+(?=\s|[,;.:)]|$)")
_GLUED = re.compile(r"\b([a-zäöüßàâçéèêëîïôûùÿñ]{2,5})([A-ZÄÖÜÀÂÇÉÈÊËÎÏÔÛÙŸÑ][a-zäöüßàâçéèêëîïôûùÿñ]{3,})")
_HYPHENATED = re.compile(r"\b([^\W\d_]{2,})-([a-zäöüßàâçéèêëîïôûùÿñ]{2,})\b")


# Placeholder filler text ("Lorem ipsum dolor sit amet ...").
_FILLER = word_set("lorem ipsum dolor sit amet consectetur consectetuer adipiscing adipisicing elit sed eiusmod "
                    "tempor incididunt labore dolore magna aliqua enim minim veniam quis nostrud exercitation "
                    "ullamco laboris nisi aliquip commodo consequat duis aute irure reprehenderit voluptate velit "
                    "esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat proident culpa")
_FILLER_MIN = 3


def is_boilerplate_line(line: str) -> bool:
    """A shape placeholder name, tool-written alt text or filler text: nothing the author said."""
    stripped = line.strip()
    if _PLACEHOLDER.match(stripped) or _ALT_TEXT.search(stripped) or _is_file_name(stripped):
        return True
    return sum(1 for w in re.findall(r"[a-z]+", stripped.lower()) if w in _FILLER) >= _FILLER_MIN


def _is_file_name(line: str) -> bool:
    if _PATH_START.match(line):
        return True
    if " " not in line:
        return bool(_FILE_EXTENSION.search(line) or _UNDERSCORED.match(line))
    # "dyson tech.jpg", "Bilder/mein Foto.png": a short name with a file extension, spaces or not.
    return len(line.split()) <= 4 and "://" not in line and bool(_FILE_EXTENSION.search(line))


def split_glued_words(line: str, stopwords: Collection[str]) -> str:
    """"dieAnwendungssicherheit" -> "die Anwendungssicherheit" when the glued prefix is a stopword."""
    return _GLUED.sub(lambda m: f"{m.group(1)} {m.group(2)}" if m.group(1) in stopwords else m.group(0), line)


def rejoin_hyphenated(line: str, whole_words: Collection[str]) -> str:
    """"Sicher-heitsrelevante" -> "Sicherheitsrelevante" when the document writes that word whole."""
    def join(m: re.Match[str]) -> str:
        joined = m.group(1) + m.group(2)
        return joined if joined.casefold() in whole_words else m.group(0)

    return _HYPHENATED.sub(join, line)


# How the offline vision describer (services/vision/describe.py) reports a picture: only its alt
# text is the author's; the rest ("Picture 2: ... (name 'Picture 3'; 640x480 px)") is the tool's.
_DESCRIBED_PICTURE = re.compile(r"^Picture \d+: (?:described as (['\"])(?P<alt>.*?)\1(?: \(.*\))?|no alt text\b.*)$")


def _author_text(line: str) -> str:
    found = _DESCRIBED_PICTURE.match(line)
    if found is None:
        return line
    return (found.group("alt") or "").replace("\\\\", "\\")


def clean_lines(lines: Iterable[str], *, stopwords: Collection[str], whole_words: Collection[str]) -> list[str]:
    """The lines without boilerplate, footnote marks and line-break artefacts."""
    out = []
    for line in lines:
        line = _author_text(line)
        if not line.strip() or is_boilerplate_line(line):
            continue
        line = _FOOTNOTE.sub("", line)
        line = rejoin_hyphenated(split_glued_words(line, stopwords), whole_words)
        if line.strip():
            out.append(line)
    return out
