"""Charts of a PPTX graphic frame: type, title, categories, series and values.

Data is read from the chart XML caches (``c:strCache``/``c:numCache``) rather
than through python-pptx's plot objects, which refuse several plot types
(3-D bars and areas, bar-of-pie...). python-pptx is asked only for the chart
type name (e.g. ``BAR_CLUSTERED``); when it cannot name it, the XML element
name is used (``bar3DChart`` -> ``BAR_3D``). Charts in the wild are odd,
so a chart that half reads still yields what could be read.

Missing data points are NaN so values stay aligned with categories.
"""

from __future__ import annotations

import logging
import math
import re

from lxml import etree
from pptx.opc.package import Part

from osmose.documents.parsing.ooxml_text import one_line, qn, text_of_body
from osmose.v1 import document_pb2 as pb

__all__ = ["MAX_CHART_POINTS", "MAX_CHART_SERIES", "read_chart"]

logger = logging.getLogger(__name__)

# Bounds on what one chart contributes to the document message.
MAX_CHART_SERIES = 100
MAX_CHART_POINTS = 1000

_C_PT, _C_V, _C_SER = qn("c:pt"), qn("c:v"), qn("c:ser")
_CACHES = ("c:strCache", "c:numCache", "c:strLit", "c:numLit", "c:multiLvlStrCache")


def read_chart(graphic_data: etree._Element, part: Part, *, problems: list[str]) -> pb.Chart:
    """A :class:`pb.Chart` (without box) for the chart referenced by `graphic_data`
    (``a:graphicData`` of a graphic frame in `part`). Problems are appended to `problems`."""
    out = pb.Chart()
    ref = graphic_data.find(qn("c:chart"))
    rid = ref.get(qn("r:id")) if ref is not None else None
    try:
        if rid is None:   # no relationship id fails like an unknown one
            raise KeyError(rid)
        chart = part.related_part(rid).chart  # type: ignore[attr-defined]  # typed as Part; a ChartPart here
        space = chart.element
    except (KeyError, ValueError, AttributeError, TypeError, etree.LxmlError) as exc:
        problems.append(f"chart part unreadable ({type(exc).__name__}: {exc})")
        out.chart_type = "UNREADABLE"
        return out
    plot_area = space.find(f"{qn('c:chart')}/{qn('c:plotArea')}")
    plots = (
        [el for el in plot_area.iterchildren() if _local(el).endswith("Chart")]
        if plot_area is not None
        else []
    )
    out.chart_type = _chart_type(chart, plots)
    title = space.find(f"{qn('c:chart')}/{qn('c:title')}/{qn('c:tx')}/{qn('c:rich')}")
    out.title = one_line(text_of_body(title))
    for plot in plots:
        for ser in plot.iterchildren(_C_SER):
            if len(out.series) >= MAX_CHART_SERIES:
                problems.append(f"more than {MAX_CHART_SERIES} series; the rest were dropped")
                return out
            if not out.categories:
                labels = _points(_first(ser, "c:cat", "c:xVal"))
                out.categories.extend("" if v is None else v for v in labels)
            values = _points(_first(ser, "c:val", "c:yVal"))
            out.series.append(pb.ChartSeries(name=_series_name(ser), values=[_number(v) for v in values]))
    return out


def _chart_type(chart: object, plots: list[etree._Element]) -> str:
    try:
        member = chart.chart_type  # type: ignore[attr-defined]
        return str(getattr(member, "name", member))
    except Exception:  # python-pptx raises NotImplementedError, KeyError, ValueError... on unknown plots
        pass
    if not plots:
        return "UNKNOWN"
    local = _local(plots[0]).removesuffix("Chart")  # "bar3DChart" -> "BAR_3D", "ofPieChart" -> "OF_PIE"
    return re.sub(r"(?<=[a-z])(?=[A-Z0-9])", "_", local).upper() or "UNKNOWN"


def _series_name(ser: etree._Element) -> str:
    tx = ser.find(qn("c:tx"))
    if tx is None:
        return ""
    names = [v for v in _points(tx) if v]
    if names:
        return one_line(" ".join(names))
    literal = tx.find(_C_V)
    return one_line(literal.text or "") if literal is not None else ""


def _points(container: etree._Element | None) -> list[str | None]:
    """Cached point values under a ``c:cat``/``c:val``/``c:tx`` element, by index."""
    if container is None:
        return []
    for name in _CACHES:
        cache = next(container.iter(qn(name)), None)
        if cache is None:
            continue
        if name == "c:multiLvlStrCache":  # innermost level carries the labels next to the axis
            cache = cache.find(qn("c:lvl"))
            if cache is None:
                return []
        count_el = next(container.iter(qn("c:ptCount")), None)
        count = _int(count_el.get("val") if count_el is not None else None)
        pts = [(_int(pt.get("idx")), pt.findtext(_C_V)) for pt in cache.iterchildren(_C_PT)]
        if count <= 0:
            count = max((i + 1 for i, _ in pts), default=0)
        values: list[str | None] = [None] * min(count, MAX_CHART_POINTS)
        for idx, text in pts:
            if 0 <= idx < len(values):
                values[idx] = text
        return values
    return []


def _first(parent: etree._Element, *tags: str) -> etree._Element | None:
    for tag in tags:
        found = parent.find(qn(tag))
        if found is not None:
            return found
    return None


def _number(value: str | None) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return math.nan


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _local(el: etree._Element) -> str:
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
