"""Text out of DrawingML XML (text bodies of shapes, table cells, SmartArt).

Reads the lxml elements directly: one pass per text body, an order of
magnitude faster than going through python-pptx's proxy objects per run.
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["NS", "clean_text", "max_font_size_pt", "one_line", "qn", "text_of_body"]

NS = {
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
    "dgm": "http://schemas.openxmlformats.org/drawingml/2006/diagram",
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}

_A_P = f"{{{NS['a']}}}p"
_A_R = f"{{{NS['a']}}}r"
_A_FLD = f"{{{NS['a']}}}fld"
_A_BR = f"{{{NS['a']}}}br"
_A_T = f"{{{NS['a']}}}t"
_SIZE_TAGS = (f"{{{NS['a']}}}rPr", f"{{{NS['a']}}}endParaRPr", f"{{{NS['a']}}}defRPr")
# C0 controls except tab/newline, which XML 1.0 forbids anyway but binary converters leave in.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_SPACES = re.compile(r"\s+")


def qn(tag: str) -> str:
    """'a:t' -> '{http://...drawingml/2006/main}t'."""
    prefix, local = tag.split(":")
    return f"{{{NS[prefix]}}}{local}"


def text_of_body(body: etree._Element | None, *, fields: bool = True) -> str:
    """Paragraphs of a text body (``p:txBody``, ``a:txBody``, ``dgm:t``) joined by
    newlines; line breaks become newlines; fields (slide numbers, dates) keep their
    cached text unless `fields` is False."""
    if body is None:
        return ""
    text_tags = (_A_R, _A_FLD) if fields else (_A_R,)
    paragraphs: list[str] = []
    for para in body.iterchildren(_A_P):
        pieces: list[str] = []
        for child in para:
            tag = child.tag
            if tag in text_tags:
                t = child.find(_A_T)
                if t is not None and t.text:
                    pieces.append(t.text)
            elif tag == _A_BR:
                pieces.append("\n")
        paragraphs.append("".join(pieces).rstrip())
    return clean_text("\n".join(paragraphs))


def clean_text(text: str) -> str:
    """Strip control characters and runs of blank lines; trim."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0b", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def one_line(text: str) -> str:
    """Collapse all whitespace (titles are single lines)."""
    return _SPACES.sub(" ", text).strip()


def max_font_size_pt(body: etree._Element | None) -> float:
    """Largest font size set explicitly in a text body, in points (0 when all inherited)."""
    if body is None:
        return 0.0
    best = 0
    for tag in _SIZE_TAGS:
        for el in body.iter(tag):
            sz = el.get("sz")
            if sz and sz.isdigit():
                best = max(best, int(sz))
    return best / 100.0
