"""Where a placeholder sits when the slide does not say: inherited from its
layout (matched by ``idx``, then by type) and from the master (by type).

python-pptx resolves this per shape with XPath over every layout placeholder,
which dominated parse time on large decks; here each layout and master is
read once per document.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lxml import etree
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.opc.package import Part

from osmose.documents.parsing.ooxml_text import qn

__all__ = ["XYWH", "Inheritance", "PlaceholderGeometry", "own_xfrm", "placeholder_key", "xfrm_xywh"]

logger = logging.getLogger(__name__)

XYWH = tuple[float, float, float, float]
_PH_PATH = {
    qn("p:sp"): f"{qn('p:nvSpPr')}/{qn('p:nvPr')}/{qn('p:ph')}",
    qn("p:pic"): f"{qn('p:nvPicPr')}/{qn('p:nvPr')}/{qn('p:ph')}",
    qn("p:graphicFrame"): f"{qn('p:nvGraphicFramePr')}/{qn('p:nvPr')}/{qn('p:ph')}",
}
_XFRM_PATH = {
    qn("p:sp"): f"{qn('p:spPr')}/{qn('a:xfrm')}",
    qn("p:pic"): f"{qn('p:spPr')}/{qn('a:xfrm')}",
    qn("p:cxnSp"): f"{qn('p:spPr')}/{qn('a:xfrm')}",
    qn("p:graphicFrame"): qn("p:xfrm"),
    qn("p:grpSp"): f"{qn('p:grpSpPr')}/{qn('a:xfrm')}",
}
# Masters only carry the generic kinds; everything that is not a title or a footer is a body.
_MASTER_KIND = {
    "ctrTitle": "title",
    "title": "title",
    "dt": "dt",
    "ftr": "ftr",
    "sldNum": "sldNum",
    "hdr": "hdr",
}


def placeholder_key(shape: etree._Element) -> tuple[str, str] | None:
    """(type, idx) of a placeholder shape, None for ordinary shapes."""
    path = _PH_PATH.get(str(shape.tag))   # lxml types tag as str | bytes | QName; parsed: str
    ph = shape.find(path) if path else None
    if ph is None:
        return None
    return ph.get("type", "obj"), ph.get("idx", "")


def own_xfrm(shape: etree._Element) -> etree._Element | None:
    path = _XFRM_PATH.get(str(shape.tag))
    return shape.find(path) if path else None


def xfrm_xywh(xfrm: etree._Element | None) -> XYWH | None:
    if xfrm is None:
        return None
    off, ext = xfrm.find(qn("a:off")), xfrm.find(qn("a:ext"))
    if off is None or ext is None:
        return None
    try:
        return (
            float(off.get("x", 0)),
            float(off.get("y", 0)),
            float(ext.get("cx", 0)),
            float(ext.get("cy", 0)),
        )
    except ValueError:
        return None


@dataclass
class _Table:
    by_idx: dict[str, XYWH] = field(default_factory=dict)
    by_type: dict[str, XYWH] = field(default_factory=dict)


@dataclass(frozen=True)
class Inheritance:
    """Placeholder rectangles a slide inherits."""

    layout: _Table
    master: _Table

    def rect(self, ph_type: str, idx: str) -> XYWH | None:
        found = self.layout.by_idx.get(idx) if idx else None
        if found is None:
            found = self.layout.by_type.get(ph_type)
        if found is None:
            found = self.master.by_type.get(_MASTER_KIND.get(ph_type, "body"))
        return found


class PlaceholderGeometry:
    """Per-document cache of layout and master placeholder rectangles."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}

    def for_slide(self, slide_part: Part) -> Inheritance:
        try:
            layout = slide_part.part_related_by(RT.SLIDE_LAYOUT)
        except (KeyError, ValueError):
            return Inheritance(_Table(), _Table())
        try:
            master = layout.part_related_by(RT.SLIDE_MASTER)
        except (KeyError, ValueError):
            master = None
        master_table = self._table(master, None) if master is not None else _Table()
        return Inheritance(self._table(layout, master_table), master_table)

    def _table(self, part: Part, parent: _Table | None) -> _Table:
        key = str(part.partname)
        if key in self._tables:
            return self._tables[key]
        table = _Table()
        root = getattr(part, "_element", None)  # XmlPart keeps its parsed root here
        tree = root.find(f"{qn('p:cSld')}/{qn('p:spTree')}") if root is not None else None
        for shape in tree.iterchildren() if tree is not None else ():
            ph = placeholder_key(shape)
            if ph is None:
                continue
            ph_type, idx = ph
            rect = xfrm_xywh(own_xfrm(shape))
            if rect is None and parent is not None:
                rect = parent.by_type.get(_MASTER_KIND.get(ph_type, "body"))
            if rect is None:
                continue
            if idx:
                table.by_idx.setdefault(idx, rect)
            table.by_type.setdefault(ph_type, rect)
        self._tables[key] = table
        return table
