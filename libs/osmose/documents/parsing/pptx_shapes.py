"""One slide's shape tree, flattened into reading order.

Walks the slide XML (``p:spTree``) directly with lxml: python-pptx's shape
proxies re-run XPath queries for every attribute, which made a 227-slide deck
take seconds.

* Positions become absolute slide coordinates (EMU): a group's children live
  in the group's child coordinate space (``chOff``/``chExt``), mapped onto the
  group's own box (``off``/``ext``), recursively for nested groups.
  Placeholders without their own position inherit it from layout and master.
* Siblings are read top-to-bottom, then left-to-right (tops within 2% of the
  slide height share a row); a group is read as one unit at its position, so
  what an author grouped stays together.
* Text comes from text shapes, placeholders, SmartArt data and
  ``mc:AlternateContent`` choices (equations, newer shape kinds).
* Pictures, charts, OLE objects and media frames are the slide's visual area.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lxml import etree
from pptx.opc.package import Part

from osmose.documents.parsing.geometry import Rect, row_order
from osmose.documents.parsing.limits import WarningLog
from osmose.documents.parsing.ooxml_text import max_font_size_pt, qn, text_of_body
from osmose.documents.parsing.pptx_charts import read_chart
from osmose.documents.parsing.pptx_pictures import PictureReader
from osmose.documents.parsing.pptx_placeholders import Inheritance, own_xfrm, placeholder_key, xfrm_xywh
from osmose.v1 import document_pb2 as pb

__all__ = ["ShapeContent", "ShapeWalker"]

logger = logging.getLogger(__name__)

ROW_TOLERANCE = 0.02
MAX_TABLE_ROWS = 1000
MAX_TABLE_COLUMNS = 100
# Nesting deeper than this is not an authored deck (and would exhaust the stack).
MAX_GROUP_DEPTH = 32
# Shapes read per slide (groups count too); real slides hold hundreds at most. A 1.5 MB deck
# with 100,000 text boxes on a slide took 15 s and 500 MB (fuzzing finding, tests/fuzz/findings).
MAX_SHAPES_PER_SLIDE = 10_000
_GRAPHIC_TABLE = "http://schemas.openxmlformats.org/drawingml/2006/table"
_GRAPHIC_CHART = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_GRAPHIC_DIAGRAM = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
_GRAPHIC_CHARTEX = "http://schemas.microsoft.com/office/drawing/2014/chartex"
_PH_ROLES = {
    "title": pb.BLOCK_ROLE_TITLE,
    "ctrTitle": pb.BLOCK_ROLE_TITLE,
    "subTitle": pb.BLOCK_ROLE_SUBTITLE,
    "dt": pb.BLOCK_ROLE_CAPTION,
    "ftr": pb.BLOCK_ROLE_CAPTION,
    "sldNum": pb.BLOCK_ROLE_CAPTION,
    "hdr": pb.BLOCK_ROLE_CAPTION,
}
_SP, _PIC, _FRAME, _GROUP = qn("p:sp"), qn("p:pic"), qn("p:graphicFrame"), qn("p:grpSp")
_SHAPE_TAGS = frozenset((_SP, _PIC, _FRAME, _GROUP))
_ALTERNATE, _CHOICE = qn("mc:AlternateContent"), qn("mc:Choice")
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


@dataclass
class ShapeContent:
    """One thing found on a slide, with its absolute rectangle (EMU) when known."""

    kind: str  # "text" | "table" | "chart" | "picture" | "visual"
    rect: Rect | None
    text: str = ""
    role: pb.BlockRole = pb.BLOCK_ROLE_BODY
    font_size: float = 0.0
    placeholder: bool = False
    table: pb.Table | None = None
    chart: pb.Chart | None = None
    picture: pb.Picture | None = None


@dataclass(frozen=True, slots=True)
class _Transform:
    """Maps a shape's own coordinates to slide coordinates: x' = tx + sx * x."""

    sx: float = 1.0
    sy: float = 1.0
    tx: float = 0.0
    ty: float = 0.0

    def rect(self, x: float, y: float, w: float, h: float) -> Rect:
        x0, y0 = self.tx + self.sx * x, self.ty + self.sy * y
        return Rect(x0, y0, x0 + self.sx * w, y0 + self.sy * h)

    def into_group(self, xfrm: etree._Element | None) -> _Transform:
        if xfrm is None:
            return self
        off, ext = _pair(xfrm, "a:off", "x", "y"), _pair(xfrm, "a:ext", "cx", "cy")
        ch_off, ch_ext = _pair(xfrm, "a:chOff", "x", "y"), _pair(xfrm, "a:chExt", "cx", "cy")
        kx = ext[0] / ch_ext[0] if ch_ext[0] else 1.0
        ky = ext[1] / ch_ext[1] if ch_ext[1] else 1.0
        return _Transform(
            sx=self.sx * kx,
            sy=self.sy * ky,
            tx=self.tx + self.sx * (off[0] - ch_off[0] * kx),
            ty=self.ty + self.sy * (off[1] - ch_off[1] * ky),
        )


@dataclass
class _Node:
    rect: Rect | None
    leaves: list[ShapeContent] = field(default_factory=list)
    children: list[_Node] | None = None  # set for groups


class ShapeWalker:
    """Walks the shape tree of one slide into :class:`ShapeContent`, in reading order."""

    def __init__(
        self,
        *,
        part: Part,
        slide_height: float,
        inheritance: Inheritance,
        pictures: PictureReader,
        warnings: WarningLog,
        where: str,
    ) -> None:
        self._part = part
        self._tolerance = slide_height * ROW_TOLERANCE
        self._inheritance = inheritance
        self._pictures = pictures
        self._warnings = warnings
        self._where = where
        self._shapes = 0

    def walk(self, sp_tree: etree._Element) -> list[ShapeContent]:
        return self._flatten(self._collect(sp_tree, _Transform(), depth=0))

    def _flatten(self, nodes: list[_Node]) -> list[ShapeContent]:
        out: list[ShapeContent] = []
        for node in row_order(nodes, lambda n: n.rect, tolerance=self._tolerance):
            if node.children is not None:
                out.extend(self._flatten(node.children))
            else:
                out.extend(node.leaves)
        return out

    def _collect(self, container: etree._Element, tf: _Transform, *, depth: int) -> list[_Node]:
        nodes: list[_Node] = []
        for elm in container.iterchildren():
            tag = elm.tag
            if tag == _ALTERNATE:
                choice = elm.find(_CHOICE)
                if choice is not None:  # the first choice holds the richest content
                    nodes.extend(self._collect(choice, tf, depth=depth + 1))
                continue
            if tag in _SHAPE_TAGS:
                self._shapes += 1
                if self._shapes > MAX_SHAPES_PER_SLIDE:
                    self._warnings.add(f"{self._where}: more than {MAX_SHAPES_PER_SLIDE:,} shapes; the rest skipped")
                    break
            try:
                node = self._node(elm, tf, depth=depth)
            except Exception as exc:  # one broken shape must not lose the slide
                name = next(elm.iter(qn("p:cNvPr")), None)
                label = name.get("name", "?") if name is not None else "?"
                self._warnings.add(f"{self._where}: shape '{label}' skipped ({type(exc).__name__}: {exc})")
                logger.debug("shape skipped", exc_info=True)
                continue
            if node is not None:
                nodes.append(node)
        return nodes

    def _node(self, elm: etree._Element, tf: _Transform, *, depth: int) -> _Node | None:
        tag = elm.tag
        if tag not in _SHAPE_TAGS:
            return None  # connectors, ink, non-visual properties
        rect = self._rect(elm, tf)
        if tag == _GROUP:
            if depth >= MAX_GROUP_DEPTH:
                self._warnings.add(
                    f"{self._where}: groups nested deeper than {MAX_GROUP_DEPTH}; inner shapes skipped"
                )
                return None
            children = self._collect(elm, tf.into_group(own_xfrm(elm)), depth=depth + 1)
            return _Node(rect=rect, children=children)
        if tag == _SP:
            item = _text_item(elm, rect)
            return _Node(rect, [item]) if item is not None else None
        if tag == _PIC:
            picture = self._pictures.read(elm, self._part, where=self._where)
            return _Node(rect, [ShapeContent("picture", rect, picture=picture)])
        return self._frame(elm, rect)

    def _rect(self, elm: etree._Element, tf: _Transform) -> Rect | None:
        xywh = xfrm_xywh(own_xfrm(elm))
        if xywh is None:
            ph = placeholder_key(elm)
            if ph is not None:
                xywh = self._inheritance.rect(*ph)
        return tf.rect(*xywh) if xywh is not None else None

    def _frame(self, elm: etree._Element, rect: Rect | None) -> _Node | None:
        graphic_data = next(elm.iter(qn("a:graphicData")), None)
        uri = graphic_data.get("uri", "") if graphic_data is not None else ""
        if graphic_data is not None and uri == _GRAPHIC_TABLE:
            table = _table(graphic_data)
            return _Node(rect, [ShapeContent("table", rect, table=table)]) if table.rows else None
        if graphic_data is not None and uri == _GRAPHIC_CHART:
            problems: list[str] = []
            chart = read_chart(graphic_data, self._part, problems=problems)
            for problem in problems[:3]:
                self._warnings.add(f"{self._where}: chart: {problem}")
            return _Node(rect, [ShapeContent("chart", rect, chart=chart)])
        if uri == _GRAPHIC_CHARTEX:
            return _Node(rect, [ShapeContent("chart", rect, chart=pb.Chart(chart_type="EXTENDED_CHART"))])
        if graphic_data is not None and uri == _GRAPHIC_DIAGRAM:
            text = self._smartart_text(graphic_data)
            return _Node(rect, [ShapeContent("text", rect, text=text)]) if text else None
        # OLE objects, media and other embedded graphics: visual area, no text.
        return _Node(rect, [ShapeContent("visual", rect)])

    def _smartart_text(self, graphic_data: etree._Element) -> str:
        rel_ids = graphic_data.find(qn("dgm:relIds"))
        rid = rel_ids.get(qn("r:dm")) if rel_ids is not None else None
        if not rid:
            return ""
        try:
            data = etree.fromstring(self._part.related_part(rid).blob, parser=_SAFE_XML)
        except (KeyError, ValueError, AttributeError, etree.XMLSyntaxError) as exc:
            self._warnings.add(f"{self._where}: SmartArt data unreadable ({type(exc).__name__}: {exc})")
            return ""
        texts: list[str] = []
        for pt in data.iter(qn("dgm:pt")):
            if pt.get("type", "node") in ("node", "asst"):
                text = text_of_body(pt.find(qn("dgm:t")))
                if text:
                    texts.append(text)
        return "\n".join(texts)


def _text_item(sp: etree._Element, rect: Rect | None) -> ShapeContent | None:
    body = sp.find(qn("p:txBody"))
    text = text_of_body(body)
    if not text:
        return None
    ph = placeholder_key(sp)
    role = _PH_ROLES.get(ph[0], pb.BLOCK_ROLE_BODY) if ph is not None else pb.BLOCK_ROLE_BODY
    return ShapeContent(
        "text", rect, text=text, role=role, font_size=max_font_size_pt(body), placeholder=ph is not None
    )


def _table(graphic_data: etree._Element) -> pb.Table:
    table = pb.Table()
    tbl = graphic_data.find(qn("a:tbl"))
    if tbl is None:
        return table
    for tr in tbl.iterchildren(qn("a:tr")):
        if len(table.rows) >= MAX_TABLE_ROWS:
            break
        cells = [
            ""
            if tc.get("hMerge") in ("1", "true") or tc.get("vMerge") in ("1", "true")
            else text_of_body(tc.find(qn("a:txBody")))
            for tc in list(tr.iterchildren(qn("a:tc")))[:MAX_TABLE_COLUMNS]
        ]
        table.rows.append(pb.TableRow(cells=cells))
    return table


def _pair(xfrm: etree._Element, tag: str, ax: str, ay: str) -> tuple[float, float]:
    el = xfrm.find(qn(tag))
    if el is None:
        return 0.0, 0.0
    try:
        return float(el.get(ax, 0)), float(el.get(ay, 0))
    except ValueError:
        return 0.0, 0.0
