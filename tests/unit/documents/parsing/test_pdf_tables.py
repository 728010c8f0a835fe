from __future__ import annotations

from osmose.documents.parsing.geometry import Rect
from osmose.documents.parsing.pdf_page import _Block, _Line, _without_table_text
from osmose.documents.parsing.pdf_tables import TableBudget, lattice_regions
from osmose.v1 import document_pb2 as pb

PAGE = Rect(0, 0, 600, 800)


def _grid(x0: float, y0: float, cols: int, rows: int, size: float = 40) -> list[tuple]:
    horizontal = [
        (x0, y0 + r * size - 0.5, x0 + cols * size, y0 + r * size + 0.5, True, True) for r in range(rows + 1)
    ]
    vertical = [
        (x0 + c * size - 0.5, y0, x0 + c * size + 0.5, y0 + rows * size, True, True) for c in range(cols + 1)
    ]
    return horizontal + vertical


def test_a_ruled_grid_is_a_lattice() -> None:
    (region,) = lattice_regions(_grid(100, 100, cols=3, rows=4), PAGE)
    assert (region.x0, region.y0, region.x1, region.y1) == (100, 100, 220, 260)


def test_row_rules_with_one_column_separator_are_a_lattice() -> None:
    rows = [(100, y - 0.5, 400, y + 0.5, True, True) for y in (100, 130, 160, 190)]
    separator = [(199.5, 100, 200.5, 190, True, True)]
    assert len(lattice_regions(rows + separator, PAGE)) == 1


def test_underlines_boxes_and_page_frames_are_not_lattices() -> None:
    underlines = [(100, y, 300, y + 0.7, True, True) for y in range(100, 700, 20)]
    assert lattice_regions(underlines, PAGE) == []
    one_box = [(100, 100, 300, 200, True, True)]
    assert lattice_regions(one_box, PAGE) == []
    frame = [(5, 5, 595, 795, True, True), (5, 60, 595, 61, True, True)]
    assert lattice_regions(frame, PAGE) == []


def test_budget_defaults_are_bounded() -> None:
    budget = TableBudget()
    assert 0 < budget.pages <= 40 and 0 < budget.units <= 50_000


def _block(text: str, rect: Rect) -> _Block:
    return _Block(rect=rect, lines=[_Line(text, 10.0, rect)])


def test_blocks_under_a_table_are_dropped_only_when_the_table_holds_their_text() -> None:
    inside = _block("North 10 12", Rect(110, 110, 300, 130))
    outside = _block("After the table", Rect(100, 400, 300, 420))
    good = pb.Table(rows=[pb.TableRow(cells=["North", "10", "12"])])
    assert _without_table_text([inside, outside], good, Rect(100, 100, 400, 200)) == [outside]
    wrong = pb.Table(rows=[pb.TableRow(cells=["", "x"])])
    assert _without_table_text([inside, outside], wrong, Rect(100, 100, 400, 200)) == [inside, outside]
